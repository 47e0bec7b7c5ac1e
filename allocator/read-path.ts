/**
 * The allocator's read path: one map lookup per page, then one positioned read per run of
 * pages that are contiguous both in the request and on the device, then a crc32c check of
 * every page against the map. While the reads are in flight each segment they touch has
 * a reader count, so the cleaner cannot free and reuse it under them.
 */
import { crc32c } from '@node-rs/crc32';
import { ChecksumError } from './errors.ts';
import { NONE, PAGE } from './layout.ts';
import { preadFully } from './device-io.ts';
import type { PartitionState } from './partition-state.ts';

/**
 * Reads `count` pages of `key` from `firstPage` into a new buffer (count × 4096 bytes), or
 * into `into` (that size, any contents); unmapped pages read as zeros. With `asOf`, reads the
 * snapshot view at that version (the caller checked that a pin covers it). `delayMs`
 * (tests) waits between lookup and read.
 * @throws ChecksumError when a page read back does not match its crc32c (no data returned).
 */
export function readPages(st: PartitionState, key: number, firstPage: number, count: number, asOf: number | undefined, delayMs: number, into?: Buffer): Promise<Buffer> {
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
    const go = (): Promise<number> => preadFully(fd, out, o, PAGE, offset + b * PAGE);
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
  const runs: Array<[number, number, number, number]> = []; // [out index, block, length, segment]
  let i = 0;
  while (i < blocks.length) {
    const seg = ((blocks[i] - 1) / S) | 0;
    let n = 1;
    while (i + n < blocks.length && idx[i + n] === idx[i] + n && blocks[i + n] === blocks[i] + n && (((blocks[i + n] - 1) / S) | 0) === seg) n++;
    runs.push([idx[i], blocks[i], n, seg]);
    segs.readers[seg]++;
    i += n;
  }
  const issue = (): Promise<PromiseSettledResult<number>[]> =>
    Promise.allSettled(runs.map(([o, b, n]) => preadFully(fd, out, o * PAGE, n * PAGE, offset + b * PAGE)));
  const done = delayMs > 0 ? new Promise((r) => setTimeout(r, delayMs)).then(issue) : issue();
  return done.then((res) => {
    for (const r of runs) segs.readers[r[3]]--;
    for (const r of res) if (r.status === 'rejected') throw r.reason;
    for (let j = 0; j < idx.length; j++) {
      const o = idx[j] * PAGE;
      if (crc32c(out.subarray(o, o + PAGE)) !== crcs[j]) throw checksumError(key, firstPage + idx[j], blocks[j]);
    }
    return out;
  });
}

function checksumError(key: number, page: number, block: number): ChecksumError {
  return new ChecksumError(`checksum mismatch: key ${key} page ${page} (block ${block})`, key, page);
}
