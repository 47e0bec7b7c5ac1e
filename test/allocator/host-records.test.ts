/**
 * Host records fill their segment (allocator/log-streams.ts, hostNeed): at 90 % utilisation,
 * where hosts keep waiting for the cleaner, a host record is still sealed once per segment —
 * one 4 KiB summary per ~255 host pages with 1 MiB segments — not cut short whenever hosts
 * wait with a few blocks of the open segment left.
 */
import test from 'ava';
import { Allocator, setSyncIo, syncIoFigures } from '../../allocator/index.ts';
import { pagesData, rng, tempDevice } from './helpers.ts';

const MiB = 1024 * 1024;

test('at 90 % utilisation under random 4 KiB overwrites, host summaries stay ≤ 1 per 200 host pages', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const a = await Allocator.open({ path: dev.path, offset: 0, size: 128 * MiB, segmentBytes: MiB, cleanerBytesPerSec: 0, cleaner: 'greedy' });
  const live = Math.floor((a.stats().segments * 256 * 0.9) / 256) * 256;
  let v = 1;
  for (let k = 0; k < live / 256; k++) await a.write(k, 0, pagesData(k, 0, 256, v), v);
  const random = rng(7);
  const rnd = (n: number): number => Math.floor(random() * n);
  const page = pagesData(0, 0, 1, 1);
  const overwrite = async (n: number): Promise<void> => {
    let left = n;
    await Promise.all(Array.from({ length: 128 }, async () => {
      while (left-- > 0) {
        const p = rnd(live);
        await a.write(Math.floor(p / 256), p % 256, page, ++v);
      }
    }));
  };
  await overwrite(live * 2);
  const s0 = a.stats();
  await overwrite(live * 2);
  const s1 = a.stats();
  const hostPages = (s1.hostBytesWritten - s0.hostBytesWritten) / 4096;
  const hostHeaders = (s1.summaryBytesWritten - s1.cleanerSummaryBytesWritten - (s0.summaryBytesWritten - s0.cleanerSummaryBytesWritten)) / 4096;
  const wa = (s1.deviceBytesWritten - s0.deviceBytesWritten) / (s1.hostBytesWritten - s0.hostBytesWritten);
  t.log(`WA ${wa.toFixed(2)}; ${hostPages} host pages in ${hostHeaders} host records (${(hostPages / hostHeaders).toFixed(1)} pages each)`);
  t.true(wa > 3, `the cleaner was busy (WA ${wa.toFixed(2)})`);
  t.true(hostPages / hostHeaders >= 200, `host records carry ${(hostPages / hostHeaders).toFixed(1)} pages on average`);
  await a.close();
});

// Serial: the sync-I/O call counter is the process's, and ava runs a file's other tests concurrently.
test.serial('a write with its flush asked for at once (FUA) is written and sealed in one batch write; then read back after a reopen', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const opts = { path: dev.path, offset: 0, size: 16 * MiB, segmentBytes: MiB };
  setSyncIo({ writes: true });
  let a = await Allocator.open(opts);
  const calls = (): number => syncIoFigures().writes.calls;
  // Write, then flush once the write resolved: the pages, then the record's seal.
  const c0 = calls();
  await a.write(1, 0, pagesData(1, 0, 1, 1), 1);
  await a.flush();
  const apart = calls() - c0;
  // Both at once: the batch that writes the page also seals its record.
  const c1 = calls();
  await Promise.all([a.write(1, 1, pagesData(1, 1, 1, 2), 2), a.flush()]);
  const together = calls() - c1;
  t.log(`batch writes: ${apart} write-then-flush, ${together} write-with-flush`);
  t.is(apart, 2);
  t.is(together, 1);
  await a.close();
  a = await Allocator.open(opts);
  t.true((await a.read(1, 0, 2)).equals(Buffer.concat([pagesData(1, 0, 1, 1), pagesData(1, 1, 1, 2)])));
  await a.close();
});
