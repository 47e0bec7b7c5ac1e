/**
 * What a new writer does when it takes a volume's write lease (DESIGN promise 5 and
 * "peering"): announce its generation to every node, which fences older ones from then on,
 * gather the extents any node holds unsettled writes of (the previous writer may have died
 * mid-write, leaving a write on some members only), and have one member of each reconcile
 * the copies so every member serves the same bytes.
 */
import pMap from 'p-map';
import { BlockDeviceError } from '../volume/index.ts';
import { ConnectionError, Op, Status, statusName, type ConnectionPool, type Reply } from '../wire/index.ts';
import type { ClusterView, ViewSource } from './cluster-view.ts';
import { absentMask } from './member-io.ts';

/** A volume as seen by the writer-change steps. */
export interface WriterContext {
  connections: ConnectionPool;
  views: ViewSource;
  /** Volume id and name (for errors). */
  volume: number;
  name: string;
  /** Pages per extent (4 KiB). */
  extentPages: number;
  /** The extent's up set in placement order ([] when it cannot be placed). */
  placed(view: ClusterView, extent: number): number[];
  /** How long to wait for an unreachable node to be marked down, ms (default ANNOUNCE_TIMEOUT_MS). */
  timeoutMs?: number;
}

/** Maps a failed announcement's status to the caller's error code. */
function announceError(status: number, what: string): BlockDeviceError {
  return new BlockDeviceError(status === Status.Fenced ? 'EFENCED' : status === Status.Invalid ? 'EINVAL' : 'EIO', `${what}: ${statusName(status)}`);
}

/** How long announceLease waits for an unreachable node to be marked down, ms (default). */
export const ANNOUNCE_TIMEOUT_MS = 30000;

/**
 * Announces lease generation `gen` to every node of the current map and collects the
 * extents they hold unsettled writes of (Op.Suspects). A node that is unreachable is skipped
 * once the map marks it down (waiting for that up to `timeoutMs`): it learns the generation
 * from the authority when it returns.
 * @returns the extents to reconcile.
 * @throws BlockDeviceError EFENCED when a node has seen a newer generation, EIO when an up
 *         node cannot be reached.
 */
export async function announceLease(ctx: WriterContext, gen: number): Promise<number[]> {
  const view = ctx.views.current;
  const suspects = new Set<number>();
  const base = { flags: 0, epoch: view.epoch, volume: ctx.volume, extent: 0, partition: 0, firstPage: 0, pages: 0, lease: gen, version: 0, members: [] };
  const deadline = Date.now() + (ctx.timeoutMs ?? ANNOUNCE_TIMEOUT_MS);
  const results = await Promise.allSettled(view.map.nodes.map(async (n) => {
    let r: Reply;
    for (;;) {
      try {
        const c = await ctx.connections.get(n.id);
        r = await c.request({ ...base, op: Op.Lease });
        if (r.h.status === Status.Ok) {
          const s = await c.request({ ...base, op: Op.Suspects });
          if (s.h.status === Status.Ok) for (let o = 0; o + 4 <= s.payload.length; o += 4) suspects.add(s.payload.readUInt32LE(o));
        }
        break;
      } catch (e) {
        // A node that cannot be reached is skipped once the map says it is down (it learns
        // the generation from the authority when it returns); until then, wait for the map —
        // a node just killed is still "up" for the failure-detection time.
        if (!(e instanceof ConnectionError)) throw e;
        if (!view.isUp(n.id) || !ctx.views.current.isUp(n.id)) return;
        if (Date.now() > deadline) throw new BlockDeviceError('EIO', `announcing lease ${gen} to node ${n.id}: ${e.message} (and the map did not mark it down)`);
        await new Promise((res) => setTimeout(res, 100));
      }
    }
    if (r.h.status !== Status.Ok) throw announceError(r.h.status, `announcing lease ${gen} of volume ${ctx.name} to node ${n.id}`);
  }));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return [...suspects].sort((a, b) => a - b);
}

/**
 * Asks one up member of each extent (the first that answers) to make its members' copies
 * identical (Op.Reconcile), 16 extents at a time.
 * @returns how many were reconciled and how many could not be (no member answered).
 */
export async function reconcileExtents(ctx: WriterContext, lease: number, extents: number[]): Promise<{ reconciled: number; failures: number }> {
  let reconciled = 0;
  let failures = 0;
  await pMap(extents, async (extent) => {
    const view = ctx.views.current;
    const placed = ctx.placed(view, extent);
    const absent = absentMask(view, placed);
    for (const m of placed.filter((x) => view.isUp(view.nodeOf(x)))) {
      try {
        const c = await ctx.connections.get(view.nodeOf(m));
        const r = await c.request({ op: Op.Reconcile, flags: 0, epoch: view.epoch, volume: ctx.volume, extent, partition: m, firstPage: 0, pages: ctx.extentPages, lease, version: 0, members: placed, absent });
        if (r.h.status === Status.Ok) {
          reconciled++;
          return;
        }
      } catch {
        // try the next member
      }
    }
    failures++;
  }, { concurrency: 16 });
  return { reconciled, failures };
}
