/**
 * Part 1 of the recovery bench: how fast the machinery moves data, per kind, with the rate
 * limit off. On a filled 4-node cluster, each repeat runs
 *
 * - resync: SIGSTOP the victim node until the map marks it down, write a region with fio
 *   (its members record what the victim missed), SIGCONT, and time its catch-up;
 * - backfill: `out` the victim (its extents get new members on the other nodes);
 * - rebalance: `in` it again (placement moves its extents back);
 *
 * each followed by a plain file copy of the same bytes as the machine's reference.
 */
import { fio } from '../lib/fio.ts';
import { fileCopy, type CopyFigures } from './copy.ts';
import type { BenchCluster, Movement } from './harness.ts';
import { mbps, median, ratio, round } from './stats.ts';

/** The map's default recoveryBytesPerSec (64 MiB/s): the throttle reference. */
export const DEFAULT_RATE = 64 * 1024 * 1024;

/** One measured movement with its figures and the reference copy taken right after it. */
export interface MovementSample extends Movement {
  /** bytes ÷ seconds (first pass start → last pass end), MB/s. */
  MBps: number;
  copy: CopyFigures;
}

/** A kind's figures over the repeats (medians), next to its references. */
export interface KindSummary {
  /** Median MB/s (bytes moved ÷ first pass start → last pass end). */
  MBps: number;
  /** Median MB/s over change → last pass end (includes map propagation and peering). */
  MBpsFromChange: number;
  /** Median bytes moved. */
  bytes: number;
  /** Receiving nodes (of the first sample). */
  receivers: number[];
  reference: {
    /** The default throttle × receiving nodes (this figure was taken with the limit off). */
    throttle: { perNodeBytesPerSec: number; receivers: number; MBps: number };
    /** A sequential copy of the same bytes between two files with fsync, median of one per repeat. */
    fileCopy: { bytes: number; MBps: number };
  };
  /** MBps ÷ reference.throttle.MBps. */
  ratioToThrottle: number | null;
  /** MBps ÷ reference.fileCopy.MBps. */
  ratioToFileCopy: number | null;
  samples: MovementSample[];
}

/** Options of measureMovements. */
export interface MovementOptions {
  cluster: BenchCluster;
  /** The node stopped, taken out and put back in (not node 0, which runs the map authority). */
  victim: number;
  /** Bytes fio rewrites (from offset 0) while the victim is stopped. */
  regionBytes: number;
  repeats: number;
  /** Where the reference copy's files go (the cluster's file system). */
  copyDir: string;
  /** Longest wait for one movement to settle (ms). */
  timeoutMs: number;
  log: (line: string) => void;
}

/** Kinds part 1 measures. */
export type MovedKind = 'resync' | 'backfill' | 'rebalance';

/** Runs part 1 (the caller sets the rate limit). @returns a summary per kind. */
export async function measureMovements(o: MovementOptions): Promise<Record<MovedKind, KindSummary>> {
  const c = o.cluster;
  const samples: Record<MovedKind, MovementSample[]> = { resync: [], backfill: [], rebalance: [] };
  const sample = async (m: Movement): Promise<MovementSample> => {
    const s: MovementSample = { ...m, MBps: mbps(m.bytes, m.seconds), copy: await fileCopy(o.copyDir, m.bytes) };
    o.log(`${m.kind}: ${(m.bytes / 1e6).toFixed(1)} MB into node(s) ${m.receivers.join(',')} in ${m.seconds.toFixed(2)} s = ${s.MBps.toFixed(1)} MB/s `
      + `(change → done ${m.changeToDoneSeconds.toFixed(2)} s, settled ${m.changeToSettledSeconds.toFixed(1)} s); file copy ${s.copy.MBps.toFixed(0)} MB/s`);
    return s;
  };
  for (let r = 1; r <= o.repeats; r++) {
    o.log(`movement repeat ${r}/${o.repeats}: resync — stopping node ${o.victim}, writing ${o.regionBytes / 2 ** 20} MiB while it is down`);
    await c.freeze(o.victim);
    const w = await fio(['--name=region', '--ioengine=nbd', `--uri=${c.uri}`, '--rw=write', '--bs=1m', '--iodepth=8', '--offset=0', `--size=${o.regionBytes}`], 'write');
    o.log(`region written degraded at ${w.mbps} MB/s; SIGCONT node ${o.victim}`);
    samples.resync.push(await sample(await c.movement('resync', async () => {
      const at = c.thaw(o.victim);
      return { epoch: await c.waitNode(o.victim, (n) => n.up, 60000, 'marked up again'), at };
    }, o.timeoutMs)));

    o.log(`movement repeat ${r}/${o.repeats}: backfill — out node ${o.victim}`);
    samples.backfill.push(await sample(await c.movement('backfill', async () => {
      const at = Date.now();
      return { epoch: await c.change({ type: 'out', node: o.victim }), at };
    }, o.timeoutMs)));

    o.log(`movement repeat ${r}/${o.repeats}: rebalance — in node ${o.victim}`);
    samples.rebalance.push(await sample(await c.movement('rebalance', async () => {
      const at = Date.now();
      return { epoch: await c.change({ type: 'in', node: o.victim }), at };
    }, o.timeoutMs)));
  }
  return { resync: summarize(samples.resync), backfill: summarize(samples.backfill), rebalance: summarize(samples.rebalance) };
}

/** Medians of a kind's samples next to its references. */
export function summarize(samples: MovementSample[]): KindSummary {
  const MBps = median(samples.map((s) => s.MBps));
  const receivers = samples[0].receivers;
  const throttle = { perNodeBytesPerSec: DEFAULT_RATE, receivers: receivers.length, MBps: round((DEFAULT_RATE * receivers.length) / 1e6, 1) };
  const copy = { bytes: median(samples.map((s) => s.copy.bytes)), MBps: round(median(samples.map((s) => s.copy.MBps)), 1) };
  return {
    MBps: round(MBps, 1),
    MBpsFromChange: round(median(samples.map((s) => mbps(s.bytes, s.changeToDoneSeconds))), 1),
    bytes: median(samples.map((s) => s.bytes)),
    receivers,
    reference: { throttle, fileCopy: copy },
    ratioToThrottle: roundOrNull(ratio(MBps, throttle.MBps), 3),
    ratioToFileCopy: roundOrNull(ratio(MBps, copy.MBps), 3),
    samples: samples.map(roundSample),
  };
}

/** `n` rounded to `d` decimals, or null. */
export function roundOrNull(n: number | null, d: number): number | null {
  return n === null ? null : round(n, d);
}

/** A sample with its seconds and rates rounded for the report. */
function roundSample(s: MovementSample): MovementSample {
  return {
    ...s,
    MBps: round(s.MBps, 1),
    startDelaySeconds: round(s.startDelaySeconds, 3),
    seconds: round(s.seconds, 3),
    changeToDoneSeconds: round(s.changeToDoneSeconds, 3),
    changeToSettledSeconds: round(s.changeToSettledSeconds, 2),
    copy: { bytes: s.copy.bytes, seconds: round(s.copy.seconds, 3), MBps: round(s.copy.MBps, 1) },
  };
}
