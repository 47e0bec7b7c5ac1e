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
import { STALE_RETRIES } from './io-status.ts';
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
 * from the authority when it returns. Every reply carries the node's map epoch: when one is
 * newer than the writer's map, the map is refreshed and the nodes it adds (a node that
 * joined since) are announced too, so none is left unfenced because the writer's map lagged.
 * @returns the extents to reconcile.
 * @throws BlockDeviceError EFENCED when a node has seen a newer generation, EIO when an up
 *         node cannot be reached.
 */
export async function announceLease(ctx: WriterContext, gen: number): Promise<number[]> {
  const suspects = new Set<number>();
  const announced = new Set<number>();
  const deadline = Date.now() + (ctx.timeoutMs ?? ANNOUNCE_TIMEOUT_MS);
  let view = ctx.views.current;
  for (let round = 0; round <= STALE_RETRIES; round++) {
    const nodes = view.map.nodes.filter((n) => !announced.has(n.id));
    let newest = view.epoch;
    const base = { flags: 0, epoch: view.epoch, volume: ctx.volume, extent: 0, partition: 0, firstPage: 0, pages: 0, lease: gen, version: 0, members: [] };
    const results = await Promise.allSettled(nodes.map(async (n) => {
      let r: Reply;
      for (;;) {
        try {
          const c = await ctx.connections.get(n.id);
          r = await c.request({ ...base, op: Op.Lease });
          if (r.h.status === Status.Ok) {
            newest = Math.max(newest, r.h.epoch);
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
    for (const n of nodes) announced.add(n.id);
    if (newest <= view.epoch) break;
    const next = await ctx.views.refresh(newest).catch(() => view);
    if (next.epoch <= view.epoch) break; // no newer map to be had now: the nodes it adds learn the generation from requests or the authority
    view = next;
  }
  return [...suspects].sort((a, b) => a - b);
}

/**
 * Asks one up member of each extent (the first that answers) to make its members' copies
 * identical (Op.Reconcile), 16 extents at a time. A StaleEpoch answer (the node's map is
 * newer, so the members named may be the wrong set) refreshes the map and asks again, up
 * to STALE_RETRIES times. An extent no member could reconcile (every up member failed, or
 * it cannot be placed now) is returned in `failed`.
 * @returns how many were reconciled, and the extents that were not (ascending).
 */
export async function reconcileExtents(ctx: WriterContext, lease: number, extents: number[]): Promise<{ reconciled: number; failed: number[] }> {
  let reconciled = 0;
  const failed: number[] = [];
  await pMap(extents, async (extent) => {
    // A member from a newer epoch answers StaleEpoch (the members named may be the wrong
    // set): refresh the map and ask again, a few times.
    for (let stale = 0; stale <= STALE_RETRIES; stale++) {
      const view = ctx.views.current;
      const placed = ctx.placed(view, extent); // [] when it cannot be placed now: failed, retried later
      const absent = absentMask(view, placed);
      let newer = 0;
      for (const m of placed.filter((x) => view.isUp(view.nodeOf(x)))) {
        try {
          const c = await ctx.connections.get(view.nodeOf(m));
          const r = await c.request({ op: Op.Reconcile, flags: 0, epoch: view.epoch, volume: ctx.volume, extent, partition: m, firstPage: 0, pages: ctx.extentPages, lease, version: 0, members: placed, absent });
          if (r.h.status === Status.Ok) {
            reconciled++;
            return;
          }
          if (r.h.status === Status.StaleEpoch) {
            newer = r.h.aux;
            break;
          }
        } catch {
          // try the next member
        }
      }
      if (!newer) break;
      await ctx.views.refresh(newer).catch(() => undefined);
    }
    failed.push(extent);
  }, { concurrency: 16 });
  return { reconciled, failed: failed.sort((a, b) => a - b) };
}

/** First wait before retrying extents a writer change could not reconcile, ms; it doubles up to RECONCILE_RETRY_MAX_MS. */
export const RECONCILE_RETRY_MS = 250;
/** Longest wait between two retries, ms. */
export const RECONCILE_RETRY_MAX_MS = 8000;

/**
 * Extents a writer change could not reconcile yet (no up member answered Op.Reconcile, e.g.
 * one whose copy was still being filled), retried in the background until each one is.
 * Until then their members may serve different bytes for a write the previous writer left
 * on some of them only.
 *
 * While any extent is pending, the volume's flushes must carry no settle watermark (see
 * Volume.flush): a node drops an unsettled extent whose newest version lies below the
 * watermark, and every version of the old generation lies below any watermark of the new
 * one, so the first flush would drop exactly the extents still waiting here. Kept, they are
 * suspects again for the next writer, should this one die before it reconciled them.
 */
export class PendingReconciles {
  private readonly extents = new Set<number>();
  private timer: NodeJS.Timeout | null = null;
  private delayMs = RECONCILE_RETRY_MS;
  private stopped = false;

  /**
   * @param ctx the volume, as the writer-change steps see it.
   * @param lease the attachment's current lease generation (read at each retry).
   * @param onRetry called after each retry with how many it reconciled and the extents left.
   */
  constructor(
    private readonly ctx: WriterContext,
    private readonly lease: () => number,
    private readonly onRetry: (reconciled: number, left: number[]) => void,
  ) {}

  /** Extents still waiting to be reconciled. */
  get size(): number {
    return this.extents.size;
  }

  /** Adds extents to retry; the next retry comes RECONCILE_RETRY_MS from now (or when the one running ends). */
  add(extents: number[]): void {
    if (this.stopped) return;
    for (const e of extents) this.extents.add(e);
    this.delayMs = RECONCILE_RETRY_MS;
    this.schedule();
  }

  /** Stops retrying (the volume is closing); a retry already sent still completes. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    if (this.timer || this.stopped || this.extents.size === 0) return;
    this.timer = setTimeout(() => void this.retry(), this.delayMs);
    this.timer.unref();
  }

  private async retry(): Promise<void> {
    // `timer` stays set while this runs, so add() does not start a second retry beside it.
    const batch = [...this.extents].sort((a, b) => a - b);
    const r = await reconcileExtents(this.ctx, this.lease(), batch).catch(() => ({ reconciled: 0, failed: batch }));
    const failed = new Set(r.failed);
    for (const e of batch) if (!failed.has(e)) this.extents.delete(e);
    if (this.stopped) return;
    this.timer = null;
    this.delayMs = Math.min(this.delayMs * 2, RECONCILE_RETRY_MAX_MS);
    this.onRetry(r.reconciled, [...this.extents].sort((a, b) => a - b));
    this.schedule();
  }
}
