/**
 * `npm run bench -- allocator [--quick]`: the partition allocator's figures, as one JSON
 * object on stdout (progress on stderr):
 *  - wa: write amplification and metadata ÷ host bytes for 4 KiB random overwrites at
 *    50/75/90 % utilisation, uniform and hot/cold (90 % of writes to 10 % of pages),
 *    greedy vs cost-benefit cleaning (real allocator, real file; see wa.ts);
 *  - io: 4 KiB random write/read IOPS and 1 MiB sequential MB/s next to fio (psync and
 *    io_uring) on a plain file of the same size, with ratios;
 *  - recovery: seconds to reopen per GiB of live data after a SIGKILL, and the page
 *    map's memory per mapped page measured around that open.
 * Figures are noisy on a shared 2-core machine; compare the ratios.
 */
import { spawn } from 'node:child_process';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Allocator, PAGE, type CleanerPolicy } from '../../allocator/index.ts';
import { simulate, type WaResult } from './wa.ts';
import { allocatorRates, fioRates, type IoRates } from './io.ts';

const quick = process.argv.includes('--quick');
const log = (s: string): void => void process.stderr.write(s + '\n');
const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-alloc-'));
const round = (x: number, d = 3): number => Math.round(x * 10 ** d) / 10 ** d;

try {
  // ---- write amplification
  const REGION = (quick ? 64 : 256) * 1024 * 1024 + PAGE;
  const SEG = 1024 * 1024;
  const wa: WaResult[] = [];
  for (const u of [0.5, 0.75, 0.9]) {
    for (const workload of ['uniform', 'hot-cold'] as const) {
      for (const policy of ['greedy', 'cost-benefit'] as CleanerPolicy[]) {
        const r = await simulate(dir, REGION, SEG, u, workload, policy, quick ? 2 : 4);
        log(`wa ${JSON.stringify(r)}`);
        wa.push(r);
      }
    }
  }
  const find = (u: number, w: string, p: string): WaResult => wa.find((r) => r.utilization === u && r.workload === w && r.policy === p)!;
  const targets = {
    metadataMaxRatio: Math.max(...wa.map((r) => r.metadataRatio)),
    metadataMax50and75: Math.max(...wa.filter((r) => r.utilization < 0.9).map((r) => r.metadataRatio)),
    uniform75GreedyWA: find(0.75, 'uniform', 'greedy').writeAmplification,
    uniform90GreedyWA: find(0.9, 'uniform', 'greedy').writeAmplification,
    hotColdCostBenefitBelowUniformGreedy: [0.5, 0.75, 0.9].every((u) => find(u, 'hot-cold', 'cost-benefit').writeAmplification < find(u, 'uniform', 'greedy').writeAmplification),
  };

  // ---- throughput next to fio
  const IO_BYTES = (quick ? 128 : 512) * 1024 * 1024;
  const SECS = quick ? 2 : 5;
  log('io: allocator');
  const ours = await allocatorRates(dir, IO_BYTES, SECS);
  log(`io: ${JSON.stringify(ours)}; fio psync`);
  const psync = fioRates(dir, IO_BYTES, 'psync', SECS);
  log(`io: ${JSON.stringify(psync)}; fio io_uring`);
  const uring = fioRates(dir, IO_BYTES, 'io_uring', SECS);
  log(`io: ${JSON.stringify(uring)}`);
  const ratio = (a: IoRates, b: IoRates): Record<keyof IoRates, number> => ({
    randWriteIops: round(a.randWriteIops / b.randWriteIops, 2),
    randReadIops: round(a.randReadIops / b.randReadIops, 2),
    seqWriteMBps: round(a.seqWriteMBps / b.seqWriteMBps, 2),
    seqReadMBps: round(a.seqReadMBps / b.seqReadMBps, 2),
  });

  // ---- recovery after SIGKILL, and map memory
  const LIVE_MIB = quick ? 256 : 1024;
  const CHURN_MIB = quick ? 32 : 256;
  const RSIZE = Math.ceil((LIVE_MIB * 1024 * 1024) / 0.8 / (1024 * 1024)) * 1024 * 1024 + PAGE;
  const rpath = join(dir, 'recovery.img');
  log(`recovery: filling ${LIVE_MIB} MiB live + ${CHURN_MIB} MiB random overwrites in a child, then SIGKILL`);
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('./recovery-child.ts', import.meta.url).pathname, rpath, String(RSIZE), String(LIVE_MIB), String(CHURN_MIB)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const before = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(out);
    });
    child.on('exit', (c) => reject(new Error(`recovery child exited with ${c}`)));
  });
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  const childStats = JSON.parse(before);
  // A gc() handle even without --expose-gc, for the memory figure.
  setFlagsFromString('--expose-gc');
  const gc = ((globalThis as { gc?: () => void }).gc ?? runInNewContext('gc')) as (() => void) | undefined;
  gc?.();
  const m0 = process.memoryUsage();
  const t0 = performance.now();
  const r = await Allocator.open({ path: rpath, offset: 0, size: RSIZE });
  const secs = (performance.now() - t0) / 1000;
  gc?.();
  const m1 = process.memoryUsage();
  const st = r.stats();
  const mapMeasured = (m1.heapUsed + m1.arrayBuffers - m0.heapUsed - m0.arrayBuffers) / st.mappedPages;
  await r.close();
  const recovery = {
    liveGiB: round(st.liveBytes / 2 ** 30),
    logSinceCheckpointMiB: null as number | null,
    checkpointsBeforeKill: childStats.checkpoints,
    openSeconds: round(secs),
    secondsPerLiveGiB: round(secs / (st.liveBytes / 2 ** 30)),
    pageCache: 'warm (not dropped)',
  };
  delete (recovery as { logSinceCheckpointMiB?: unknown }).logSinceCheckpointMiB;
  const memory = {
    mappedPages: st.mappedPages,
    mapBytesPerPageEstimated: round(st.mapBytes / st.mappedPages, 2),
    mapBytesPerPageMeasured: gc ? round(mapMeasured, 2) : null,
    note: gc ? 'measured: JS heap + ArrayBuffers grown by open(), per mapped page' : 'run with --expose-gc for a measured figure',
    projectedGiBFor1TiB: round((st.mapBytes / st.mappedPages) * (2 ** 40 / PAGE) / 2 ** 30, 2),
  };

  const result = {
    suite: 'allocator',
    wa: { regionBytes: REGION, segmentBytes: SEG, writesInFlight: 128, measuredOver: 'second half of the overwrites', results: wa },
    targets,
    io: { fileBytes: IO_BYTES, secondsPerPhase: SECS, writesInFlight: 32, allocator: ours, fioPsync: psync, fioIoUring: uring, vsPsync: ratio(ours, psync), vsIoUring: ratio(ours, uring) },
    recovery,
    memory,
  };
  process.stdout.write(JSON.stringify(result) + '\n');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
