/**
 * The checkpoint interval counts host writes, not appended blocks (allocator/checkpointer.ts):
 * at high utilisation the cleaner appends several blocks per host page, and those copies
 * must not bring checkpoints (≈ 13 bytes per mapped page each) that many times sooner.
 * Everything written still reads back after a reopen.
 */
import test from 'ava';
import { Allocator } from '../../allocator/index.ts';
import { pagesData, rng, tempDevice, until } from './helpers.ts';

const MiB = 1024 * 1024;

test('cleaner copies do not trigger checkpoints; host writes of factor × live do; everything reads back after a reopen', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const opts = { path: dev.path, offset: 0, size: 32 * MiB, segmentBytes: 256 * 1024, checkpointFactor: 1, checkpointMinBytes: 4096, cleanerBytesPerSec: 0 };
  let a = await Allocator.open(opts);
  const segPages = a.stats().segments * 64;
  // ~90 % of the segment blocks live: keys of 64 pages.
  const keys = Math.floor((segPages * 0.9) / 64);
  let v = 1;
  for (let k = 0; k < keys; k++) await a.write(k, 0, pagesData(k, 0, 64, v), v);
  const live = keys * 64;
  // Random single-page overwrites, 32 in flight.
  const random = rng(0x9e3779b9);
  const rnd = (n: number): number => Math.floor(random() * n);
  const latest = new Map<string, number>();
  const overwrite = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i += 32) {
      await Promise.all(Array.from({ length: 32 }, async () => {
        const k = rnd(keys);
        const p = rnd(64);
        const ver = ++v;
        latest.set(`${k}/${p}`, ver);
        await a.write(k, p, pagesData(k, p, 1, ver), ver);
      }));
    }
  };
  // Warm up to the steady state (the cleaner at work), then checkpoint: the interval starts here.
  await overwrite(live * 2);
  await a.checkpoint();
  const s0 = a.stats();
  await overwrite(Math.floor(live * 0.9));
  const s1 = a.stats();
  const hostPages = (s1.hostBytesWritten - s0.hostBytesWritten) / 4096;
  const appended = (s1.deviceBytesWritten - s0.deviceBytesWritten) / 4096;
  t.log(`live ${live} pages; since the checkpoint: host ${hostPages} pages, appended ${appended} blocks, ${s1.segmentsCleaned - s0.segmentsCleaned} segments cleaned`);
  // Counted in appended blocks (the old rule), this would have been past the interval.
  t.true(appended > live, `the cleaner's copies took the appended blocks past factor × live (${appended} blocks vs live ${live})`);
  t.is(s1.checkpoints, s0.checkpoints, 'no checkpoint while hosts wrote less than factor × live');
  await overwrite(Math.ceil(live * 0.2));
  t.true(await until(() => a.stats().checkpoints > s0.checkpoints, 10000), 'hosts wrote factor × live: a checkpoint follows');
  await a.close();
  a = await Allocator.open({ ...opts, create: false });
  let checked = 0;
  for (const [kp, ver] of latest) {
    const [k, p] = kp.split('/').map(Number);
    if (checked++ % 7 !== 0) continue;
    t.true((await a.read(k, p, 1)).equals(pagesData(k, p, 1, ver)), `key ${k} page ${p} after reopen`);
  }
  await a.close();
});
