/**
 * Pre-zeroing of never-written segments on a sparse device file (allocator/prezero.ts):
 * the segment the log opens next is filled with zeros ahead of it, so its blocks are
 * allocated once; data written into it — while its zeroing may still be in flight — is
 * never overwritten by the zeros, also across a reopen. Files without holes and
 * `prezero: false` are never zeroed.
 */
import test from 'ava';
import { openSync, closeSync, fstatSync, writeSync } from 'node:fs';
import { Allocator } from '../../allocator/index.ts';
import { pagesData, rng, tempDevice } from './helpers.ts';

const MiB = 1024 * 1024;
const SEG = 64 * 1024;

/** Bytes the file really holds (allocated blocks). */
function allocated(path: string): number {
  const fd = openSync(path, 'r');
  try {
    return fstatSync(fd).blocks * 512;
  } finally {
    closeSync(fd);
  }
}

test('on a sparse file, segments are zeroed ahead of the log and no zero lands over data (random writes, flushes, reopen)', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  // The zeros are held back 5 ms, so the log reaches segments whose zeroing is in flight.
  const opts = { path: dev.path, offset: 0, size: 16 * MiB, segmentBytes: SEG, cleanerBytesPerSec: 0, prezeroDelayMs: 5 };
  let a = await Allocator.open(opts);
  const before = allocated(dev.path);
  const random = rng(3);
  const want = new Map<number, Buffer>();
  let v = 0;
  // Writes of 1..4 pages spread over many segments, some flushed at once (FUA-like).
  for (let round = 0; round < 40; round++) {
    await Promise.all(Array.from({ length: 8 }, async () => {
      const page = Math.floor(random() * 1000);
      const n = 1 + Math.floor(random() * 4);
      const data = pagesData(1, page, n, ++v);
      const ver = v;
      for (let i = 0; i < n; i++) want.set(page + i, data.subarray(i * 4096, (i + 1) * 4096));
      await (random() < 0.3 ? Promise.all([a.write(1, page, data, ver), a.flush()]) : a.write(1, page, data, ver));
    }));
  }
  // Large writes back to back: the next batch takes the segment whose zeroing the last one
  // started, while that zeroing is in flight.
  for (let round = 0; round < 6; round++) {
    await Promise.all(Array.from({ length: 4 }, async (_, j) => {
      const page = 1100 + j * 64;
      const data = pagesData(1, page, 64, ++v);
      const ver = v;
      for (let i = 0; i < 64; i++) want.set(page + i, data.subarray(i * 4096, (i + 1) * 4096));
      await a.write(1, page, data, ver);
    }));
  }
  await a.flush();
  const s = a.stats();
  t.log(`${s.prezeroedSegments} segments zeroed ahead; file holds ${((allocated(dev.path) - before) / MiB).toFixed(2)} MiB more`);
  t.true(s.prezeroedSegments >= 2, `segments zeroed: ${s.prezeroedSegments}`);
  const check = async (al: Allocator): Promise<void> => {
    const got = await al.read(1, 0, 1400);
    for (const [p, d] of want) if (!got.subarray(p * 4096, (p + 1) * 4096).equals(d)) t.fail(`page ${p} lost its data`);
  };
  await check(a);
  await a.close();
  a = await Allocator.open(opts);
  await check(a);
  await a.close();
});

test('a file without holes, and prezero: false, are never zeroed', async (t) => {
  const full = tempDevice();
  t.teardown(full.cleanup);
  const fd = openSync(full.path, 'w');
  const chunk = Buffer.alloc(MiB); // written zeros: every block allocated
  for (let i = 0; i < 4; i++) writeSync(fd, chunk, 0, MiB, i * MiB);
  closeSync(fd);
  const a = await Allocator.open({ path: full.path, offset: 0, size: 4 * MiB, segmentBytes: SEG });
  for (let p = 0; p < 64; p++) await a.write(1, p * 4, pagesData(1, p * 4, 4, p + 1), p + 1);
  await a.flush();
  t.is(a.stats().prezeroedSegments, 0);
  await a.close();

  const sparse = tempDevice();
  t.teardown(sparse.cleanup);
  const b = await Allocator.open({ path: sparse.path, offset: 0, size: 4 * MiB, segmentBytes: SEG, prezero: false });
  for (let p = 0; p < 64; p++) await b.write(1, p * 4, pagesData(1, p * 4, 4, p + 1), p + 1);
  await b.flush();
  t.is(b.stats().prezeroedSegments, 0);
  await b.close();
});
