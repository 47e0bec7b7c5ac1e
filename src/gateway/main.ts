/**
 * Gateway process entry: serves one volume over NVMe/TCP (see gateway.ts). Used by tests
 * (gateways as child processes, one killed to test multipath) and by hand:
 *
 *   node --import tsx src/gateway/main.ts --listen 127.0.0.1:4420 --file /tmp/vol.img --size 1GiB
 *   node --import tsx src/gateway/main.ts --listen 127.0.0.1:4421 --data-dir .cairn --volume vol0
 *
 * Options:
 *   --listen HOST:PORT     listen address (repeatable; port ids count up from --port-id)
 *   --port-id N            first port id (default 1)
 *   --advertise ADDR       TRADDR given to hosts in the discovery log (default: the listen host)
 *   --remote ID@ADDR:PORT  another gateway's path of this subsystem, for the discovery log (repeatable)
 *   --data-dir DIR --volume NAME   a volume of the running local cluster in DIR (default vol0);
 *                          the gateway takes its write lease on its first I/O
 *   --file PATH            or a local file (created sparse); --size BYTES|nMiB|nGiB to create/extend it
 *   --lease-file PATH      write lease shared by the file gateways of one volume (takeover on first I/O)
 *   --name NAME            this gateway's name in the lease file (default gw<port id>)
 *   --nqn NQN              subsystem NQN (default: the cluster volume's, or derived from the file name)
 *   --allow-host NQN       allowed host NQN (repeatable; default: any host)
 *   --ana STATE            initial ANA state of this gateway's ports (default optimized)
 *   --cntlid-min N --cntlid-max N   controller id range (disjoint per gateway of a subsystem)
 *   --verbose              log to stderr
 *
 * On stdout it prints one JSON line when ready: {"event":"ready","nqn":...,"ports":[...]}.
 * On stdin it accepts JSON lines: {"ana":"non-optimized","portId":1} changes ANA state (with
 * the ANA change event); {"exit":true} stops. SIGTERM/SIGINT stop it (flushing the volume).
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { ANA_STATES, type AnaState } from '../nvmf/index.ts';
import { pollFromEnv } from '../net/index.ts';
import { parseHostPort, parseRemotePath, startGateway, type GatewaySource } from './gateway.ts';

function parseSize(s: string): number {
  const m = /^(\d+)\s*(k|kib|m|mib|g|gib|t|tib)?$/i.exec(s.trim());
  if (!m) throw new Error(`not a size: ${s}`);
  const mult: Record<string, number> = { k: 2 ** 10, kib: 2 ** 10, m: 2 ** 20, mib: 2 ** 20, g: 2 ** 30, gib: 2 ** 30, t: 2 ** 40, tib: 2 ** 40 };
  return Number(m[1]) * (m[2] ? mult[m[2].toLowerCase()] : 1);
}

async function main(): Promise<void> {
  pollFromEnv();
  const { values: v } = parseArgs({
    options: {
      listen: { type: 'string', multiple: true },
      'port-id': { type: 'string', default: '1' },
      advertise: { type: 'string' },
      remote: { type: 'string', multiple: true },
      nqn: { type: 'string' },
      file: { type: 'string' },
      size: { type: 'string' },
      'data-dir': { type: 'string' },
      volume: { type: 'string', default: 'vol0' },
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
  const portId = Number(v['port-id']);
  const source: GatewaySource = v['data-dir']
    ? { kind: 'cluster', dataDir: v['data-dir'], volume: v.volume! }
    : { kind: 'file', path: v.file!, size: v.size ? parseSize(v.size) : undefined, leaseFile: v['lease-file'], holder: v.name };
  const gw = await startGateway({
    source,
    listen: v.listen.map(parseHostPort),
    portId,
    advertise: v.advertise,
    remotePaths: (v.remote ?? []).map(parseRemotePath),
    nqn: v.nqn,
    allowHosts: v['allow-host']?.length ? v['allow-host'] : 'any',
    ana: v.ana as AnaState,
    cntlidRange: v['cntlid-min'] ? [Number(v['cntlid-min']), Number(v['cntlid-max'] ?? 0xffef)] : undefined,
    log: v.verbose ? pino({ base: { gateway: portId } }, process.stderr) : undefined,
  });
  process.stdout.write(`${JSON.stringify({ event: 'ready', nqn: gw.nqn, pid: process.pid, ports: gw.ports })}\n`);

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await gw.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
  createInterface({ input: process.stdin }).on('line', (line) => {
    try {
      const m = JSON.parse(line) as { ana?: string; portId?: number; exit?: boolean };
      if (m.exit) return void stop();
      if (m.ana) {
        if (!ANA_STATES.includes(m.ana as AnaState)) throw new Error(`bad ANA state ${m.ana}`);
        gw.setAna(m.ana as AnaState, m.portId);
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
