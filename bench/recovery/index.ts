/**
 * `npm run bench -- recovery [--quick] [--size SIZE] [--fg-size SIZE] [--runtime S] [--repeats N]
 *   [--parts movement,foreground,scaling] [--scale-nodes 4,6,8]`
 *
 * Recovery speed and its cost to the foreground, on local clusters of node processes (3
 * replicas, file-backed devices, vol0 served over NBD from this process):
 *
 * 1. movement — resync, backfill and rebalance MB/s on 4 nodes with `--size` of data, the rate
 *    limit off (recoveryBytesPerSec 0) so the figures show what the machinery can do; each next
 *    to the default throttle × receiving nodes and to a sequential file copy of the same bytes
 *    with fsync, measured right after it (movement.ts).
 * 2. foreground — fio 4 KiB QD32 randwrite IOPS idle and during a backfill, with the default
 *    throttle (64 MiB/s per node; target fraction ≥ 0.70) and with the throttle off as the
 *    reference; the same cluster, topped up to `--fg-size` so the backfill outlasts the window
 *    (foreground.ts).
 * 3. scaling — rebuild time of `--size` of data after `out` of one node on 4, 6 and 8 nodes,
 *    limit off, with the speed-ups 6/4 and 8/4 (scaling.ts). The 4-node figure reuses part 1's
 *    backfills (same data, same setting) when part 1 ran.
 *
 * `--quick`: small sizes for a check (~2 min on a quiet machine). Progress goes to stderr, one
 * JSON document to stdout; MB = 10^6 bytes. Exit code 1 when a part failed (its error is in
 * the JSON).
 */
import { cpus, loadavg, tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { DEFAULT_LAYOUT } from '../../src/cluster/index.ts';
import { BenchCluster, MEMBERSHIP, stopAll, thawAll } from './harness.ts';
import { measureForeground, FOREGROUND_SHARE, type ForegroundRun } from './foreground.ts';
import { measureMovements, DEFAULT_RATE, type KindSummary, type MovedKind } from './movement.ts';
import { measureScaling, type ScalingResult } from './scaling.ts';
import { MiB, parseSize, round } from './stats.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    size: { type: 'string' },
    'fg-size': { type: 'string' },
    runtime: { type: 'string' },
    repeats: { type: 'string' },
    parts: { type: 'string', default: 'movement,foreground,scaling' },
    'scale-nodes': { type: 'string', default: '4,6,8' },
  },
});
const log = (s: string): void => void process.stderr.write(`[bench recovery ${((Date.now() - T0) / 1000).toFixed(0).padStart(4)}s] ${s}\n`);
const usage = (msg: string): never => {
  process.stderr.write(`bench recovery: ${msg}\n`);
  process.exit(2);
};
const T0 = Date.now();
const quick = values.quick!;
let size = 0;
let fgSize = 0;
try {
  size = parseSize(values.size ?? (quick ? '64m' : '256m'));
  fgSize = parseSize(values['fg-size'] ?? (quick ? '512m' : '1280m'));
} catch (e) {
  usage((e as Error).message);
}
const runtime = Number(values.runtime ?? (quick ? 4 : 12));
const repeats = Number(values.repeats ?? (quick ? 1 : 2));
const parts = new Set(values.parts!.split(',').map((s) => s.trim()));
const scaleNodes = values['scale-nodes']!.split(',').map(Number);
if (size < 16 * MiB || size % MiB || fgSize % MiB) usage('--size must be at least 16m, sizes whole MiB');
if (!(runtime >= 2) || !Number.isInteger(repeats) || repeats < 1) usage('--runtime must be ≥ 2 seconds, --repeats a whole number ≥ 1');
for (const p of parts) if (!['movement', 'foreground', 'scaling'].includes(p)) usage(`unknown part '${p}' (movement, foreground, scaling)`);
if (scaleNodes.some((n) => !Number.isInteger(n) || n < 4)) usage('--scale-nodes must list whole node counts ≥ 4 (3 replicas and one node out)');

/** The node stopped / taken out on the 4-node cluster (node 0 runs the map authority). */
const VICTIM = 3;
const TIMEOUT_MS = 600000;
/** Sparse device files (2 per node): room for every copy of the volume on one node, twice over. */
const deviceBytes = (volume: number): number => Math.max(512 * MiB, Math.ceil((2 * volume) / MiB) * MiB);

const errors: Record<string, string> = {};
const notes: string[] = [];
let shuttingDown = false;
const shutdown = (signal: NodeJS.Signals): void => {
  if (shuttingDown) return;
  shuttingDown = true;
  log(`${signal}: stopping the clusters`);
  thawAll();
  void stopAll().finally(() => process.exit(130));
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
process.on('exit', thawAll);

const loadStart = loadavg().map((l) => round(l, 2));
let movement: Record<MovedKind, KindSummary> | null = null;
const foreground: { throttled?: ForegroundRun; unthrottled?: ForegroundRun } = {};
let scaling: ScalingResult | null = null;

// Parts 1 and 2 share one 4-node cluster; a part that fails leaves it to be started afresh.
let a: BenchCluster | null = null;
let filledTo = 0;
const volumeA = Math.max(size, parts.has('foreground') ? fgSize : 0);
async function clusterA(): Promise<BenchCluster> {
  if (a) return a;
  log(`starting 4 nodes (3 replicas), vol0 ${volumeA / MiB} MiB; filling ${size / MiB} MiB with fio`);
  a = await BenchCluster.start({ nodes: 4, volumeBytes: volumeA, deviceBytes: deviceBytes(volumeA), log });
  const mbps = await a.fill(0, size);
  filledTo = size;
  log(`filled at ${mbps} MB/s; recovery rate limit off (0)`);
  await a.setRate(0);
  return a;
}
async function dropA(): Promise<void> {
  await a?.stop();
  a = null;
}

try {
  if (parts.has('movement')) {
    try {
      const c = await clusterA();
      movement = await measureMovements({ cluster: c, victim: VICTIM, regionBytes: Math.max(MiB, Math.floor(size / 4 / MiB) * MiB), repeats, copyDir: tmpdir(), timeoutMs: TIMEOUT_MS, log });
    } catch (e) {
      errors.movement = (e as Error).message;
      log(`movement failed: ${(e as Error).message}`);
      await dropA();
    }
  }
  if (parts.has('foreground') && !shuttingDown) {
    try {
      const c = await clusterA();
      if (filledTo < fgSize) {
        log(`topping the volume up to ${fgSize / MiB} MiB so the backfill outlasts the fio window`);
        const mbps = await c.fill(filledTo, fgSize - filledTo);
        filledTo = fgSize;
        log(`filled at ${mbps} MB/s`);
      }
      const o = { cluster: c, victim: VICTIM, fioBytes: filledTo, runtimeSeconds: runtime, timeoutMs: TIMEOUT_MS, log };
      foreground.throttled = await measureForeground(o, DEFAULT_RATE);
      foreground.unthrottled = await measureForeground(o, 0, false);
    } catch (e) {
      errors.foreground = (e as Error).message;
      log(`foreground failed: ${(e as Error).message}`);
    }
  }
} finally {
  await dropA();
}

if (parts.has('scaling') && !shuttingDown) {
  const reuse = new Map<number, KindSummary['samples']>();
  if (movement) reuse.set(4, movement.backfill.samples);
  scaling = await measureScaling({ nodeCounts: scaleNodes, dataBytes: size, deviceBytes: deviceBytes(size), repeats, timeoutMs: TIMEOUT_MS, log, reuse });
  for (const [n, msg] of Object.entries(scaling.errors)) errors[`scaling${n}`] = msg;
}

// What the figures say, in words.
if (movement?.rebalance.samples.some((s) => s.byKind.resync && !s.byKind.rebalance)) {
  notes.push('after `in` the returning node compares and pulls what is placed on it as a full-peering resync, so the rebalance figure counts its resync pass (byKind shows the kinds that ran)');
}
const th = foreground.throttled;
if (th && !th.backfillCoveredWindow) notes.push(`the throttled backfill ended before the fio window did (${th.backfillActiveSecondsOfWindow} of ${th.windowSeconds} s): raise --fg-size`);
const un = foreground.unthrottled;
if (un && !un.backfillCoveredWindow) notes.push(`with the throttle off the backfill ran ${un.backfillActiveSecondsOfWindow} of the ${un.windowSeconds} s fio window, so its fraction is flattered by the idle rest of the window`);
if (cpus().length <= 2) notes.push(`${cpus().length} CPU cores run every node process, the initiator and fio: recovery and foreground compete for CPU, and more nodes add processes rather than hardware, which limits the rebuild speed-up`);

const fg = (r: ForegroundRun | undefined): object | undefined => r && { ...r, target: 0.7, meetsTarget: r.fraction !== null && r.fraction >= 0.7 };
console.log(JSON.stringify({
  bench: 'recovery',
  /** The figures at a glance; each is detailed, with its references, below. */
  headline: {
    MBps: movement && {
      resync: movement.resync.MBps, backfill: movement.backfill.MBps, rebalance: movement.rebalance.MBps,
      rateLimit: 'unlimited (recoveryBytesPerSec 0)',
    },
    MBpsReferences: movement && {
      throttleTimesReceivers: { resync: movement.resync.reference.throttle.MBps, backfill: movement.backfill.reference.throttle.MBps, rebalance: movement.rebalance.reference.throttle.MBps },
      fileCopy: { resync: movement.resync.reference.fileCopy.MBps, backfill: movement.backfill.reference.fileCopy.MBps, rebalance: movement.rebalance.reference.fileCopy.MBps },
    },
    foregroundFraction: (th || un) && { throttled: th?.fraction ?? null, unthrottled: un?.fraction ?? null, target: 0.7, backfillCoveredWindow: th?.backfillCoveredWindow ?? null },
    rebuildSeconds: scaling && { ...Object.fromEntries(scaling.runs.map((r) => [`nodes${r.nodes}`, r.seconds])), speedup6over4: scaling.speedup6over4, speedup8over4: scaling.speedup8over4, cpus: cpus().length },
  },
  setup: {
    quick,
    cpus: cpus().length,
    loadavgStart: loadStart,
    loadavgEnd: loadavg().map((l) => round(l, 2)),
    node: process.version,
    replicas: 3,
    extentBytes: MiB,
    devicesPerNode: DEFAULT_LAYOUT.devicesPerNode,
    partitionsPerDevice: DEFAULT_LAYOUT.partitionsPerDevice,
    membership: MEMBERSHIP,
    dataBytes: size,
    foregroundDataBytes: parts.has('foreground') ? fgSize : undefined,
    fioRuntimeSeconds: runtime,
    repeats,
    units: 'MB = 10^6 bytes; seconds of wall time; figures over repeats are medians',
    totalSeconds: round((Date.now() - T0) / 1000, 1),
  },
  movement: movement && {
    setup: `4 nodes, ${size / MiB} MiB written, node ${VICTIM} stopped/out/in; recoveryBytesPerSec 0 (unlimited) so the figures show what the machinery can do. `
      + 'MBps = receivers\' progress bytesDone ÷ (first pass startedAt → last finishedAt across nodes); MBpsFromChange counts from the change (map propagation, peering). '
      + `resync: node ${VICTIM} SIGSTOPped until marked down while fio rewrites the first ${Math.max(1, Math.floor(size / 4 / MiB))} MiB, then SIGCONT. `
      + `References: throttle = default ${DEFAULT_RATE / MiB} MiB/s per node × receiving nodes; fileCopy = sequential copy of the same bytes between two files (1 MiB blocks, fsync) in ${tmpdir()}, taken right after each movement.`,
    ...movement,
  },
  foreground: (th || un) && {
    setup: `fio nbd engine randwrite bs=4k iodepth=32 over ${filledTo / MiB} MiB, time_based ${runtime} s after a 1 s ramp; idle right before, then during a backfill (out node ${VICTIM} of 4, started before fio and checked still active when fio ends). `
      + `While host I/O is active each node keeps ${FOREGROUND_SHARE * 100}% of its recovery rate, so windowRecovery.throttleMBps = rate × ${FOREGROUND_SHARE} × receivers.`,
    throttled: fg(th),
    unthrottled: fg(un),
    /** What the throttle buys: the throttled fraction over the unthrottled one. */
    throttleGain: th?.fraction && un?.fraction ? round(th.fraction / un.fraction, 3) : null,
  },
  rebuildScaling: scaling && {
    setup: `${size / MiB} MiB written to a fresh cluster per node count, limit off, out of the highest-numbered node; seconds = out → last receiver done (median). `
      + 'The out node holds ~3/N of the data, so bytes shrink as N grows; throughput ratios show the parallel (declustered) part alone.',
    cpus: cpus().length,
    ...scaling,
  },
  notes,
  errors,
}, null, 2));
process.exitCode = Object.keys(errors).length ? 1 : 0;
