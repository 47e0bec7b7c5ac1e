/**
 * Part 3 of the recovery bench: rebuild time of the same volume and data as the cluster
 * grows. For each node count a fresh cluster (3 replicas) is filled with the same bytes, the
 * rate limit is turned off, and the highest-numbered node is taken `out`; the rebuild time is
 * change → last receiver done (every extent has its three copies again). With more nodes the
 * out node holds less (3/N of the data) and more nodes pull it in parallel (declustered), so
 * both shorten the rebuild; MB/s per rebuild separates the second effect from the first.
 */
import { BenchCluster, type Movement } from './harness.ts';
import { roundOrNull } from './movement.ts';
import { mbps, median, ratio, round } from './stats.ts';

/** Options of measureScaling. */
export interface ScalingOptions {
  nodeCounts: number[];
  dataBytes: number;
  deviceBytes: number;
  repeats: number;
  timeoutMs: number;
  log: (line: string) => void;
  /** Backfill samples already taken for some node count (same data, limit off), reused instead of a fresh cluster. */
  reuse?: Map<number, Movement[]>;
}

/** One node count's rebuilds. */
export interface ScaleRun {
  nodes: number;
  /** Where the samples come from. */
  source: string;
  /** Median seconds from the `out` to the last receiver done. */
  seconds: number;
  /** Median seconds from the `out` to settled as polled (misplaced copies trimmed too). */
  settledSeconds: number;
  /** Median bytes moved (the out node's share: about 3/N of the data). */
  bytes: number;
  /** Median MB/s of the rebuild (bytes ÷ first pass start → last pass end). */
  MBps: number;
  receivers: number;
  samples: Array<{ bytes: number; seconds: number; settledSeconds: number; passSeconds: number; receivers: number[] }>;
}

/** The figures of part 3. */
export interface ScalingResult {
  dataBytes: number;
  runs: ScaleRun[];
  /** seconds(4) ÷ seconds(6): how many times faster the rebuild is on 6 nodes. */
  speedup6over4: number | null;
  /** seconds(4) ÷ seconds(8). */
  speedup8over4: number | null;
  /** MBps(6) ÷ MBps(4): the parallel part of the speed-up alone (the bytes per rebuild differ). */
  throughput6over4: number | null;
  /** MBps(8) ÷ MBps(4). */
  throughput8over4: number | null;
  /** Per node count: the error that stopped its run. */
  errors: Record<string, string>;
}

/** Reduces samples of one node count. */
function scaleRun(nodes: number, source: string, ms: Movement[]): ScaleRun {
  return {
    nodes,
    source,
    seconds: round(median(ms.map((m) => m.changeToDoneSeconds)), 2),
    settledSeconds: round(median(ms.map((m) => m.changeToSettledSeconds)), 2),
    bytes: median(ms.map((m) => m.bytes)),
    MBps: round(median(ms.map((m) => mbps(m.bytes, m.seconds))), 1),
    receivers: ms[0].receivers.length,
    samples: ms.map((m) => ({ bytes: m.bytes, seconds: round(m.changeToDoneSeconds, 2), settledSeconds: round(m.changeToSettledSeconds, 2), passSeconds: round(m.seconds, 2), receivers: m.receivers })),
  };
}

/** Runs part 3 on fresh clusters (one at a time; each is stopped before the next starts). */
export async function measureScaling(o: ScalingOptions): Promise<ScalingResult> {
  const runs: ScaleRun[] = [];
  const errors: Record<string, string> = {};
  for (const n of o.nodeCounts) {
    const reused = o.reuse?.get(n);
    if (reused?.length) {
      runs.push(scaleRun(n, 'the backfill samples of part 1 (same data, limit off)', reused));
      continue;
    }
    o.log(`rebuild scaling: starting ${n} nodes with ${o.dataBytes / 2 ** 20} MiB of data`);
    const t0 = Date.now();
    let c: BenchCluster | null = null;
    try {
      c = await BenchCluster.start({ nodes: n, volumeBytes: o.dataBytes, deviceBytes: o.deviceBytes, log: o.log });
      const fill = await c.fill();
      o.log(`${n} nodes up and filled (${fill} MB/s) after ${((Date.now() - t0) / 1000).toFixed(1)} s; limit off`);
      await c.setRate(0);
      const victim = n - 1;
      const ms: Movement[] = [];
      for (let r = 1; r <= o.repeats; r++) {
        const cl = c;
        const m = await cl.movement('backfill', async () => {
          const at = Date.now();
          return { epoch: await cl.change({ type: 'out', node: victim }), at };
        }, o.timeoutMs);
        ms.push(m);
        o.log(`${n} nodes, rebuild ${r}/${o.repeats}: ${(m.bytes / 1e6).toFixed(1)} MB into ${m.receivers.length} nodes, out → done ${m.changeToDoneSeconds.toFixed(2)} s (${mbps(m.bytes, m.seconds).toFixed(1)} MB/s)`);
        if (r < o.repeats) {
          const e = await cl.change({ type: 'in', node: victim });
          await cl.settled(e, o.timeoutMs);
        }
      }
      runs.push(scaleRun(n, `a fresh ${n}-node cluster`, ms));
    } catch (e) {
      errors[String(n)] = (e as Error).message;
      o.log(`${n} nodes failed: ${(e as Error).message}`);
    } finally {
      await c?.stop();
    }
  }
  const at = (n: number): ScaleRun | undefined => runs.find((r) => r.nodes === n);
  const sp = (n: number): number | null => roundOrNull(at(4) && at(n) ? ratio(at(4)!.seconds, at(n)!.seconds) : null, 3);
  const tp = (n: number): number | null => roundOrNull(at(4) && at(n) ? ratio(at(n)!.MBps, at(4)!.MBps) : null, 3);
  return { dataBytes: o.dataBytes, runs, speedup6over4: sp(6), speedup8over4: sp(8), throughput6over4: tp(6), throughput8over4: tp(8), errors };
}
