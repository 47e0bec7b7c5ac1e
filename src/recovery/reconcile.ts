/**
 * Making the copies of one extent agree, page by page, by version. Every write carries its
 * writer's version (lease generation × 2^32 + sequence) and the allocator keeps a page's
 * newest version, so the newest version of each page among the members is the one every
 * member should hold: copying it is idempotent and safe against concurrent writes (a newer
 * write that lands first is kept; one that lands later overwrites). Used by resync (a
 * returning member pulls what it missed), by peering after a writer change (partial writes
 * of the old writer are completed or not, but the same on every member), and by read repair.
 */
import type { PageVersion, PutEntry } from './codec.ts';

/** One member's copy of an extent, local or remote. */
export interface ExtentCopy {
  /** Partition leaf id of the member. */
  readonly leaf: number;
  /** Every page ever written or trimmed, with its newest version. */
  versions(): Promise<PageVersion[]>;
  /** `pages` pages (4 KiB each) from `firstPage`; unmapped pages read as zeros. */
  read(firstPage: number, pages: number): Promise<Buffer>;
  /** Applies pages with their own versions (a page holding a newer version keeps it). */
  put(entries: PutEntry[]): Promise<void>;
}

/** What a reconcile did. */
export interface ReconcileResult {
  /** Pages (data or trims) copied, summed over the members that received them. */
  pages: number;
  /** Leaf ids of the members that received pages. */
  updated: number[];
}

/** Most pages one Put carries (64 pages: 256 KiB), so no frame grows past the limit. */
const PUT_BATCH = 64;

/**
 * Whether page version `a` supersedes `b`: a higher version, or the same version mapped
 * where `b` is unmapped. Host writes and trims never share a version, so an unmapped page
 * at a mapped page's version is a copy trimmed because it was no longer placed there
 * (src/node/misplaced.ts): the data wins.
 */
export function newer(a: PageVersion, b: PageVersion): boolean {
  return a.version > b.version || (a.version === b.version && a.mapped && !b.mapped);
}

/**
 * Brings every copy in `copies` to each page's newest version among them. When `only` is
 * given, only those leaves receive pages (the others are sources only). When some copies
 * cannot list their versions and `tolerate(failedLeaves)` says the rest suffice, the
 * reconcile goes on without them. `prefer(leaf)` orders the sources a page is read from
 * when several hold its newest version (lowest first; default: the order of `all`), so
 * that many pulls spread their reads over every current member (declustered recovery).
 * @throws the first error of a member (the caller retries later; a receiving member stays
 *         marked as not current until a reconcile of the extent succeeds).
 */
export async function reconcileExtent(
  all: ExtentCopy[], only?: ReadonlySet<number>, tolerate?: (failedLeaves: number[]) => boolean, prefer?: (leaf: number) => number,
): Promise<ReconcileResult> {
  const settled = await Promise.allSettled(all.map((c) => c.versions()));
  const failed = settled.flatMap((r, i) => (r.status === 'rejected' ? [i] : []));
  if (failed.length && !(tolerate?.(failed.map((i) => all[i].leaf)) ?? false)) throw (settled[failed[0]] as PromiseRejectedResult).reason;
  const copies = all.filter((_, i) => !failed.includes(i));
  const lists = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const have = lists.map((l) => new Map(l.map((v) => [v.page, v])));
  // Newest version of each page, and which copy holds it (the first, after `order`).
  const best = new Map<number, { v: PageVersion; holder: number }>();
  const order = lists.map((_, i) => i);
  if (prefer) order.sort((a, b) => prefer(copies[a].leaf) - prefer(copies[b].leaf));
  for (const i of order) {
    for (const v of lists[i]) {
      const b = best.get(v.page);
      if (!b || newer(v, b.v)) best.set(v.page, { v, holder: i });
    }
  }
  // Per receiving copy, the pages it lacks; per holder, the pages to read from it.
  const needs = copies.map(() => [] as Array<{ page: number; holder: number; v: PageVersion }>);
  const fromHolder = new Map<number, Set<number>>();
  for (const [page, b] of best) {
    for (let i = 0; i < copies.length; i++) {
      if (only && !only.has(copies[i].leaf)) continue;
      const mine = have[i].get(page);
      if (mine && !newer(b.v, mine)) continue;
      needs[i].push({ page, holder: b.holder, v: b.v });
      if (b.v.mapped) {
        let s = fromHolder.get(b.holder);
        if (!s) fromHolder.set(b.holder, (s = new Set()));
        s.add(page);
      }
    }
  }
  // One read per holder over the span of the pages needed from it.
  const data = new Map<number, { first: number; buf: Buffer }>();
  await Promise.all([...fromHolder].map(async ([holder, pages]) => {
    const first = Math.min(...pages);
    const last = Math.max(...pages);
    data.set(holder, { first, buf: await copies[holder].read(first, last - first + 1) });
  }));
  let total = 0;
  const updated: number[] = [];
  await Promise.all(needs.map(async (list, i) => {
    if (list.length === 0) return;
    list.sort((a, b) => a.page - b.page);
    const entries: PutEntry[] = list.map((n) => {
      if (!n.v.mapped) return { page: n.page, version: n.v.version, trim: true };
      const d = data.get(n.holder)!;
      const off = (n.page - d.first) * 4096;
      return { page: n.page, version: n.v.version, trim: false, data: d.buf.subarray(off, off + 4096) };
    });
    for (let o = 0; o < entries.length; o += PUT_BATCH) await copies[i].put(entries.slice(o, o + PUT_BATCH));
    total += entries.length;
    updated.push(copies[i].leaf);
  }));
  return { pages: total, updated };
}

/**
 * Read repair: rewrites pages [firstPage, firstPage + pages) of `target` (whose copy failed
 * its checksum) from the first of `sources` that can serve them, keeping each page's version
 * (a page the source holds at an older version than the target is left alone).
 * @returns the repaired bytes of the range, as the source served them.
 * @throws the last source's error when none could serve.
 */
export async function repairRange(target: ExtentCopy, sources: ExtentCopy[], firstPage: number, pages: number): Promise<{ data: Buffer; source: number; pages: number }> {
  let last: unknown = new Error('no other member to repair from');
  const mine = new Map((await target.versions()).map((v) => [v.page, v]));
  for (const s of sources) {
    try {
      // Versions first, data after: data read later is at least as new as its label, and a
      // label never claims a version newer than the data (which would make the copy win
      // over the real write of that version).
      const vs = await s.versions();
      const data = await s.read(firstPage, pages);
      const theirs = new Map(vs.map((v) => [v.page, v]));
      const entries: PutEntry[] = [];
      for (let p = firstPage; p < firstPage + pages; p++) {
        const v = theirs.get(p);
        if (!v || v.version < (mine.get(p)?.version ?? 0)) continue;
        const off = (p - firstPage) * 4096;
        entries.push(v.mapped ? { page: p, version: v.version, trim: false, data: data.subarray(off, off + 4096) } : { page: p, version: v.version, trim: true });
      }
      for (let o = 0; o < entries.length; o += PUT_BATCH) await target.put(entries.slice(o, o + PUT_BATCH));
      return { data, source: s.leaf, pages: entries.length };
    } catch (e) {
      last = e;
    }
  }
  throw last;
}
