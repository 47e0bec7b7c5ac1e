/**
 * Host reads made synchronously when the process is idle (allocator/device-io.ts,
 * hostPreadFully): at queue depth 1 a read skips the thread pool's two wake-ups, while a
 * batch of reads issued in one turn of the event loop makes only its first read that way,
 * large reads never do, and every read returns the same bytes and errors either way.
 * The policy is per process, so these tests run serially.
 */
import test from 'ava';
import { Allocator, ChecksumError, IDLE_SYNC_MAX_BYTES, PAGE, idleSyncReadCount, setIdleSyncReads } from '../../allocator/index.ts';
import { flip, pageData, pagesData, tempDevice } from './helpers.ts';

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

async function setup(t: { teardown: (f: () => void) => void }): Promise<{ a: Allocator; path: string }> {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const a = await Allocator.open({ path: dev.path, offset: 0, size: 8 * 1024 * 1024 });
  await a.write(1, 0, pagesData(1, 0, 64, 3), 3);
  await a.flush();
  await nextTurn();
  return { a, path: dev.path };
}

test.serial('an idle 4 KiB read is synchronous; of 8 reads issued in one turn only the first is', async (t) => {
  const { a } = await setup(t);
  let c = idleSyncReadCount();
  const into = Buffer.alloc(PAGE);
  const p = a.read(1, 5, 1, undefined, into);
  t.is(idleSyncReadCount(), c + 1, 'the read was made before read() returned');
  t.deepEqual(await p, pageData(1, 5, 3));
  await nextTurn();
  c = idleSyncReadCount();
  const reads = Array.from({ length: 8 }, (_, i) => a.read(1, i * 7, 1));
  t.is(idleSyncReadCount(), c + 1);
  const got = await Promise.all(reads);
  got.forEach((b, i) => t.deepEqual(b, pageData(1, i * 7, 3)));
  await a.close();
});

test.serial('a read above IDLE_SYNC_MAX_BYTES, or with the policy off, goes to the thread pool', async (t) => {
  const { a } = await setup(t);
  const big = IDLE_SYNC_MAX_BYTES / PAGE + 1;
  let c = idleSyncReadCount();
  const p = a.read(1, 0, big);
  t.is(idleSyncReadCount(), c);
  t.deepEqual(await p, pagesData(1, 0, big, 3));
  await nextTurn();
  c = idleSyncReadCount();
  const q = a.read(1, 0, 16);
  t.is(idleSyncReadCount(), c + 1, 'a 64 KiB run is read synchronously');
  t.deepEqual(await q, pagesData(1, 0, 16, 3));
  setIdleSyncReads(false);
  try {
    await nextTurn();
    c = idleSyncReadCount();
    const r = a.read(1, 9, 1);
    t.is(idleSyncReadCount(), c);
    t.deepEqual(await r, pageData(1, 9, 3));
  } finally {
    setIdleSyncReads(true);
  }
  await a.close();
});

test.serial('a synchronous read of a damaged page rejects with ChecksumError (no throw from read())', async (t) => {
  const { a, path } = await setup(t);
  flip(path, a.locate(1, 20)! + 100);
  const c = idleSyncReadCount();
  const p = a.read(1, 20, 1);
  t.is(idleSyncReadCount(), c + 1);
  await t.throwsAsync(p, { instanceOf: ChecksumError });
  t.deepEqual(await a.read(1, 21, 1), pageData(1, 21, 3));
  await a.close();
});
