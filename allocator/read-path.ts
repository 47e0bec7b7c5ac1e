/**
 * The allocator's read path: one map lookup per page, then the pages' device blocks sorted
 * and cut into spans — blocks at most GAP_BLOCKS apart share a span — and one preadv per
 * span whose buffers are the request's own pages and, for the blocks in between, a scratch
 * buffer whose bytes are dropped (on the event loop while the page cache serves them:
 * sync-io.ts, device-io.ts hostPreadFully); then a crc32c check of every page against the map. An
 * extent overwritten by small random writes is scattered over the log; reading its
 * neighbourhoods in one system call each, rather than one per run, is what keeps large
 * reads of it cheap (each call costs far more than copying a few cached blocks). While the
 * reads are in flight each segment they touch has a reader count, so the cleaner cannot
 * free and reuse it under them. A read found scattered is handed to the partition's
 * ReadRelocator (relocate.ts), which writes its pages side by side for the next read.
 */
import { crc32c } from '@node-rs/crc32';
import { ChecksumError } from './errors.ts';
import { NONE, PAGE } from './layout.ts';
import { hostPreadFully, hostPreadvFully } from './device-io.ts';
import type { PartitionState } from './partition-state.ts';
import type { ReadRelocator } from './relocate.ts';

/**
 * Reads `count` pages of `key` from `firstPage` into a new buffer (count × 4096 bytes), or
 * into `into` (that size, any contents); unmapped pages read as zeros. With `asOf`, reads the
 * snapshot view at that version (the caller checked that a pin covers it). `delayMs`
 * (tests) waits between lookup and read. With `reloc` (current reads only), a read whose
 * pages were scattered is offered to it once verified.
 * @throws ChecksumError when a page read back does not match its crc32c (no data returned).
 */
export function readPages(st: PartitionState, key: number, firstPage: number, count: number, asOf: number | undefined, delayMs: number, into?: Buffer, reloc?: ReadRelocator): Promise<Buffer> {
  const zeros = (): Buffer => (into ? into.fill(0) : Buffer.alloc(count * PAGE));
  const t = st.tables.get(key);
  if (!t || count === 0) return Promise.resolve(zeros());
  const { S, fd, offset } = st.geo;
  const segs = st.segs;
  // Look up every page and take a read reference on its segment, all in this tick, so
  // that no segment we look at can be reused before our reads complete.
  const blocks: number[] = [];
  const crcs: number[] = [];
  const idx: number[] = [];
  for (let i = 0; i < count; i++) {
    const p = firstPage + i;
    let b: number;
    let c: number;
    if (asOf === undefined) {
      b = t.block(p);
      c = b === NONE ? 0 : t.crc(p);
    } else {
      [b, c] = st.lookupAsOf(t, p, asOf);
    }
    if (b === NONE) continue;
    blocks.push(b);
    crcs.push(c);
    idx.push(i);
  }
  if (blocks.length === 0) return Promise.resolve(zeros());
  // Zeroed only when some page is a hole; otherwise every byte is read over.
  const out = blocks.length === count ? (into ?? Buffer.allocUnsafe(count * PAGE)) : zeros();
  if (blocks.length === 1) {
    // The common 4 KiB case without run bookkeeping.
    const b = blocks[0];
    const seg = ((b - 1) / S) | 0;
    segs.readers[seg]++;
    const o = idx[0] * PAGE;
    const go = (): Promise<number> => hostPreadFully(fd, out, o, PAGE, offset + b * PAGE);
    const p = delayMs > 0 ? new Promise((r) => setTimeout(r, delayMs)).then(go) : go();
    return p.then(
      () => {
        segs.readers[seg]--;
        if (crc32c(out.subarray(o, o + PAGE)) !== crcs[0]) throw checksumError(key, firstPage + idx[0], b);
        return out;
      },
      (e: unknown) => {
        segs.readers[seg]--;
        throw e;
      },
    );
  }
  // Pages in device order; a span takes the next page while the gap to it is ≤ GAP_BLOCKS.
  const order = Array.from(blocks.keys()).sort((x, y) => blocks[x] - blocks[y]);
  const spans: Array<{ start: number; bufs: Buffer[] }> = [];
  let readBlocks = 0;
  const held: number[] = []; // segments given a reader reference
  let cur: { start: number; bufs: Buffer[] } | null = null;
  let next = 0; // the block after the current span
  for (const j of order) {
    const b = blocks[j];
    if (cur && b >= next && b - next <= GAP_BLOCKS && cur.bufs.length < MAX_IOVECS - 1) {
      if (b > next) cur.bufs.push(SCRATCH.subarray(0, (b - next) * PAGE));
      readBlocks += b - next;
    } else {
      cur = { start: b, bufs: [] };
      spans.push(cur);
    }
    const o = idx[j] * PAGE;
    // Consecutive pages of the request stay one iovec.
    const last = cur.bufs[cur.bufs.length - 1];
    if (b === next && last && last.buffer === out.buffer && last.byteOffset + last.length === out.byteOffset + o) {
      cur.bufs[cur.bufs.length - 1] = out.subarray(o - (last.length), o + PAGE);
    } else {
      cur.bufs.push(out.subarray(o, o + PAGE));
    }
    next = b + 1;
    readBlocks++;
    const seg = ((b - 1) / S) | 0;
    if (held[held.length - 1] !== seg) {
      segs.readers[seg]++;
      held.push(seg);
    }
  }
  // Versions as looked up in this same tick: a relocated copy must be of exactly these.
  const relocate = asOf === undefined && reloc?.wants(blocks.length, spans.length, readBlocks) ? idx.map((i) => t.version(firstPage + i)) : null;
  const issue = (): Promise<PromiseSettledResult<void>[]> =>
    Promise.allSettled(spans.map((sp) => hostPreadvFully(fd, sp.bufs, offset + sp.start * PAGE)));
  const done = delayMs > 0 ? new Promise((r) => setTimeout(r, delayMs)).then(issue) : issue();
  return done.then((res) => {
    for (const seg of held) segs.readers[seg]--;
    for (const r of res) if (r.status === 'rejected') throw r.reason;
    for (let j = 0; j < idx.length; j++) {
      const o = idx[j] * PAGE;
      if (crc32c(out.subarray(o, o + PAGE)) !== crcs[j]) throw checksumError(key, firstPage + idx[j], blocks[j]);
    }
    if (relocate) reloc!.relocate(key, firstPage, idx, blocks, relocate, out);
    return out;
  });
}

/** Blocks between two pages that one preadv still reads through (64 KiB): in the page cache, copying that much costs less than the thread hand-offs of one more read (perf: 25 % of a node's time in context switches on fragmented reads). */
const GAP_BLOCKS = 16;
/** Buffers per preadv (IOV_MAX on Linux). */
const MAX_IOVECS = 1024;
/** Where the blocks between a span's pages land; never read (concurrent reads share it). */
const SCRATCH = Buffer.alloc(GAP_BLOCKS * PAGE);

function checksumError(key: number, page: number, block: number): ChecksumError {
  return new ChecksumError(`checksum mismatch: key ${key} page ${page} (block ${block})`, key, page);
}
