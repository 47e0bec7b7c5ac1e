/**
 * Reads of scattered pages (allocator/read-path.ts): an extent overwritten page by page is
 * spread over the log, and a whole-extent read fetches each neighbourhood of blocks with one
 * preadv (blocks in between land in a scratch buffer) instead of one read per run — fewer
 * system calls, same bytes, every page still checked against its crc32c.
 */
import test from 'ava';
import { Allocator, ChecksumError, PAGE, readCount } from '../../allocator/index.ts';
import { pageData, pagesData, rng, tempDevice } from './helpers.ts';

const MiB = 1024 * 1024;

test('a scattered extent reads back right with far fewer reads than runs', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const a = await Allocator.open({ path: dev.path, offset: 0, size: 64 * MiB, segmentBytes: MiB });
  t.teardown(() => a.close());
  const KEY = 3;
  const expect = pagesData(KEY, 0, 256, 1);
  await a.write(KEY, 0, expect, 1);
  // Overwrite a third of the pages one by one, interleaved with another key's pages, so the
  // extent becomes ~170 runs: the original blocks cut by holes, and singles elsewhere.
  const r = rng(7);
  let v = 2;
  for (let p = 0; p < 256; p += 3) {
    const d = pageData(KEY, p, v);
    await a.write(KEY, p, d, v);
    d.copy(expect, p * PAGE);
    await a.write(99, Math.floor(r() * 256), pageData(99, 0, v), v + 1);
    v += 2;
  }
  const runs = new Set<number>();
  let prev = -2;
  for (let p = 0; p < 256; p++) {
    const b = a.locate(KEY, p)! / PAGE;
    if (b !== prev + 1) runs.add(p);
    prev = b;
  }
  const before = readCount();
  const got = await a.read(KEY, 0, 256);
  const calls = readCount() - before;
  t.log(`${runs.size} runs on the device, read with ${calls} preadv calls`);
  t.true(runs.size > 100, 'the extent is scattered');
  t.true(calls <= 4, `few reads (${calls})`);
  t.true(got.equals(expect), 'every page as last written');
  // Into a dirty caller buffer, and a sub-range starting mid-extent.
  const into = Buffer.alloc(100 * PAGE, 0xee);
  t.true((await a.read(KEY, 50, 100, undefined, into)).equals(expect.subarray(50 * PAGE, 150 * PAGE)));
});

test('pages far apart are separate reads; a corrupt block in a span is still caught', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const a = await Allocator.open({ path: dev.path, offset: 0, size: 64 * MiB, segmentBytes: MiB, summaryHoldMs: 0 });
  t.teardown(() => a.close());
  await a.write(1, 0, pageData(1, 0, 1), 1);
  // 64 pages of another key between them: beyond the gap a span reads through.
  await a.write(2, 0, pagesData(2, 0, 64, 2), 2);
  await a.write(1, 1, pageData(1, 1, 3), 3);
  const before = readCount();
  t.true((await a.read(1, 0, 2)).equals(Buffer.concat([pageData(1, 0, 1), pageData(1, 1, 3)])));
  t.is(readCount() - before, 2, 'two neighbourhoods, two reads');
  await a.flush();
  // Corrupt page 1 of key 1 on the device file itself.
  const { openSync, writeSync, closeSync } = await import('node:fs');
  const fd = openSync(dev.path, 'r+');
  writeSync(fd, Buffer.alloc(PAGE, 0x77), 0, PAGE, a.locate(1, 1)!);
  closeSync(fd);
  await t.throwsAsync(a.read(1, 0, 2), { instanceOf: ChecksumError });
});
