/**
 * Repairs served on request: read repair of a host read whose copy failed its crc32c, and
 * Op.Reconcile (a new writer makes an extent's members agree). Both copy pages with their
 * own versions (src/recovery/reconcile.ts), so they are safe against concurrent writes.
 */
import type { Logger } from 'pino';
import type { Allocator } from '../../allocator/index.ts';
import type { ClusterView } from '../initiator/index.ts';
import { reconcileExtent, repairRange, type ExtentCopy } from '../recovery/index.ts';
import { extentKey, type RequestHeader } from '../wire/index.ts';

/** What the repairs need from their node's recovery. */
export interface RepairContext {
  view(): ClusterView;
  volumeInfo(volume: number): { pool: number; extentPages: number };
  localCopy(leaf: number, key: number, extentPages: number): ExtentCopy;
  remoteCopy(leaf: number, volume: number, extent: number, extentPages: number): ExtentCopy;
  log: Logger;
  /** Counter of read repairs done (incremented here). */
  recovered: { repairs: number };
}

/**
 * Read repair of a host read that failed its checksum on local partition `h.partition`
 * (allocator `a`): rewrites the range from another up member of the request and returns the
 * local copy read again.
 * @throws `cause` (the ChecksumError) when no member could supply good data.
 */
export async function repairRead(ctx: RepairContext, a: Allocator, h: RequestHeader, cause: Error): Promise<Buffer> {
  const key = extentKey(h.volume, h.extent);
  const { extentPages } = ctx.volumeInfo(h.volume);
  const view = ctx.view();
  const sources = h.members.filter((m, i) => m !== h.partition && !((h.absent ?? 0) & (1 << i)) && view.isUp(view.nodeOf(m)))
    .map((m) => ctx.remoteCopy(m, h.volume, h.extent, extentPages));
  const base = { volume: h.volume, extent: h.extent, partition: h.partition, firstPage: h.firstPage, pages: h.pages, cause: cause.message };
  try {
    const r = await repairRange(ctx.localCopy(h.partition, key, extentPages), sources, h.firstPage, h.pages);
    const data = await a.read(key, h.firstPage, h.pages);
    ctx.recovered.repairs++;
    ctx.log.warn({ ...base, source: r.source, pagesRewritten: r.pages }, 'read repair: bad copy served from another member and rewritten');
    return data;
  } catch (e) {
    ctx.log.error({ ...base, err: (e as Error).message }, 'read repair failed: no member could supply a good copy');
    throw cause;
  }
}

/**
 * Op.Reconcile: makes the members named by `h` (minus absent ones) agree; `h.partition` is
 * the local one. Returns the pages copied.
 * @throws the first member's error (the writer retries).
 */
export async function reconcileMembers(ctx: RepairContext, h: RequestHeader): Promise<number> {
  const mine = h.partition;
  const key = extentKey(h.volume, h.extent);
  const copies = h.members.filter((m, i) => !((h.absent ?? 0) & (1 << i)))
    .map((m) => (m === mine ? ctx.localCopy(m, key, h.pages) : ctx.remoteCopy(m, h.volume, h.extent, h.pages)));
  const r = await reconcileExtent(copies);
  if (r.pages) ctx.log.info({ volume: h.volume, extent: h.extent, pages: r.pages, updated: r.updated }, 'reconcile: copies made identical');
  return r.pages;
}
