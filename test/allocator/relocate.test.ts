/**
 * Read relocation (allocator/relocate.ts): a read that finds its pages scattered over the
 * log has them appended side by side, so the next read of them is one device read. Pages
 * written, trimmed or pinned meanwhile keep their newest (or pinned) contents, across a
 * reopen too; with relocateReads off, or a read of few pages, nothing moves.
 */
import test, { type ExecutionContext } from 'ava';
import { Allocator, PAGE, readCount } from '../../allocator/index.ts';
import { ReadRelocator } from '../../allocator/relocate.ts';
import { pageData, pagesData, rng, tempDevice } from './helpers.ts';

const MiB = 1024 * 1024;
const KEY = 3;
const PAGES = 64;

/** Writes KEY's 64 pages, then rewrites every other one interleaved with another key's pages. Returns the expected contents. */
async function scatter(a: Allocator): Promise<Buffer> {
  const expect = pagesData(KEY, 0, PAGES, 1);
  await a.write(KEY, 0, expect, 1);
  const r = rng(5);
  let v = 2;
  for (let p = 0; p < PAGES; p += 2) {
    const d = pageData(KEY, p, v);
    await a.write(KEY, p, d, v);
    d.copy(expect, p * PAGE);
    await a.write(99, Math.floor(r() * 512), pagesData(99, 0, 20, v + 1).subarray(0, 20 * PAGE), v + 1);
    v += 2;
  }
  return expect;
}

/** Device runs KEY's pages form (1: all side by side). */
function runs(a: Allocator): number {
  let n = 0;
  let prev = -2;
  for (let p = 0; p < PAGES; p++) {
    const b = a.locate(KEY, p)! / PAGE;
    if (b !== prev + 1) n++;
    prev = b;
  }
  return n;
}

/** A fresh 64 MiB device file (removed at the test's end) whose KEY is scattered; the allocator is closed again. */
async function scatteredDevice(t: ExecutionContext): Promise<{ opts: { path: string; offset: number; size: number; segmentBytes: number }; expect: Buffer }> {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const opts = { path: dev.path, offset: 0, size: 64 * MiB, segmentBytes: MiB };
  const a = await Allocator.open(opts);
  const expect = await scatter(a);
  await a.close();
  return { opts, expect };
}

async function until(cond: () => boolean, what: string, ms = 10000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test.serial('a scattered read is relocated: the next read is one device read, and the data survives a reopen', async (t) => {
  const { opts, expect } = await scatteredDevice(t);
  let a = await Allocator.open(opts);
  const before = runs(a);
  t.true(before > 20, `scattered (${before} runs)`);
  t.is(a.stats().readRelocatedBytes, 0, 'nothing relocated before a read');

  t.true((await a.read(KEY, 0, PAGES)).equals(expect), 'the scattered read returns the data');
  await until(() => a.stats().readRelocatedBytes === PAGES * PAGE, 'the relocation');
  t.is(runs(a), 1, 'the pages now lie side by side');
  t.is(a.stats().cleanerBytesMoved, 0, 'counted as relocation, not as cleaning');
  const calls = readCount();
  t.true((await a.read(KEY, 0, PAGES)).equals(expect), 'the relocated pages read back right');
  t.is(readCount() - calls, 1, 'one device read');
  t.is(a.stats().readRelocatedBytes, PAGES * PAGE, 'a contiguous read is not relocated again');

  await a.close();
  a = await Allocator.open(opts);
  t.teardown(() => a.close());
  t.true((await a.read(KEY, 0, PAGES)).equals(expect), 'after a reopen (relocated pages replayed from the log)');
  t.is(runs(a), 1, 'and still side by side');
});

test('writes and trims racing a relocation win; a pinned version stays readable', async (t) => {
  const { opts, expect } = await scatteredDevice(t);
  let a = await Allocator.open(opts);
  await a.flush();
  const pinned = Buffer.from(expect);
  const pin = await a.pin(1000);
  // The read is looked up now; the write and trim are queued before its relocation is.
  const read = a.read(KEY, 0, PAGES);
  const w = pageData(KEY, 5, 2001);
  const writes = [a.write(KEY, 5, w, 2001), a.trim(KEY, 10, 2, 2002)];
  t.true((await read).equals(pinned), 'the read returns what was there when it was looked up');
  await Promise.all(writes);
  w.copy(expect, 5 * PAGE);
  expect.fill(0, 10 * PAGE, 12 * PAGE);
  await until(() => a.stats().readRelocatedBytes > 0, 'the relocation');
  // Whether the copies of pages 5, 10, 11 were skipped (built after) or overwritten (built
  // before), the newest contents win.
  t.true((await a.read(KEY, 0, PAGES)).equals(expect), 'newest contents after the relocation');
  t.true((await a.read(KEY, 0, PAGES, 1000)).equals(pinned), 'the pinned version reads as it was');
  await a.flush();
  await a.close();
  a = await Allocator.open(opts);
  t.teardown(() => a.close());
  t.true((await a.read(KEY, 0, PAGES)).equals(expect), 'newest contents after a reopen');
  t.true((await a.read(KEY, 0, PAGES, 1000)).equals(pinned), 'the pinned version after a reopen');
  await a.unpin(pin);
});

test('nothing is relocated with relocateReads off, nor for short reads', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const off = await Allocator.open({ path: dev.path, offset: 0, size: 32 * MiB, segmentBytes: MiB, relocateReads: false });
  const expect = await scatter(off);
  t.true((await off.read(KEY, 0, PAGES)).equals(expect));
  await off.flush();
  t.is(off.stats().readRelocatedBytes, 0, 'off: nothing relocated');
  t.true(runs(off) > 20, 'off: still scattered');
  await off.close();

  const on = await Allocator.open({ path: dev.path, offset: 32 * MiB, size: 32 * MiB, segmentBytes: MiB });
  t.teardown(() => on.close());
  const e2 = await scatter(on);
  for (let p = 0; p + 8 <= PAGES; p += 8) t.true((await on.read(KEY, p, 8)).equals(e2.subarray(p * PAGE, (p + 8) * PAGE)));
  await on.flush();
  t.is(on.stats().readRelocatedBytes, 0, 'reads of 8 pages are not relocated');
});

test('closing right after a scattered read waits for its relocation; the data reads back after a reopen', async (t) => {
  const { opts, expect } = await scatteredDevice(t);
  let a = await Allocator.open(opts);
  t.true((await a.read(KEY, 0, PAGES)).equals(expect));
  await a.close(); // the relocation is queued, not yet applied
  a = await Allocator.open(opts);
  t.teardown(() => a.close());
  t.true((await a.read(KEY, 0, PAGES)).equals(expect), 'every page as last written');
  t.true(runs(a) === 1 || runs(a) > 20, `either relocated whole or not at all (${runs(a)} runs)`);
});

test('pages of the still-open host record are not relocated (their record seals later and would win the replay)', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const opts = { path: dev.path, offset: 0, size: 64 * MiB, segmentBytes: MiB, summaryHoldMs: 60000 };
  let a = await Allocator.open(opts);
  const expect = await scatter(a);
  const blocks = Array.from({ length: PAGES }, (_, p) => a.locate(KEY, p));
  t.true((await a.read(KEY, 0, PAGES)).equals(expect));
  await until(() => a.stats().readRelocatedBytes > 0, 'the relocation');
  const kept = blocks.filter((b, p) => a.locate(KEY, p) === b).length;
  t.log(`${a.stats().readRelocatedBytes / PAGE} pages relocated, ${kept} left in place`);
  t.true(kept > 0 && a.stats().readRelocatedBytes < PAGES * PAGE, 'the open record\'s pages stayed where they are');
  await a.close();
  a = await Allocator.open(opts);
  t.teardown(() => a.close());
  t.true((await a.read(KEY, 0, PAGES)).equals(expect), 'every page as last written after a reopen');
});

test('the relocation buffer is reused after a move that succeeded, never after one that failed', async (t) => {
  type St = ConstructorParameters<typeof ReadRelocator>[0];
  const moves: Array<{ data: Buffer; settle: (ok: boolean) => void }> = [];
  const reloc = new ReadRelocator({ geo: { S: 256 } } as unknown as St, (items) => new Promise<void>((resolve, reject) => {
    moves.push({ data: items[0].data, settle: (ok) => (ok ? resolve() : reject(new Error('write failed'))) });
  }));
  const data = pagesData(KEY, 0, 16, 1);
  const relocate = (): void => reloc.relocate(KEY, 0, [...Array(16).keys()], [...Array(16).keys()].map((i) => 1 + i), Array(16).fill(1), data);
  const settled = async (ok: boolean): Promise<void> => {
    moves[moves.length - 1].settle(ok);
    await new Promise((r) => setImmediate(r));
  };
  relocate();
  await settled(true);
  relocate();
  t.is(moves[1].data.buffer, moves[0].data.buffer, 'reused after a success');
  await settled(false);
  relocate();
  t.not(moves[2].data.buffer, moves[1].data.buffer, 'a new buffer after a failure');
  t.true(moves[2].data.equals(data.subarray(0, PAGE)));
});
