/**
 * Part 2 of the recovery bench: what a backfill costs the foreground. fio 4 KiB random
 * writes at QD32 (nbd engine, time based) measured idle, then again while a backfill (`out`
 * of the victim node) runs, at a given recovery rate limit: `fraction` = during ÷ idle. The
 * backfill must still be running when the fio window ends (`backfillCoveredWindow`); what
 * recovery moved inside the window is set next to what the throttle allows while host I/O is
 * active (rate × 25 % × receivers). Afterwards the victim is put back in (limit off) so the
 * next run starts from the same placement.
 */
import { fio, round, type FioFigures } from '../lib/fio.ts';
import { pass, reduceMovement, type BenchCluster } from './harness.ts';
import { roundOrNull } from './movement.ts';
import { mbps, ratio } from './stats.ts';
import type { NodeRecoveryReport } from '../../src/recovery/index.ts';

/** Share of the rate a node's recovery keeps while host I/O is active (RecoveryThrottle's default). */
export const FOREGROUND_SHARE = 0.25;

/** Options of measureForeground. */
export interface ForegroundOptions {
  cluster: BenchCluster;
  victim: number;
  /** Bytes of the volume fio's random writes cover (from offset 0). */
  fioBytes: number;
  /** fio runtime (s), after a 1 s ramp. */
  runtimeSeconds: number;
  timeoutMs: number;
  log: (line: string) => void;
}

/** One idle / during-backfill pair at one rate limit. */
export interface ForegroundRun {
  /** recoveryBytesPerSec in force (0: unlimited). */
  rateLimitBytesPerSec: number;
  idle: FioFigures;
  during: FioFigures;
  /** during.iops ÷ idle.iops. */
  fraction: number | null;
  /** A backfill pass started after the `out` was still active on some receiver when fio ended. */
  backfillCoveredWindow: boolean;
  /** Receivers whose backfill pass was active when fio ended. */
  receiversActiveAtEnd: number[];
  /** Seconds of the fio window (start of fio → end, ramp included) during which some backfill pass ran. */
  backfillActiveSecondsOfWindow: number;
  windowSeconds: number;
  /** What the backfill moved inside the fio window. */
  windowRecovery: {
    bytes: number;
    MBps: number;
    receivers: number;
    /** The throttle while host I/O is active: rate × 25 % × receivers (null when unlimited). */
    throttleMBps: number | null;
    /** MBps ÷ throttleMBps. */
    ratioToThrottle: number | null;
  };
  /** The whole backfill: bytes, receivers, first start → last end, change → settled. */
  backfill: { bytes: number; receivers: number[]; seconds: number; MBps: number; changeToDoneSeconds: number; changeToSettledSeconds: number };
}

const ok = (rs: Array<NodeRecoveryReport | null>): NodeRecoveryReport[] => rs.filter((r): r is NodeRecoveryReport => r !== null);

/**
 * Runs one idle / during-backfill pair at `rate` bytes/s per node (0: unlimited); with
 * `restore` the victim is put back in afterwards (limit off) and the cluster settled again.
 */
export async function measureForeground(o: ForegroundOptions, rate: number, restore = true): Promise<ForegroundRun> {
  const c = o.cluster;
  const job = ['--name=fg', '--ioengine=nbd', `--uri=${c.uri}`, '--rw=randwrite', '--bs=4k', '--iodepth=32', `--size=${o.fioBytes}`,
    '--time_based', `--runtime=${o.runtimeSeconds}`, '--ramp_time=1', '--randrepeat=0'];
  const label = rate ? `${rate / 2 ** 20} MiB/s per node` : 'unlimited';
  await c.setRate(rate);
  o.log(`foreground (${label}): idle fio 4k randwrite QD32, ${o.runtimeSeconds} s`);
  const idle = await fio(job, 'write');
  o.log(`idle: ${idle.iops} IOPS; out node ${o.victim} and fio again while it backfills`);

  const before = ok(await c.reports());
  const outAt = Date.now();
  const epoch = await c.change({ type: 'out', node: o.victim });
  await c.waitActive('backfill', outAt, 30000);
  const s0 = ok(await c.reports());
  const wStart = Date.now();
  const during = await fio(job, 'write');
  const wEnd = Date.now();
  const s1 = ok(await c.reports());
  const current = (r: NodeRecoveryReport): boolean => (pass(r, 'backfill').startedAt ?? 0) >= outAt - 20;
  const activeAtEnd = s1.filter((r) => current(r) && pass(r, 'backfill').active).map((r) => r.node);
  let windowBytes = 0;
  const windowReceivers = new Set<number>();
  for (const r of s1.filter(current)) {
    const p = pass(r, 'backfill');
    const p0 = s0.find((x) => x.node === r.node);
    const was = p0 && pass(p0, 'backfill').startedAt === p.startedAt ? pass(p0, 'backfill').bytesDone : 0;
    if (p.bytesDone > was) windowReceivers.add(r.node);
    windowBytes += p.bytesDone - was;
  }
  o.log(`during backfill: ${during.iops} IOPS (${round(during.iops / idle.iops, 3)} of idle); backfill active at the end on node(s) [${activeAtEnd.join(',')}]`);

  const settled = await c.settled(epoch, o.timeoutMs);
  const m = reduceMovement('backfill', outAt, settled.at, before, settled.reports);
  const passes = settled.reports.map((r) => pass(r, 'backfill')).filter((p) => (p.startedAt ?? 0) >= outAt - 20 && p.extentsTotal > 0);
  const firstStart = Math.min(...passes.map((p) => p.startedAt!));
  const lastEnd = Math.max(...passes.map((p) => p.finishedAt ?? settled.at));
  const activeSeconds = Math.max(0, Math.min(lastEnd, wEnd) - Math.max(firstStart, wStart)) / 1000;
  o.log(`backfill settled: ${(m.bytes / 1e6).toFixed(1)} MB in ${m.seconds.toFixed(1)} s (out → settled ${m.changeToSettledSeconds.toFixed(1)} s)`);

  if (restore) {
    o.log(`in node ${o.victim} again (limit off) for the next run`);
    await c.setRate(0);
    const inEpoch = await c.change({ type: 'in', node: o.victim });
    await c.settled(inEpoch, o.timeoutMs);
  }

  const windowSeconds = (wEnd - wStart) / 1000;
  const windowMBps = mbps(windowBytes, windowSeconds);
  const throttleMBps = rate ? (rate * FOREGROUND_SHARE * windowReceivers.size) / 1e6 : null;
  return {
    rateLimitBytesPerSec: rate,
    idle,
    during,
    fraction: roundOrNull(ratio(during.iops, idle.iops), 3),
    backfillCoveredWindow: activeAtEnd.length > 0,
    receiversActiveAtEnd: activeAtEnd,
    backfillActiveSecondsOfWindow: round(activeSeconds, 2),
    windowSeconds: round(windowSeconds, 2),
    windowRecovery: {
      bytes: windowBytes,
      MBps: round(windowMBps, 1),
      receivers: windowReceivers.size,
      throttleMBps: throttleMBps === null ? null : round(throttleMBps, 1),
      ratioToThrottle: throttleMBps === null ? null : roundOrNull(ratio(windowMBps, throttleMBps), 3),
    },
    backfill: {
      bytes: m.bytes,
      receivers: m.receivers,
      seconds: round(m.seconds, 2),
      MBps: round(mbps(m.bytes, m.seconds), 1),
      changeToDoneSeconds: round(m.changeToDoneSeconds, 2),
      changeToSettledSeconds: round(m.changeToSettledSeconds, 2),
    },
  };
}
