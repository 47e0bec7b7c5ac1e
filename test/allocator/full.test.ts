/**
 * A full partition: new pages are refused with AllocatorFullError (code ENOSPC) before
 * anything is written, overwrites of mapped pages still succeed, nothing else changes,
 * and after trims new writes succeed again — also across a reopen.
 */
import test from 'ava';
import { Allocator, AllocatorFullError, PAGE } from '../../allocator/index.ts';
import { pageData, pagesData, tempDevice } from './helpers.ts';

test('fill to ENOSPC, nothing changed, trims make room again', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const opts = { path: dev.path, offset: 0, size: 2 * 1024 * 1024, segmentBytes: 32 * 1024 };
  let a = await Allocator.open(opts);
  const cap = a.stats().capacityBytes / PAGE;
  const model = new Map<string, number>();
  let v = 1;
  let full: unknown = null;
  let written = 0;
  // Fill with 4-page writes across keys until refused.
  for (let i = 0; !full && i < cap; i++) {
    const key = i % 5;
    const first = Math.floor(i / 5) * 4;
    try {
      await a.write(key, first, pagesData(key, first, 4, v), v);
      for (let p = 0; p < 4; p++) model.set(`${key}:${first + p}`, v);
      written += 4;
    } catch (e) {
      full = e;
      const ks = { key, first };
      t.log(`refused at ${written} pages of ${cap}: ${(e as Error).message}`, ks);
    }
    v++;
  }
  t.true(full instanceof AllocatorFullError);
  t.is((full as AllocatorFullError).code, 'ENOSPC');
  t.true(written > cap - 4 && written <= cap, `${written} of ${cap}`);
  // Top up page by page until exactly full.
  for (let p = 0; written < cap; p++, v++) {
    await a.write(55, p, pageData(55, p, v), v);
    model.set(`55:${p}`, v);
    written++;
  }
  t.is(a.stats().freeBytes, 0);
  // A refused write of a page that was never written stays unwritten.
  await t.throwsAsync(a.write(77, 0, pageData(77, 0, v), v), { instanceOf: AllocatorFullError });
  t.true((await a.read(77, 0, 1)).equals(Buffer.alloc(PAGE)));
  t.is(a.version(77, 0), 0);
  // Overwrites of mapped pages keep working (the cleaner makes the room), many times over.
  for (let r = 0; r < 3; r++) {
    for (const id of [...model.keys()]) {
      const [k, p] = id.split(':').map(Number);
      if ((p + r) % 3 !== 0) continue;
      await a.write(k, p, pageData(k, p, v), v);
      model.set(id, v);
    }
    v++;
  }
  const check = async (): Promise<void> => {
    for (const [id, ver] of model) {
      const [k, p] = id.split(':').map(Number);
      t.true((await a.read(k, p, 1)).equals(ver ? pageData(k, p, ver) : Buffer.alloc(PAGE)), id);
    }
  };
  await check();
  // Trim a key; new pages then fit again.
  await a.trim(0, 0, 10_000, v++);
  for (const id of model.keys()) if (id.startsWith('0:')) model.set(id, 0);
  let more = 0;
  for (let p = 0; p < 40; p++, more++) {
    await a.write(1000, p, pageData(1000, p, v), v);
    model.set(`1000:${p}`, v);
  }
  t.is(more, 40);
  await check();
  await a.close();
  a = await Allocator.open(opts);
  await check();
  await a.close();
});
