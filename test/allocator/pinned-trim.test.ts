/**
 * The allocator properties snapshot pins rely on (src/node/snapshots.ts), and the one they
 * must guard against:
 *
 * - a pinned page superseded after the pin by a trim (or write) of a newer version stays in
 *   the pinned view, through cleaning and a reopen;
 * - a trim at the page's *own* version ≤ the pinned one (what the trim of misplaced copies,
 *   src/node/misplaced.ts, does) is part of the pinned view: the page reads as zeros as of the
 *   pin, and its mapped count drops (the node's check for a trimmed misplaced copy);
 * - a page of an older version that arrives after the pin (a backfill Put) shows in the
 *   view when nothing newer is there, and is dropped when a newer version came first.
 */
import test from 'ava';
import { Allocator, PAGE } from '../../allocator/index.ts';
import { pageData, rng, tempDevice } from './helpers.ts';

test('pinned pages survive newer trims and cleaning; a trim at their own version hides them', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const opts = { path: dev.path, offset: 0, size: 2 << 20, segmentBytes: 32 * 1024 };
  let a = await Allocator.open(opts);
  const KEY = 7;
  const V = 100;
  for (let p = 0; p < 8; p++) await a.write(KEY, p, pageData(KEY, p, 10 + p), 10 + p);
  const pin = await a.pin(V, { firstKey: KEY, lastKey: KEY });
  // Pages 0-3: trimmed after the pin by a newer version (a host trim under the next writer).
  await a.trim(KEY, 0, 4, V + 1);
  // Pages 4-5: trimmed at their own version, as the trim of a misplaced copy does.
  await a.trim(KEY, 4, 1, 14);
  await a.trim(KEY, 5, 1, 15);
  t.is(a.mappedPages(KEY), 2, 'the own-version trims drop the mapped count');
  // Churn another key so the cleaner moves the kept blocks.
  const rand = rng(3);
  for (let i = 0; i < 2000; i++) {
    const p = Math.floor(rand() * 150);
    await a.write(9, p, pageData(9, p, 1000 + i), 1000 + i);
  }
  t.true(a.stats().segmentsCleaned > 3, 'the cleaner ran');
  const expect = (): Buffer => Buffer.concat([0, 1, 2, 3].map((p) => pageData(KEY, p, 10 + p)).concat([Buffer.alloc(2 * PAGE)], [6, 7].map((p) => pageData(KEY, p, 10 + p))));
  t.true((await a.read(KEY, 0, 8, V)).equals(expect()), 'as of the pin: newer trims kept out, own-version trims in');
  t.true((await a.read(KEY, 0, 8)).subarray(0, 6 * PAGE).equals(Buffer.alloc(6 * PAGE)), 'now: all six trimmed');
  await a.close();
  a = await Allocator.open(opts);
  t.true((await a.read(KEY, 0, 8, V)).equals(expect()), 'the same after a reopen');
  await a.unpin(pin);
  await a.close();
});

test('an older version arriving after the pin shows in the view unless a newer one came first', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const a = await Allocator.open({ path: dev.path, offset: 0, size: 1 << 20 });
  const KEY = 3;
  const V = 50;
  await a.pin(V, { firstKey: KEY, lastKey: KEY });
  // Page 0: a backfill of version 20 with nothing newer here → in the view.
  await a.write(KEY, 0, pageData(KEY, 0, 20), 20);
  // Page 1: a host write of version 60 arrived first; the backfill of version 20 is dropped.
  await a.write(KEY, 1, pageData(KEY, 1, 60), 60);
  await a.write(KEY, 1, pageData(KEY, 1, 20), 20);
  const view = await a.read(KEY, 0, 2, V);
  t.true(view.subarray(0, PAGE).equals(pageData(KEY, 0, 20)));
  t.true(view.subarray(PAGE).equals(Buffer.alloc(PAGE)), 'the pinned view lacks page 1 (why a copy not current at pin time is never served)');
  await a.close();
});
