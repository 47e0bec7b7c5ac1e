/**
 * Block status of a cluster volume (BlockDevice.blockStatus, behind NBD's `base:allocation`;
 * issue 11): which pages hold data and which are holes, from the members' page maps
 * (Op.Versions: one 16-byte entry per page ever written or trimmed — u32 page, u32 flags
 * bit 0 mapped, f64 version; pages never written are absent). No data is read.
 *
 * Every up member of an extent is asked at once and, page by page, the newest version wins
 * (the rule of reconcile in src/recovery). One member alone is not trusted: nodes answer
 * Op.Versions even for extents they are not current for (there is no NotCurrent for it), so
 * a member that missed writes while down could make written data look like a hole and a
 * sparse copy would skip it. When any up member does not answer, or none is up, the extent
 * is reported as data — "allocated, contents unknown" is always a correct answer (NBD
 * protocol, NBD_CMD_BLOCK_STATUS) and the client then reads it through the read path, with
 * its failover and timeouts.
 */
import pMap from 'p-map';
import type { BlockExtent } from '../volume/block-device.ts';
import { ConnectionError, Op, PAGE_SIZE, Status, type ConnectionPool } from '../wire/index.ts';
import type { ClusterView, ViewSource } from './cluster-view.ts';

/** Extents whose members are asked at once by one block status call. */
export const STATUS_CONCURRENCY = 32;
/** Bytes of one Op.Versions entry. */
const ENTRY = 16;
/** Map refreshes one extent's query may do after StaleEpoch replies. */
const STALE_RETRIES = 3;

/** What the block status query needs of its volume. */
export interface StatusContext {
  views: ViewSource;
  connections: ConnectionPool;
  /** Volume id. */
  volume: number;
  /** Pages (4 KiB) per extent. */
  extentPages: number;
  /** The write-lease generation requests carry. */
  lease: () => number;
  /** The extent's up set in placement order ([] when it cannot be placed). */
  placed(view: ClusterView, extent: number): number[];
}

/** Outcome of asking one member: its payload, a newer epoch it named, or a failure. */
type Answer = { payload: Buffer } | { stale: number } | null;

/** Asks `member` for its page versions of `extent`; null on a failure or a malformed answer. */
async function askMember(ctx: StatusContext, view: ClusterView, extent: number, member: number, placed: number[]): Promise<Answer> {
  try {
    const c = await ctx.connections.get(view.nodeOf(member));
    const r = await c.request({
      op: Op.Versions, flags: 0, epoch: view.epoch, volume: ctx.volume, extent, partition: member,
      firstPage: 0, pages: ctx.extentPages, lease: ctx.lease(), version: 0, members: placed,
    });
    if (r.h.status === Status.Ok) return r.payload.length % ENTRY === 0 ? { payload: r.payload } : null;
    if (r.h.status === Status.StaleEpoch) return { stale: r.h.aux };
    return null;
  } catch (e) {
    if (e instanceof ConnectionError) return null;
    throw e;
  }
}

/**
 * Page map of `extent`: byte i is 1 when page i holds data (its newest version on any up
 * member is a write), 0 when it is a hole (never written, or its newest version is a trim).
 * @returns null when not every up member answered (the caller reports data).
 */
export async function extentPageMap(ctx: StatusContext, extent: number): Promise<Uint8Array | null> {
  let view = ctx.views.current;
  for (let attempt = 0; ; attempt++) {
    const placed = ctx.placed(view, extent);
    const up = placed.filter((m) => view.isUp(view.nodeOf(m)));
    if (up.length === 0) return null;
    const answers = await Promise.all(up.map((m) => askMember(ctx, view, extent, m, placed)));
    let stale = 0;
    for (const a of answers) if (a && 'stale' in a) stale = Math.max(stale, a.stale);
    if (stale) {
      if (attempt >= STALE_RETRIES) return null;
      const next = await ctx.views.refresh(Math.max(stale, view.epoch + 1));
      if (next.epoch <= view.epoch) return null;
      view = next;
      continue;
    }
    const mapped = new Uint8Array(ctx.extentPages);
    const newest = new Float64Array(ctx.extentPages);
    for (const a of answers) {
      if (!a || !('payload' in a)) return null;
      const b = a.payload;
      for (let o = 0; o < b.length; o += ENTRY) {
        const page = b.readUInt32LE(o);
        if (page >= ctx.extentPages) continue;
        const isMapped = (b.readUInt32LE(o + 4) & 1) === 1;
        const version = b.readDoubleLE(o + 8);
        // Newest wins; on a tie (never expected) data wins, the safe side.
        if (version > newest[page] || (version === newest[page] && isMapped)) {
          newest[page] = version;
          mapped[page] = isMapped ? 1 : 0;
        }
      }
    }
    return mapped;
  }
}

/**
 * Block status of [offset, offset+length) (bytes, inside the volume): runs of data (hole and
 * zero false) and of holes (hole and zero true) at page granularity, the first starting at
 * `offset` and the last ending at offset+length. Extents are queried STATUS_CONCURRENCY at once.
 */
export async function volumeBlockStatus(ctx: StatusContext, offset: number, length: number): Promise<BlockExtent[]> {
  if (length === 0) return [];
  const end = offset + length;
  const firstPage = Math.floor(offset / PAGE_SIZE);
  const endPage = Math.ceil(end / PAGE_SIZE);
  const e0 = Math.floor(firstPage / ctx.extentPages);
  const e1 = Math.floor((endPage - 1) / ctx.extentPages);
  const extents = Array.from({ length: e1 - e0 + 1 }, (_, i) => e0 + i);
  const maps = await pMap(extents, (x) => extentPageMap(ctx, x), { concurrency: STATUS_CONCURRENCY });
  const out: BlockExtent[] = [];
  let start = offset;
  let hole: boolean | null = null;
  for (let p = firstPage; p < endPage; p++) {
    const extent = Math.floor(p / ctx.extentPages);
    const map = maps[extent - e0];
    const h = map !== null && map[p - extent * ctx.extentPages] === 0;
    if (hole === null) hole = h;
    else if (h !== hole) {
      const at = p * PAGE_SIZE;
      out.push({ offset: start, length: at - start, hole, zero: hole });
      start = at;
      hole = h;
    }
  }
  out.push({ offset: start, length: end - start, hole: hole!, zero: hole! });
  return out;
}
