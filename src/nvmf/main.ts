/**
 * Gateway process entry: serves one volume over NVMe/TCP. Used by tests (gateways as child
 * processes, one killed to test multipath) and by hand:
 *
 *   node --import tsx src/nvmf/main.ts --listen 127.0.0.1:4420 --file /tmp/vol.img --size 1GiB \
 *        --nqn nqn.2024-01.io.cairn:local:vol --allow-host nqn.2014-08.org.nvmexpress:uuid:...
 *
 * Options:
 *   --listen HOST:PORT     listen address (repeatable; port ids count up from --port-id)
 *   --port-id N            first port id (default 1)
 *   --advertise ADDR       TRADDR given to hosts in the discovery log (default: the listen host)
 *   --remote ID@ADDR:PORT  another gateway's path of this subsystem, for the discovery log (repeatable)
 *   --nqn NQN              subsystem NQN (default: the cluster volume's NQN, or
 *                          nqn.2024-01.io.cairn:local:<file name>)
 *   --file PATH            backing file (created sparse); --size BYTES|nGiB|nMiB to create/extend it
 *   --lease-file PATH      write lease shared by the gateways of this volume (takeover on first I/O)
 *   --data-dir DIR --volume NAME   serve a volume of the running local cluster in DIR instead;
 *                          the gateway takes the volume's write lease on its first I/O
 *   --name NAME            this gateway's name in the lease file (default gw<port id>)
 *   --allow-host NQN       allowed host NQN (repeatable; default: any host)
 *   --ana STATE            initial ANA state of this gateway's ports (default optimized)
 *   --cntlid-min N --cntlid-max N   controller id range (disjoint per gateway of a subsystem)
 *   --verbose              log to stderr
 *
 * On stdout it prints one JSON line when ready: {"event":"ready","nqn":...,"ports":[...]}.
 * On stdin it accepts JSON lines: {"ana":"non-optimized","portId":1} changes ANA state (with
 * the ANA change event); {"exit":true} stops. SIGTERM/SIGINT stop it (flushing the volume).
 */
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { FileBlockDevice, FileLease, type BlockDevice } from '../volume/index.ts';
import { ANA_STATES, type AnaState } from './ana.ts';
import { ClusterLeasedVolume } from './cluster-volume.ts';
import type { NamespaceConfig, PathConfig } from './subsystem.ts';
import { NvmfTarget } from './target.ts';

/** Parses "1GiB", "512MiB", "4096" into bytes. Throws on anything else. */
function parseSize(s: string): number {
  const m = /^(\d+)\s*(k|kib|m|mib|g|gib|t|tib)?$/i.exec(s.trim());
  if (!m) throw new Error(`not a size: ${s}`);
  const mult: Record<string, number> = { k: 2 ** 10, kib: 2 ** 10, m: 2 ** 20, mib: 2 ** 20, g: 2 ** 30, gib: 2 ** 30, t: 2 ** 40, tib: 2 ** 40 };
  return Number(m[1]) * (m[2] ? mult[m[2].toLowerCase()] : 1);
}

function hostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  if (i < 0) throw new Error(`expected HOST:PORT, got ${s}`);
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) };
}

async function main(): Promise<void> {
  const { values: v } = parseArgs({
    options: {
      listen: { type: 'string', multiple: true },
      'port-id': { type: 'string', default: '1' },
      advertise: { type: 'string' },
      remote: { type: 'string', multiple: true },
      nqn: { type: 'string' },
      file: { type: 'string' },
      'data-dir': { type: 'string' },
      volume: { type: 'string', default: 'vol0' },
      size: { type: 'string' },
      'lease-file': { type: 'string' },
      name: { type: 'string' },
      'allow-host': { type: 'string', multiple: true },
      ana: { type: 'string', default: 'optimized' },
      'cntlid-min': { type: 'string' },
      'cntlid-max': { type: 'string' },
      verbose: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (!v.file === !v['data-dir']) throw new Error('give either --file or --data-dir');
  if (!v.listen?.length) throw new Error('--listen is required');
  if (!ANA_STATES.includes(v.ana as AnaState)) throw new Error(`--ana must be one of ${ANA_STATES.join(', ')}`);
  const firstPort = Number(v['port-id']);
  const log = v.verbose ? (m: string) => process.stderr.write(`[nvmf gw${firstPort}] ${m}\n`) : () => {};
  let device: BlockDevice;
  let ns: NamespaceConfig;
  let nqn: string;
  let closeDevice: () => Promise<void>;
  if (v['data-dir']) {
    const cv = await ClusterLeasedVolume.open(v['data-dir'], v.volume!);
    device = cv;
    ns = { nsid: 1, device, lease: cv.lease };
    nqn = v.nqn ?? cv.nqn;
    closeDevice = async () => cv.close();
  } else {
    const lease = v['lease-file'] ? new FileLease(v['lease-file'], v.name ?? `gw${firstPort}`) : undefined;
    const fd = await FileBlockDevice.open(v.file!, { size: v.size ? parseSize(v.size) : undefined, lease });
    device = fd;
    ns = { nsid: 1, device, lease, usage: () => fd.allocatedBytes() };
    nqn = v.nqn ?? `nqn.2024-01.io.cairn:local:${basename(v.file!).replace(/[^A-Za-z0-9.-]/g, '-')}`;
    closeDevice = async () => {
      await fd.close();
      await lease?.close();
    };
  }
  const remotePaths: PathConfig[] = (v.remote ?? []).map((r) => {
    const [id, addr] = r.split('@');
    const hp = hostPort(addr);
    return { portId: Number(id), traddr: hp.host, trsvcid: hp.port };
  });
  const target = new NvmfTarget({
    log,
    cntlidRange: v['cntlid-min'] ? [Number(v['cntlid-min']), Number(v['cntlid-max'] ?? 0xffef)] : undefined,
  });
  target.addSubsystem({
    nqn,
    allowHosts: v['allow-host']?.length ? v['allow-host'] : 'any',
    namespaces: [ns],
    remotePaths,
    anaState: v.ana as AnaState,
  });
  const ports = [];
  for (const [i, l] of v.listen.entries()) {
    const hp = hostPort(l);
    ports.push(await target.listen({ portId: firstPort + i, host: hp.host, port: hp.port, traddr: v.advertise }));
  }
  process.stdout.write(`${JSON.stringify({ event: 'ready', nqn, pid: process.pid, ports })}\n`);

  let stopping = false;
  const stop = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log(`stopping: ${why}`);
    await target.close();
    await device.flush().catch(() => {});
    await closeDevice();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  createInterface({ input: process.stdin }).on('line', (line) => {
    try {
      const m = JSON.parse(line) as { ana?: string; portId?: number; exit?: boolean };
      if (m.exit) return void stop('exit requested');
      if (m.ana) {
        if (!ANA_STATES.includes(m.ana as AnaState)) throw new Error(`bad ANA state ${m.ana}`);
        target.setAnaState(nqn, m.ana as AnaState, { portId: m.portId });
        process.stdout.write(`${JSON.stringify({ event: 'ana', state: m.ana, portId: m.portId ?? 'all' })}\n`);
      }
    } catch (e) {
      process.stdout.write(`${JSON.stringify({ event: 'error', message: (e as Error).message })}\n`);
    }
  });
}

main().catch((e: Error) => {
  process.stderr.write(`nvmf gateway: ${e.message}\n`);
  process.exit(1);
});
