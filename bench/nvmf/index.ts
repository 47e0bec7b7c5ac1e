/**
 * `npm run bench -- nvmf [--runtime S] [--no-slirp-reference]`: the nvme-vm fio suite
 * (tools/nvme-vm/examples/fio-bench.sh: 4k randread QD32, 4k randwrite QD32, 4k randread QD1,
 * 1M seqread QD8; io_uring, direct) run by the Linux NVMe/TCP initiator in the VM against:
 *   - kernel:         Linux nvmet-tcp inside the guest on a RAM disk (examples/kernel-target.sh),
 *                     the anchor the brief asks for (no slirp on its path);
 *   - kernelViaSlirp: the same kernel target reached through the host (examples/slirp-check),
 *                     which crosses qemu's user network like a target on the host does;
 *   - cairnFile:      Cairn's target (src/gateway/main.ts) on the host over a sparse file;
 *   - cairnCluster:   `cairn up` (3 node processes, 3 replicas) exporting its volume.
 * All in one run, one after another. Prints one JSON object (progress on stderr). The guest
 * is software-emulated (TCG): compare only figures from the same run.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { freePorts } from '../../src/cluster/index.ts';
import { round, type FioFigures } from '../lib/fio.ts';
import { GATEWAY_MAIN } from '../../src/gateway/index.ts';

const { values } = parseArgs({ options: { runtime: { type: 'string', default: '10' }, 'no-slirp-reference': { type: 'boolean', default: false } } });
const RT = Number(values.runtime);
const ROOT = resolve(import.meta.dirname, '..', '..');
const VM = process.env.NVME_VM_DIR ?? resolve(ROOT, '..', 'shared', 'tools', 'nvme-vm');
const log = (s: string): void => void process.stderr.write(`[bench nvmf] ${s}\n`);

if (!existsSync(join(VM, 'run-guest'))) {
  process.stderr.write(`bench nvmf: no nvme-vm tooling at ${VM} (set NVME_VM_DIR, run its setup as root)\n`);
  process.exit(2);
}

/** Runs a command, streaming its output to stderr; resolves with the exit code and output. */
function run(cmd: string, args: string[], onLine?: (l: string) => void): Promise<{ code: number | null; out: string }> {
  return new Promise((res) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const feed = (d: Buffer): void => {
      const s = d.toString();
      out += s;
      process.stderr.write(s);
      for (const l of s.split('\n')) onLine?.(l);
    };
    p.stdout.on('data', feed);
    p.stderr.on('data', feed);
    p.once('exit', (code) => res({ code, out }));
  });
}

/** Reads fio-bench.sh's JSON files in `dir` into figures per job. */
function readFio(dir: string): Record<string, FioFigures> {
  const out: Record<string, FioFigures> = {};
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.json')).sort()) {
    const j = JSON.parse(readFileSync(join(dir, f), 'utf8')).jobs[0];
    const d = j.write.io_bytes > j.read.io_bytes ? j.write : j.read;
    out[f.replace('.json', '')] = {
      iops: round(d.iops, 0),
      mbps: round(d.bw_bytes / 1e6, 1),
      meanLatUs: round(d.lat_ns.mean / 1000, 1),
      p99LatUs: round((d.lat_ns.percentile?.['99.000000'] ?? 0) / 1000, 1),
    };
  }
  return out;
}

function fioDir(share: string): string {
  const d = readdirSync(share).find((x) => x.startsWith('fio-'));
  if (!d) throw new Error(`no fio results in ${share}`);
  return join(share, d);
}

/** Starts a long-running process and waits until its stdout matches `ready`. */
async function startUntil(cmd: string, args: string[], ready: RegExp): Promise<{ out: () => string; stop: () => Promise<void> }> {
  const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  p.stderr.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((res, rej) => {
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (ready.test(out)) res();
    });
    p.once('exit', (c) => rej(new Error(`${cmd} ${args.join(' ')} exited ${c}: ${out}`)));
  });
  return {
    out: () => out,
    stop: async () => {
      if (p.exitCode !== null) return;
      p.kill('SIGINT');
      await new Promise((r) => p.once('exit', r));
    },
  };
}

const results: Record<string, Record<string, FioFigures>> = {};
const loads: Record<string, number[]> = {};
const tmp = mkdtempSync(join(tmpdir(), 'cairn-bench-nvmf-'));
try {
  // 1. The anchor: Linux nvmet-tcp in the guest.
  let share = join(tmp, 'kernel');
  rmSync(share, { recursive: true, force: true });
  await run('mkdir', ['-p', share]);
  log(`kernel nvmet-tcp in the guest (${RT}s per job)`);
  let r = await run(join(VM, 'run-guest'), [join(VM, 'examples', 'kernel-target.sh'), '--share', share, '--timeout', '900', '--', String(RT)]);
  if (r.code !== 0) throw new Error(`kernel-target.sh failed (${r.code})`);
  results.kernel = readFio(fioDir(share));
  loads.kernel = loadavg();

  // 2. The same kernel target reached through the host, across slirp (like our target is).
  if (!values['no-slirp-reference']) {
    share = join(tmp, 'slirp');
    await run('mkdir', ['-p', share]);
    log('kernel nvmet-tcp reached via the host (slirp-check)');
    r = await run(join(VM, 'examples', 'slirp-check'), [String(RT), '--share', share, '--timeout', '900']);
    if (r.code !== 0) throw new Error(`slirp-check failed (${r.code})`);
    results.kernelViaSlirp = readFio(fioDir(share));
    loads.kernelViaSlirp = loadavg();
  }

  // 3. Cairn's target over a sparse file (the target's own cost).
  const [filePort] = await freePorts(1);
  const nqnFile = 'nqn.2024-01.io.cairn:bench:file';
  const gw = await startUntil(process.execPath, ['--import', 'tsx', GATEWAY_MAIN, '--listen', `127.0.0.1:${filePort}`, '--file', join(tmp, 'vol.img'), '--size', '1GiB', '--nqn', nqnFile], /"event":"ready"/);
  try {
    share = join(tmp, 'file');
    await run('mkdir', ['-p', share]);
    log('Cairn target on a file');
    r = await run(join(VM, 'run-guest'), [join(VM, 'examples', 'initiator-check.sh'), '--share', share, '--timeout', '900', '--', '10.0.2.2', String(filePort), nqnFile, String(RT)]);
    if (r.code !== 0) throw new Error(`initiator-check against the file target failed (${r.code})`);
    results.cairnFile = readFio(fioDir(share));
    loads.cairnFile = loadavg();
  } finally {
    await gw.stop();
  }

  // 4. cairn up: the cluster volume over NVMe/TCP.
  const [upPort] = await freePorts(1);
  const up = await startUntil(process.execPath, [join(ROOT, 'bin', 'cairn.js'), 'up', '--data-dir', join(tmp, 'cluster'), '--nbd-port', '0', '--nvmf-port', String(upPort), '--nvmf-paths', '1'], /Press Ctrl-C/);
  try {
    const nqn = /NVMe\/TCP export: (\S+)/.exec(up.out())![1];
    share = join(tmp, 'cluster-fio');
    await run('mkdir', ['-p', share]);
    log('cairn up (3 nodes, 3 replicas) over NVMe/TCP');
    r = await run(join(VM, 'run-guest'), [join(VM, 'examples', 'initiator-check.sh'), '--share', share, '--timeout', '900', '--', '10.0.2.2', String(upPort), nqn, String(RT)]);
    if (r.code !== 0) throw new Error(`initiator-check against cairn up failed (${r.code})`);
    results.cairnCluster = readFio(fioDir(share));
    loads.cairnCluster = loadavg();
  } finally {
    await up.stop();
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

function ratios(ref: Record<string, FioFigures> | undefined): Record<string, Record<string, { iops: number; meanLat: number }>> | undefined {
  if (!ref) return undefined;
  const out: Record<string, Record<string, { iops: number; meanLat: number }>> = {};
  for (const who of ['cairnFile', 'cairnCluster']) {
    out[who] = {};
    for (const [job, f] of Object.entries(results[who])) {
      const k = ref[job];
      if (k) out[who][job] = { iops: round(f.iops / k.iops, 3), meanLat: round(f.meanLatUs / k.meanLatUs, 2) };
    }
  }
  return out;
}

console.log(JSON.stringify({
  bench: 'nvmf',
  setup: {
    initiator: 'Linux 6.1 nvme-tcp in nvme-vm (qemu TCG, 2 vCPUs), fio io_uring direct=1 (tools/nvme-vm/examples/fio-bench.sh)',
    kernel: 'Linux nvmet-tcp in the guest, 1 GiB brd RAM disk, 127.0.0.1 (examples/kernel-target.sh)',
    kernelViaSlirp: 'the same nvmet reached at 10.0.2.2 through a host TCP proxy (examples/slirp-check; crosses slirp twice)',
    cairnFile: 'src/gateway/main.ts on the host, 1 GiB sparse file, reached at 10.0.2.2 (slirp once)',
    cairnCluster: 'cairn up: 3 node processes, 3 replicas, 1 GiB thin volume, NVMe/TCP at 10.0.2.2',
    runtimeSeconds: RT,
    cpus: cpus().length,
    loadavgAfter: Object.fromEntries(Object.entries(loads).map(([k, v]) => [k, v.map((x) => round(x, 2))])),
  },
  ...results,
  ratioToKernel: ratios(results.kernel),
  ratioToKernelViaSlirp: ratios(results.kernelViaSlirp),
}, null, 2));
