/**
 * Early reclaim (allocator/cleaner.ts, reclaimEarly): while free space is plentiful and the
 * cleaner idles, segments whose every block was overwritten go back to the free list within
 * about a second, and the writer reuses them — so overwriting the same data again and again
 * keeps writing the same few segments instead of sweeping the whole partition (whose every
 * new block costs the OS a fresh page-cache page). Everything written reads back, also
 * after a reopen.
 */
import test from 'ava';
import { Allocator } from '../../allocator/index.ts';
import { pagesData, tempDevice, until } from './helpers.ts';

const MiB = 1024 * 1024;

test('overwritten segments return to the free list while space is plentiful, and are written again', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const opts = { path: dev.path, offset: 0, size: 64 * MiB, segmentBytes: MiB };
  let a = await Allocator.open(opts);
  const total = a.stats().segments;
  // 2 MiB of live data (two keys of 256 pages), overwritten 16 times: 32 MiB through 64 segments.
  let v = 1;
  let lowestFree = total;
  for (let pass = 0; pass < 16; pass++, v++) {
    for (const key of [1, 2]) await a.write(key, 0, pagesData(key, 0, 256, v), v);
    lowestFree = Math.min(lowestFree, a.stats().freeSegments);
    // Dead segments are reclaimed by the idle cleaner (an fdatasync, then back on the free list).
    t.true(await until(() => a.stats().segmentStates.dying < 4, 5000), `pass ${pass}: ${JSON.stringify(a.stats().segmentStates)}`);
  }
  const s = a.stats();
  t.log(`segments ${total}: lowest free count ${lowestFree}, now ${JSON.stringify(s.segmentStates)}; written ${s.deviceBytesWritten / MiB} MiB`);
  t.true(s.deviceBytesWritten >= 32 * MiB);
  t.is(s.segmentsCleaned, 0, 'nothing needed cleaning: the segments were empty');
  // Without early reclaim the writer would have swept 32+ segments before reusing any.
  t.true(lowestFree >= total - 12, `free segments stayed near the total (${lowestFree} of ${total})`);
  for (const key of [1, 2]) t.true((await a.read(key, 0, 256)).equals(pagesData(key, 0, 256, v - 1)));
  await a.close();
  a = await Allocator.open({ ...opts, create: false });
  for (const key of [1, 2]) t.true((await a.read(key, 0, 256)).equals(pagesData(key, 0, 256, v - 1)), `key ${key} after reopen`);
  await a.close();
});
