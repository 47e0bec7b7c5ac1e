/**
 * Segments larger than one summary header describes (4 MiB: ~1020 pages, ~340 per header)
 * under random 4 KiB overwrites at high utilisation. The cleaner hands the write path
 * chunks that fit in what is left of the cold segment, headers included; before, each
 * chunk of S − 1 pages spilled a few pages past the segment's end, and once no free segment
 * was left those pages were skipped, their victims never finished, and every write stalled
 * for good (allocator/cleaner.ts step()). Everything written must read back.
 */
import test from 'ava';
import { Allocator } from '../../allocator/index.ts';
import { pagesData, rng, tempDevice } from './helpers.ts';

const MiB = 1024 * 1024;

test('4 MiB segments at 88 % utilisation: random overwrites keep completing and read back', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const a = await Allocator.open({ path: dev.path, offset: 0, size: 256 * MiB + 4096, segmentBytes: 4 * MiB, cleaner: 'greedy', cleanerBytesPerSec: 0, maxUtilization: 0.95 });
  const segs = a.stats().segments;
  const live = Math.floor((segs * 1024 * 0.88) / 256) * 256;
  let v = 1;
  for (let k = 0; k < live / 256; k++) await a.write(k, 0, pagesData(k, 0, 256, v), v);
  const random = rng(0x2545f491);
  const rnd = (n: number): number => Math.floor(random() * n);
  const latest = new Map<number, number>();
  let done = 0;
  const total = live * 3;
  let left = total;
  const work = Promise.all(Array.from({ length: 128 }, async () => {
    while (left-- > 0) {
      const p = rnd(live);
      const ver = ++v;
      await a.write(Math.floor(p / 256), p % 256, pagesData(Math.floor(p / 256), p % 256, 1, ver), ver);
      if ((latest.get(p) ?? 0) < ver) latest.set(p, ver);
      done++;
    }
  }));
  // Progress watchdog: a stall is when no write completed for 20 s.
  const stalled = new Promise<string>((resolve) => {
    let last = -1;
    const iv = setInterval(() => {
      if (done === last) {
        clearInterval(iv);
        resolve('stalled');
      }
      last = done;
    }, 20000);
    void work.finally(() => clearInterval(iv));
  });
  const outcome = await Promise.race([work.then(() => 'done'), stalled]);
  const s = a.stats();
  t.log(`${done} of ${total} overwrites; WA ${(s.deviceBytesWritten / s.hostBytesWritten).toFixed(2)}, ${s.segmentsCleaned} segments cleaned, states ${JSON.stringify(s.segmentStates)}`);
  t.is(outcome, 'done', 'writes stopped completing: the allocator stalled');
  if (outcome !== 'done') return;
  let checked = 0;
  for (const [p, ver] of latest) {
    if (checked++ % 11 !== 0) continue;
    const k = Math.floor(p / 256);
    t.true((await a.read(k, p % 256, 1)).equals(pagesData(k, p % 256, 1, ver)), `page ${p}`);
  }
  await a.close();
});
