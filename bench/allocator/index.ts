/**
 * `npm run bench -- allocator [--quick] [--only wa,io,recovery]`: the partition allocator's
 * figures, as one JSON object on stdout (progress on stderr):
 *  - wa: write amplification and metadata ÷ host bytes for 4 KiB random overwrites at
 *    50/75/90 % utilisation (live bytes ÷ all segment bytes, LFS's definition), uniform and
 *    hot/cold (90 % of writes to 10 % of pages), greedy vs cost-benefit cleaning — the real
 *    allocator on a real file (on tmpfs when /dev/shm has room: WA is a count, and fdatasync
 *    there costs nothing, which spares the shared disk), each next to the same policy in an
 *    ideal in-memory LFS simulation of the same geometry (ideal.ts);
 *  - io: 4 KiB random write/read IOPS and 1 MiB sequential MB/s next to fio (psync and
 *    io_uring) on a plain file of the same size, with ratios;
 *  - recovery: seconds to reopen per GiB of live data after a SIGKILL, with the page cache
 *    of the partition's files dropped (cold) and then warm, and the page map's memory per
 *    mapped page measured around the open.
 * Figures are noisy on a shared 2-core machine: the load average is reported, and every
 * figure is a ratio against a reference measured in the same run.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statfsSync } from 'node:fs';
import { loadavg, tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { PAGE, defaultSegmentBlocks, type CleanerPolicy } from '../../allocator/index.ts';
import { simulate, type WaResult } from './wa.ts';
import { idealCleaning } from './ideal.ts';
import { allocatorRates, fioRates, type IoRates } from './io.ts';

const quick = process.argv.includes('--quick');
const onlyArg = process.argv.indexOf('--only');
const only = new Set(onlyArg > 0 ? process.argv[onlyArg + 1].split(',') : ['wa', 'io', 'recovery']);
const log = (s: string): void => void process.stderr.write(s + '\n');
const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-alloc-'));
const round = (x: number, d = 3): number => Math.round(x * 10 ** d) / 10 ** d;
const load = (): number[] => loadavg().map((x) => round(x, 2));

/** Runs a child of this bench and returns its first stdout line. */
function child(script: string, args: string[], keepAlive: boolean): Promise<{ line: string; kill: () => Promise<void> }> {
  const p = spawn(process.execPath, ['--import', 'tsx', new URL(script, import.meta.url).pathname, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((r) => p.on('exit', () => r()));
  return new Promise((resolve, reject) => {
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) {
        resolve({
          line: out.slice(0, out.indexOf('\n')),
          kill: async () => {
            if (keepAlive) p.kill('SIGKILL');
            await exited;
          },
        });
      }
    });
    p.on('exit', (c) => reject(new Error(`${script} exited with ${c} before reporting`)));
  });
}

/** Drops the page cache of `files` (written back first): coreutils dd iflag=nocache (posix_fadvise DONTNEED). */
function dropCache(files: string[]): number {
  execFileSync('sync', files);
  for (const f of files) execFileSync('dd', [`if=${f}`, 'iflag=nocache', 'count=0', 'status=none']);
  // What is still resident afterwards (fincore, util-linux), in bytes.
  const out = execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', ...files], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.trim()).reduce((s, l) => s + Number(l.trim()), 0);
}

function filesUnder(d: string): string[] {
  return readdirSync(d, { withFileTypes: true, recursive: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath ?? e.path, e.name));
}

const result: Record<string, unknown> = { suite: 'allocator', machine: { cpus: cpus().length, loadAverageAtStart: load() } };
try {
  if (only.has('wa')) {
    // ---- write amplification
    const REGION = (quick ? 256 : 1024) * 1024 * 1024 + PAGE;
    // The segment size a region of this size gets by default (1.25 MiB here).
    const SEG = defaultSegmentBlocks((REGION - PAGE) / PAGE) * PAGE;
    const segments = Math.floor((REGION - PAGE) / SEG);
    let waDir = dir;
    try {
      const f = statfsSync('/dev/shm');
      if (f.bavail * f.bsize > 3 * REGION) waDir = mkdtempSync('/dev/shm/cairn-bench-wa-');
    } catch {
      /* no tmpfs: use the temp dir */
    }
    const factor = quick ? 2 : 4;
    const wa: Array<WaResult & { ideal: { writeAmplification: number; cleanedUtilization: number }; vsIdeal: number }> = [];
    try {
      for (const u of [0.5, 0.75, 0.9]) {
        for (const workload of ['uniform', 'hot-cold'] as const) {
          for (const policy of ['greedy', 'cost-benefit'] as CleanerPolicy[]) {
            const r = await simulate(waDir, REGION, SEG, u, workload, policy, factor);
            const ideal = idealCleaning(segments, SEG / PAGE, u, workload, policy, factor);
            const row = { ...r, ideal, vsIdeal: round(r.writeAmplification / ideal.writeAmplification) };
            log(`wa ${JSON.stringify(row)}`);
            wa.push(row);
          }
        }
      }
    } finally {
      if (waDir !== dir) rmSync(waDir, { recursive: true, force: true });
    }
    const find = (u: number, w: string, p: string): WaResult => wa.find((r) => r.utilization === u && r.workload === w && r.policy === p)!;
    result.wa = {
      regionBytes: REGION, segmentBytes: SEG, segments, file: waDir === dir ? 'disk' : 'tmpfs', writesInFlight: 128,
      overwrites: `warm-up ${factor / 2} × live pages, then measured over one checkpoint interval (windowHostWrites, windowCheckpoints)`, results: wa,
    };
    result.waTargets = {
      metadataMaxRatio: Math.max(...wa.map((r) => r.metadataRatio)),
      metadataMax50and75: Math.max(...wa.filter((r) => r.utilization < 0.9).map((r) => r.metadataRatio)),
      uniform75GreedyWA: find(0.75, 'uniform', 'greedy').writeAmplification,
      uniform75GreedyIdealWA: wa.find((r) => r.utilization === 0.75 && r.workload === 'uniform' && r.policy === 'greedy')!.ideal.writeAmplification,
      uniform90GreedyWA: find(0.9, 'uniform', 'greedy').writeAmplification,
      hotColdCostBenefitBelowUniformGreedy: [0.5, 0.75, 0.9].every((u) => find(u, 'hot-cold', 'cost-benefit').writeAmplification < find(u, 'uniform', 'greedy').writeAmplification),
      hotColdCostBenefitVsGreedy: [0.5, 0.75, 0.9].map((u) => round(find(u, 'hot-cold', 'cost-benefit').writeAmplification / find(u, 'hot-cold', 'greedy').writeAmplification)),
    };
  }

  if (only.has('io')) {
    // ---- throughput next to fio
    const IO_BYTES = (quick ? 128 : 512) * 1024 * 1024;
    const SECS = quick ? 2 : 5;
    const loadBefore = load();
    log('io: allocator');
    const ours = await allocatorRates(dir, IO_BYTES, SECS);
    log(`io: ${JSON.stringify(ours)}; fio psync`);
    const psync = fioRates(dir, IO_BYTES, 'psync', SECS);
    log(`io: ${JSON.stringify(psync)}; fio io_uring`);
    const uring = fioRates(dir, IO_BYTES, 'io_uring', SECS);
    log(`io: ${JSON.stringify(uring)}`);
    const ratio = (a: IoRates, b: IoRates): Record<string, number | Record<string, number>> => ({
      randWriteIops: round(a.randWriteIops / b.randWriteIops, 2),
      randReadIops: round(a.randReadIops / b.randReadIops, 2),
      seqWriteMBps: round(a.seqWriteMBps / b.seqWriteMBps, 2),
      seqReadMBps: round(a.seqReadMBps / b.seqReadMBps, 2),
      cpuPerMB: {
        randWrite: round(a.cpuMsPerMB.randWrite / b.cpuMsPerMB.randWrite, 2),
        randRead: round(a.cpuMsPerMB.randRead / b.cpuMsPerMB.randRead, 2),
        seqWrite: round(a.cpuMsPerMB.seqWrite / b.cpuMsPerMB.seqWrite, 2),
        seqRead: round(a.cpuMsPerMB.seqRead / b.cpuMsPerMB.seqRead, 2),
      },
    });
    result.io = {
      fileBytes: IO_BYTES, secondsPerPhase: SECS, writesInFlight: 32, loadAverage: [loadBefore, load()],
      allocator: ours, fioPsync: psync, fioIoUring: uring, vsPsync: ratio(ours, psync), vsIoUring: ratio(ours, uring),
    };
  }

  if (only.has('recovery')) {
    // ---- recovery after SIGKILL (cold, then warm page cache), and map memory
    const LIVE_MIB = quick ? 256 : 1024;
    const CHURN_MIB = quick ? 32 : 256;
    const RSIZE = Math.ceil((LIVE_MIB * 1024 * 1024) / 0.8 / (1024 * 1024)) * 1024 * 1024 + PAGE;
    const rpath = join(dir, 'recovery.img');
    log(`recovery: filling ${LIVE_MIB} MiB live + ${CHURN_MIB} MiB random overwrites in a child, then SIGKILL`);
    const writer = await child('./recovery-child.ts', [rpath, String(RSIZE), String(LIVE_MIB), String(CHURN_MIB)], true);
    await writer.kill();
    const before = JSON.parse(writer.line);
    // The database's files change at every open (LevelDB compacts its log), so list them each time.
    const files = (): string[] => [rpath, ...filesUnder(`${rpath}.meta`)];
    // Best of three opens each (the machine is shared), cold ones after dropping the cache.
    const opens = async (drop: boolean): Promise<Array<Record<string, any>>> => {
      const out = [];
      for (let i = 0; i < 3; i++) {
        const resident = drop ? dropCache(files()) : null;
        const r = JSON.parse((await child('./recovery-open.ts', [rpath, String(RSIZE)], false)).line);
        log(`recovery: ${drop ? `cold (${resident} bytes still resident)` : 'warm'} ${JSON.stringify(r)}`);
        out.push({ ...r, resident, load: load() });
      }
      return out.sort((a, b) => a.seconds - b.seconds);
    };
    const colds = await opens(true);
    const warms = await opens(false);
    const cold = colds[0];
    const warm = warms[0];
    const gib = warm.liveBytes / 2 ** 30;
    result.recovery = {
      liveGiB: round(gib),
      checkpointsBeforeKill: before.checkpoints,
      logAfterCheckpointMiB: round(warm.recovery.logBytesReplayed / 2 ** 20, 1),
      recordsReplayed: warm.recovery.recordsReplayed,
      pagesReplayed: warm.recovery.pagesReplayed,
      headerReads: warm.recovery.headerReads,
      recordsVerified: warm.recovery.recordsVerified,
      // Roll-forward cost per GiB of log; the log after the newest checkpoint is at most what
      // the region holds (older records were overwritten), which bounds recovery.
      warmCpuSecondsPerGiBOfLog: round(warm.cpuSeconds / (warm.recovery.logBytesReplayed / 2 ** 30)),
      cold: {
        secondsPerLiveGiB: round(cold.seconds / gib), cpuSecondsPerLiveGiB: round(cold.cpuSeconds / gib),
        openSecondsAll: colds.map((r) => round(r.seconds)), residentBytesAfterDrop: cold.resident, loadAverage: cold.load,
      },
      warm: {
        secondsPerLiveGiB: round(warm.seconds / gib), cpuSecondsPerLiveGiB: round(warm.cpuSeconds / gib),
        openSecondsAll: warms.map((r) => round(r.seconds)), loadAverage: warm.load,
      },
    };
    result.memory = {
      mappedPages: warm.mappedPages,
      mapBytesPerPageEstimated: round(warm.mapBytes / warm.mappedPages, 2),
      mapBytesPerPageMeasured: warm.measuredBytesPerPage === null ? null : round(warm.measuredBytesPerPage, 2),
      note: 'measured: JS heap + ArrayBuffers grown by open(), per mapped page',
      projectedGiBFor1TiB: round((warm.mapBytes / warm.mappedPages) * (2 ** 40 / PAGE) / 2 ** 30, 2),
    };
  }
  (result.machine as Record<string, unknown>).loadAverageAtEnd = load();
  process.stdout.write(JSON.stringify(result) + '\n');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
