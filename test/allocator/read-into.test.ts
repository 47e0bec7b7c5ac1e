/**
 * Reads into the caller's buffer (Allocator.read's `into`, used by nodes with reused reply
 * buffers): whatever the buffer held before, mapped pages come back as written and holes as
 * zeros; a wrong-sized buffer is refused.
 */
import test from 'ava';
import { Allocator, AllocatorStateError, PAGE } from '../../allocator/index.ts';
import { pageData, pagesData, tempDevice } from './helpers.ts';

test('read into a dirty buffer: written pages as written, holes as zeros', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const a = await Allocator.open({ path: dev.path, offset: 16 * PAGE, size: 4 * 1024 * 1024, segmentBytes: 32 * 1024 });
  t.teardown(() => a.close());
  const KEY = 9;
  await a.write(KEY, 0, pagesData(KEY, 0, 8, 1), 1);
  await a.write(KEY, 12, pageData(KEY, 12, 2), 2);
  const into = Buffer.alloc(16 * PAGE, 0xab);
  const got = await a.read(KEY, 0, 16, undefined, into);
  t.is(got, into, 'the caller\'s buffer is the result');
  t.true(got.subarray(0, 8 * PAGE).equals(pagesData(KEY, 0, 8, 1)), 'pages 0-7');
  t.true(got.subarray(8 * PAGE, 12 * PAGE).equals(Buffer.alloc(4 * PAGE)), 'holes 8-11 are zeros, not the old contents');
  t.true(got.subarray(12 * PAGE, 13 * PAGE).equals(pageData(KEY, 12, 2)), 'page 12');
  t.true(got.subarray(13 * PAGE).equals(Buffer.alloc(3 * PAGE)), 'holes 13-15');

  const full = Buffer.alloc(8 * PAGE, 0xcd);
  t.true((await a.read(KEY, 0, 8, undefined, full)).equals(pagesData(KEY, 0, 8, 1)), 'all pages mapped: read over');
  const none = Buffer.alloc(2 * PAGE, 0xef);
  t.true((await a.read(77, 0, 2, undefined, none)).equals(Buffer.alloc(2 * PAGE)), 'an unknown key reads as zeros');
  await t.throwsAsync(a.read(KEY, 0, 4, undefined, Buffer.alloc(PAGE)), { instanceOf: AllocatorStateError });
});
