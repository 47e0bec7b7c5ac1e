/**
 * Smoothed writeback (allocator/writeback.ts): with `writebackBytes` set, the log starts a
 * background fdatasync each time it wrote that much, without any flush asked for, and the
 * data reads back before and after a reopen; at 0 no fdatasync is made before close. A
 * failed fdatasync (a real EBADF) reaches the failure callback; a bad option is refused.
 */
import test from 'ava';
import { closeSync, openSync } from 'node:fs';
import { Allocator, AllocatorStateError, syncCount } from '../../allocator/index.ts';
import { SmoothedWriteback } from '../../allocator/writeback.ts';
import { tempDevice } from './helpers.ts';
import { until } from '../helpers/cluster.ts';

const MiB = 1024 * 1024;

/** 8 MiB in 256 KiB writes, each filled with its index; none flushed. */
async function writeEight(a: Allocator): Promise<void> {
  for (let i = 0; i < 32; i++) await a.write(1, i * 64, Buffer.alloc(256 * 1024, i + 1), i + 1);
}

test.serial('writebackBytes 1 MiB: background fdatasyncs while 8 MiB are written, no flush asked; the data reads back after a reopen', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const opts = { path: dev.path, offset: 0, size: 32 * MiB, cleanerBytesPerSec: 0, writebackBytes: MiB };
  let a = await Allocator.open(opts);
  const syncs = syncCount();
  await writeEight(a);
  t.true(await until(() => a.stats().writebackSyncs >= 1, 5000), 'a background fdatasync completed');
  t.true(syncCount() > syncs, 'counted as fdatasync calls');
  t.true(a.stats().writebackSyncs <= 8, 'at most one per MiB written');
  for (let i = 0; i < 32; i++) t.true((await a.read(1, i * 64, 64)).equals(Buffer.alloc(256 * 1024, i + 1)));
  await a.close();
  a = await Allocator.open(opts);
  t.teardown(() => a.close());
  for (let i = 0; i < 32; i++) t.true((await a.read(1, i * 64, 64)).equals(Buffer.alloc(256 * 1024, i + 1)), `write ${i} after reopen`);
});

test.serial('writebackBytes 0: no fdatasync while writing', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const a = await Allocator.open({ path: dev.path, offset: 0, size: 32 * MiB, cleanerBytesPerSec: 0, writebackBytes: 0 });
  t.teardown(() => a.close());
  const syncs = syncCount();
  await writeEight(a);
  await new Promise((r) => setTimeout(r, 50));
  t.is(a.stats().writebackSyncs, 0);
  t.is(syncCount(), syncs);
});

test('a failed background fdatasync goes to the failure callback; a negative writebackBytes is refused', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const fd = openSync(dev.path, 'w');
  closeSync(fd); // a descriptor no longer open: fdatasync(2) gives EBADF
  let synced = 0;
  const failed = new Promise<Error>((resolve) => {
    const w = new SmoothedWriteback(fd, 4096, () => synced++, resolve);
    w.wrote(4096);
  });
  t.is(((await failed) as NodeJS.ErrnoException).code, 'EBADF');
  t.is(synced, 0);
  await t.throwsAsync(Allocator.open({ path: dev.path, offset: 0, size: 32 * MiB, writebackBytes: -1 }), { instanceOf: AllocatorStateError, message: /writebackBytes -1/ });
});
