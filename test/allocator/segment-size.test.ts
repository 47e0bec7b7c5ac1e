/**
 * The default segment size is matched to what one record header can describe
 * (allocator/options.ts, defaultSegmentBlocks): under random 4 KiB overwrites at 90 %
 * utilisation with the keys and versions a node really uses (volume × 2^32 + extent, 64-page
 * extents, generation × 2^32 + sequence), each cleaner record still needs a single 4 KiB
 * header for its ~319 scattered pages, so summaries cost ≈ 1/319 per copied page rather than
 * 1/255 with 1 MiB segments.
 */
import test from 'ava';
import { Allocator, SUMMARY_MATCHED_BLOCKS, defaultSegmentBlocks } from '../../allocator/index.ts';
import { pagesData, rng, tempDevice } from './helpers.ts';

const MiB = 1024 * 1024;
const EXTENT_PAGES = 64;
/** Key of extent `i` of volume 7 when this partition holds every 37th extent of it. */
const key = (i: number): number => 7 * 2 ** 32 + i * 37;

test('default segments: 1.25 MiB for a large region, powers of two up to 1 MiB below', (t) => {
  t.is(defaultSegmentBlocks((1024 * MiB) / 4096), SUMMARY_MATCHED_BLOCKS);
  t.is(SUMMARY_MATCHED_BLOCKS * 4096, 1.25 * MiB);
  t.is(defaultSegmentBlocks((64 * MiB) / 4096), 256);
  t.is(defaultSegmentBlocks((4 * MiB) / 4096), 16);
});

test('at 90 % utilisation, cleaner records carry ≥ 300 scattered pages per header with default segments', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const a = await Allocator.open({ path: dev.path, offset: 0, size: 112 * MiB, cleanerBytesPerSec: 0, cleaner: 'greedy', maxUtilization: 0.95 });
  t.is(a.stats().segmentBytes, SUMMARY_MATCHED_BLOCKS * 4096);
  const extents = Math.floor((a.stats().segments * SUMMARY_MATCHED_BLOCKS * 0.9) / EXTENT_PAGES);
  const live = extents * EXTENT_PAGES;
  const gen = 3 * 2 ** 32;
  let seq = 0;
  for (let e = 0; e < extents; e++) await a.write(key(e), 0, pagesData(key(e), 0, EXTENT_PAGES, gen + ++seq), gen + seq);
  const random = rng(11);
  const page = pagesData(0, 0, 1, 1);
  const overwrite = async (n: number): Promise<void> => {
    let left = n;
    await Promise.all(Array.from({ length: 64 }, async () => {
      while (left-- > 0) {
        const p = Math.floor(random() * live);
        await a.write(key(Math.floor(p / EXTENT_PAGES)), p % EXTENT_PAGES, page, gen + ++seq);
      }
    }));
  };
  await overwrite(live * 2);
  const s0 = a.stats();
  await overwrite(live * 2);
  const s1 = a.stats();
  const copied = (s1.cleanerBytesMoved - s0.cleanerBytesMoved) / 4096;
  const headers = (s1.cleanerSummaryBytesWritten - s0.cleanerSummaryBytesWritten) / 4096;
  const host = s1.hostBytesWritten - s0.hostBytesWritten;
  t.log(`WA ${((s1.deviceBytesWritten - s0.deviceBytesWritten) / host).toFixed(2)}; ${copied} pages copied under ${headers} cleaner headers (${(copied / headers).toFixed(1)} each); summaries ${((100 * (s1.summaryBytesWritten - s0.summaryBytesWritten)) / host).toFixed(2)} % of host bytes`);
  t.true(copied > 10 * SUMMARY_MATCHED_BLOCKS, `the cleaner was busy (${copied} pages copied)`);
  t.true(copied / headers >= 300, `cleaner records carry ${(copied / headers).toFixed(1)} pages per header`);
  await a.close();
});
