/**
 * The allocator's API contract: argument errors, version ordering (a newer version is
 * kept), zeros for unmapped pages, keys/pages/version, shared device files, format
 * errors, snapshot pins, and reads racing the cleaner's reuse of segments.
 */
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { Allocator, AllocatorStateError, FormatError, PAGE } from '../../allocator/index.ts';
import { pageData, pagesData, rng, tempDevice } from './helpers.ts';

test('bad arguments get AllocatorStateError and change nothing', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  await t.throwsAsync(Allocator.open({ path: dev.path, offset: 100, size: 1 << 20 }), { instanceOf: AllocatorStateError });
  await t.throwsAsync(Allocator.open({ path: dev.path, offset: 0, size: 4096 }), { instanceOf: AllocatorStateError });
  await t.throwsAsync(Allocator.open({ path: dev.path, offset: 0, size: 1 << 20, create: false }));
  const a = await Allocator.open({ path: dev.path, offset: 0, size: 1 << 20 });
  await a.write(1, 0, pageData(1, 0, 1), 1);
  const bad: Array<() => Promise<unknown>> = [
    () => a.write(-1, 0, pageData(0, 0, 1), 1),
    () => a.write(1.5, 0, pageData(0, 0, 1), 1),
    () => a.write(2 ** 53, 0, pageData(0, 0, 1), 1),
    () => a.write(1, 0, Buffer.alloc(100), 2),
    () => a.write(1, 0, Buffer.alloc(0), 2),
    () => a.write(1, -1, pageData(0, 0, 1), 2),
    () => a.write(1, 2 ** 31, pageData(0, 0, 1), 2),
    () => a.write(1, 0, pageData(0, 0, 1), -1),
    () => a.write(1, 0, pageData(0, 0, 1), 0.5),
    () => a.read(1, 0, -1),
    () => a.read(1, 0.5, 1),
    () => a.read(1, 0, 1, 3),
    () => a.trim(1, 0, 1, NaN),
    () => a.unpin(99),
  ];
  for (const f of bad) await t.throwsAsync(f(), { instanceOf: AllocatorStateError });
  t.true((await a.read(1, 0, 1)).equals(pageData(1, 0, 1)));
  t.is(a.version(1, 0), 1);
  await a.close();
  await t.throwsAsync(a.write(1, 0, pageData(1, 0, 2), 2), { instanceOf: AllocatorStateError });
  await t.throwsAsync(a.read(1, 0, 1), { instanceOf: AllocatorStateError });
});

test('newer versions win regardless of arrival order; trims respect versions', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const opts = { path: dev.path, offset: 0, size: 1 << 20 };
  let a = await Allocator.open(opts);
  t.true((await a.read(5, 0, 3)).equals(Buffer.alloc(3 * PAGE)));
  await a.write(5, 0, pagesData(5, 0, 2, 10), 10);
  await a.write(5, 1, pagesData(5, 1, 2, 7), 7); // page 1 keeps 10, page 2 gets 7
  t.true((await a.read(5, 0, 3)).equals(Buffer.concat([pageData(5, 0, 10), pageData(5, 1, 10), pageData(5, 2, 7)])));
  await a.trim(5, 0, 3, 8); // unmaps page 2 (7 < 8) only
  t.true((await a.read(5, 0, 3)).equals(Buffer.concat([pageData(5, 0, 10), pageData(5, 1, 10), Buffer.alloc(PAGE)])));
  await a.write(5, 2, pageData(5, 2, 6), 6); // older than the trim: ignored
  t.true((await a.read(5, 2, 1)).equals(Buffer.alloc(PAGE)));
  t.deepEqual([a.version(5, 0), a.version(5, 1), a.version(5, 2), a.version(5, 3), a.version(6, 0)], [10, 10, 8, 0, 0]);
  t.deepEqual([...a.pages(5)].map(({ page, version }) => ({ page, version })), [{ page: 0, version: 10 }, { page: 1, version: 10 }]);
  // Versions far apart (more than 2^32) in one key.
  await a.write(5, 9, pageData(5, 9, 2 ** 50), 2 ** 50);
  await a.write(5, 8, pageData(5, 8, 3), 3);
  t.deepEqual([a.version(5, 9), a.version(5, 8), a.version(5, 0)], [2 ** 50, 3, 10]);
  await a.close();
  a = await Allocator.open(opts);
  t.deepEqual([a.version(5, 9), a.version(5, 8), a.version(5, 2)], [2 ** 50, 3, 8]);
  t.true((await a.read(5, 8, 2)).equals(Buffer.concat([pageData(5, 8, 3), pageData(5, 9, 2 ** 50)])));
  t.deepEqual([...a.keys()], [5]);
  await a.trim(5, 0, 100, 2 ** 51);
  t.deepEqual([...a.keys()], []);
  await a.close();
});

test('allocators sharing one device file at different offsets stay apart', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const size = 1 << 20;
  const parts = await Promise.all([0, 1, 2].map((i) => Allocator.open({ path: dev.path, offset: i * size, size })));
  await Promise.all(parts.map((a, i) => a.write(1, 0, pageData(1, 0, i + 1), i + 1)));
  await Promise.all(parts.map((a) => a.close()));
  const again = await Promise.all([0, 1, 2].map((i) => Allocator.open({ path: dev.path, offset: i * size, size })));
  for (const [i, a] of again.entries()) t.true((await a.read(1, 0, 1)).equals(pageData(1, 0, i + 1)));
  await Promise.all(again.map((a) => a.close()));
  await t.throwsAsync(Allocator.open({ path: dev.path, offset: 0, size: 2 * size }), { instanceOf: FormatError });
  writeFileSync(dev.path + '2', Buffer.alloc(PAGE, 0x41));
  await t.throwsAsync(Allocator.open({ path: dev.path + '2', offset: 0, size }), { instanceOf: FormatError });
});

test('pinned versions survive overwrites, cleaning and reopen; unpin releases them', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const opts = { path: dev.path, offset: 0, size: 2 << 20, segmentBytes: 32 * 1024 };
  let a = await Allocator.open(opts);
  const N = 64;
  for (let p = 0; p < N; p += 8) await a.write(3, p, pagesData(3, p, 8, 1), 1);
  await a.write(4, 0, pageData(4, 0, 1), 1);
  const pin = await a.pin(5, { firstKey: 3, lastKey: 3 });
  // Overwrite half, trim a quarter, after the pin.
  for (let p = 0; p < N; p += 2) await a.write(3, p, pageData(3, p, 6), 6);
  await a.trim(3, 1, 16, 7);
  await a.write(4, 0, pageData(4, 0, 6), 6); // key 4 is not covered
  t.is(a.stats().retainedBytes, (N / 2 + 8) * PAGE);
  const snapshot = Buffer.concat(Array.from({ length: N }, (_, p) => pageData(3, p, 1)));
  t.true((await a.read(3, 0, N, 5)).equals(snapshot));
  await t.throwsAsync(a.read(4, 0, 1, 5), { instanceOf: AllocatorStateError });
  // Churn another key so the cleaner moves the kept blocks.
  const rand = rng(1);
  for (let i = 0; i < 3000; i++) {
    const p = Math.floor(rand() * 150);
    await a.write(9, p, pageData(9, p, 10 + i), 10 + i);
  }
  t.true(a.stats().segmentsCleaned > 5);
  t.true((await a.read(3, 0, N, 5)).equals(snapshot));
  await a.close();
  a = await Allocator.open(opts);
  t.deepEqual(a.listPins(), [{ id: pin, version: 5, firstKey: 3, lastKey: 3 }]);
  t.true((await a.read(3, 0, N, 5)).equals(snapshot));
  t.is(a.stats().retainedBytes, (N / 2 + 8) * PAGE);
  const cur = await a.read(3, 0, N);
  for (let p = 0; p < N; p++) {
    const want = p >= 1 && p < 17 ? Buffer.alloc(PAGE) : p % 2 === 0 ? pageData(3, p, 6) : pageData(3, p, 1);
    t.true(cur.subarray(p * PAGE, (p + 1) * PAGE).equals(want), `page ${p}`);
  }
  await a.unpin(pin);
  t.is(a.stats().retainedBytes, 0);
  await t.throwsAsync(a.read(3, 0, 1, 5), { instanceOf: AllocatorStateError });
  await a.close();
  a = await Allocator.open(opts);
  t.deepEqual(a.listPins(), []);
  t.is(a.stats().retainedBytes, 0);
  await a.close();
});

test('reads racing the cleaner never see a reused segment', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  // Every read waits 3 ms between its map lookup and its device read.
  const a = await Allocator.open({ path: dev.path, offset: 0, size: 2 << 20, segmentBytes: 32 * 1024, readDelayMs: 3 });
  const N = Math.floor((a.stats().capacityBytes / PAGE) * 0.8);
  let v = 1;
  for (let p = 0; p < N; p += 4) await a.write(1, p, pagesData(1, p, Math.min(4, N - p), v), v);
  const rand = rng(9);
  let reads = 0;
  let stop = false;
  const reader = async (): Promise<void> => {
    while (!stop) {
      const p = Math.floor(rand() * N);
      const before = a.version(1, p);
      const got = await a.read(1, p, 1);
      const after = a.version(1, p);
      const seen = got.readDoubleLE(16);
      // Content must be this page's, of a version current at some point during the read.
      t.is(got.readDoubleLE(8), p);
      if (seen < before || seen > after || !got.equals(pageData(1, p, seen))) t.fail(`page ${p}: saw ${seen}, versions ${before}..${after}`);
      reads++;
    }
  };
  const readers = Array.from({ length: 32 }, reader);
  const c0 = a.stats().segmentsCleaned;
  for (let i = 0; i < 3000; i++) {
    const p = Math.floor(rand() * N);
    v++;
    await a.write(1, p, pageData(1, p, v), v);
  }
  stop = true;
  await Promise.all(readers);
  t.true(a.stats().segmentsCleaned - c0 > 20, 'cleaner ran');
  t.true(reads > 1000, `${reads} reads`);
  await a.close();
});
