/**
 * Small host I/O made on the event loop (allocator/sync-io.ts, device-io.ts hostPreadFully,
 * hostPwritevFully): a cached read completes before read() returns, a batch of reads in one
 * turn is read synchronously up to READ_LIMITS.turnMaxCalls and the rest goes to the thread
 * pool, large reads never skip the pool, small write batches are written synchronously, slow
 * calls back the policy off to the pool for backoffMs, and every call returns the same bytes
 * and errors either way. The process policies are shared, so the allocator tests run serially.
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, openSync, readSync } from 'node:fs';
import { Allocator, ChecksumError, PAGE, READ_LIMITS, SyncIoPolicy, setSyncIo, syncIoFigures } from '../../allocator/index.ts';

const { maxBytes: SYNC_READ_MAX_BYTES, turnMaxCalls: TURN_MAX_READS, turnBudgetUs: TURN_BUDGET_US, slowMeanUs: SLOW_MEAN_US, sampleClampUs: SAMPLE_CLAMP_US, backoffMs: BACKOFF_MS } = READ_LIMITS;
import { syncReads } from '../../allocator/sync-io.ts';
import { flip, pageData, pagesData, tempDevice } from './helpers.ts';

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));
const syncCount = (): number => syncIoFigures().reads.calls;

async function setup(t: { teardown: (f: () => void) => void }): Promise<{ a: Allocator; path: string }> {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  // No pre-zeroing: its background writes would add to the read times the policy measures.
  const a = await Allocator.open({ path: dev.path, offset: 0, size: 8 * 1024 * 1024, prezero: false });
  await a.write(1, 0, pagesData(1, 0, 256, 3), 3);
  await a.flush();
  // A back-off left by an earlier test's slow reads (a loaded machine) would send this
  // test's reads to the pool: wait it out (≤ BACKOFF_MS), then start on a fresh turn.
  while (syncReads.backingOff()) await new Promise((r) => setTimeout(r, 10));
  await nextTurn();
  return { a, path: dev.path };
}

test.serial('a cached 4 KiB read completes before read() returns; a turn reads at most TURN_MAX_READS synchronously', async (t) => {
  const { a } = await setup(t);
  let c = syncCount();
  const into = Buffer.alloc(PAGE);
  const p = a.read(1, 5, 1, undefined, into);
  t.is(syncCount(), c + 1, 'the read was made before read() returned');
  t.deepEqual(await p, pageData(1, 5, 3));
  // A batch of 8 cached reads is read synchronously in one turn. A read preempted on a loaded
  // machine (CI runs test files side by side) can end the turn by its time budget or start a
  // back-off, both rules of their own (tested below): such an attempt is retried on a fresh
  // turn, three times at most; the turn's call limit never stops 8.
  let synchronous = 0;
  for (let attempt = 0; attempt < 3 && synchronous < 8; attempt++) {
    while (syncReads.backingOff()) await new Promise((r) => setTimeout(r, 10));
    await nextTurn();
    c = syncCount();
    const eight = Array.from({ length: 8 }, (_, i) => a.read(1, i * 7, 1));
    synchronous = syncCount() - c;
    (await Promise.all(eight)).forEach((b, i) => t.deepEqual(b, pageData(1, i * 7, 3)));
  }
  t.is(synchronous, 8, 'a batch of 8 cached reads is read synchronously');
  await nextTurn();
  c = syncCount();
  const n = TURN_MAX_READS + 40;
  const many = Array.from({ length: n }, (_, i) => a.read(1, i, 1));
  const made = syncCount() - c;
  // The per-turn time budget may end the turn earlier on a loaded machine, never later.
  t.true(made <= TURN_MAX_READS && made > 0, `${made} synchronous reads in one turn`);
  (await Promise.all(many)).forEach((b, i) => t.deepEqual(b, pageData(1, i, 3)));
  await a.close();
});

test.serial('a read above SYNC_READ_MAX_BYTES, or with the policy off, goes to the thread pool', async (t) => {
  const { a } = await setup(t);
  const big = SYNC_READ_MAX_BYTES / PAGE + 1;
  let c = syncCount();
  const p = a.read(1, 0, big);
  t.is(syncCount(), c);
  t.deepEqual(await p, pagesData(1, 0, big, 3));
  await nextTurn();
  c = syncCount();
  const q = a.read(1, 0, 16);
  t.is(syncCount(), c + 1, 'a 64 KiB run is read synchronously');
  t.deepEqual(await q, pagesData(1, 0, 16, 3));
  setSyncIo({ reads: false });
  try {
    await nextTurn();
    c = syncCount();
    const r = a.read(1, 9, 1);
    t.is(syncCount(), c);
    t.deepEqual(await r, pageData(1, 9, 3));
  } finally {
    setSyncIo({ reads: true });
  }
  await a.close();
});

test.serial('small write batches are written synchronously, large ones on the pool; both read back the same', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const a = await Allocator.open({ path: dev.path, offset: 0, size: 64 * 1024 * 1024 });
  await nextTurn();
  let w = syncIoFigures().writes.calls;
  await a.write(1, 0, pagesData(1, 0, 4, 5), 5);
  t.true(syncIoFigures().writes.calls > w, 'a 16 KiB batch was written synchronously');
  await nextTurn();
  w = syncIoFigures().writes.calls;
  
  await a.write(1, 100, pagesData(1, 100, 64, 5), 5);
  t.is(syncIoFigures().writes.calls, w, 'a 256 KiB batch went to the pool');
  setSyncIo({ writes: false });
  try {
    await nextTurn();
    w = syncIoFigures().writes.calls;
    await a.write(1, 10, pagesData(1, 10, 2, 6), 6);
    t.is(syncIoFigures().writes.calls, w);
  } finally {
    setSyncIo({ writes: true });
  }
  await a.flush();
  t.deepEqual(await a.read(1, 0, 4), pagesData(1, 0, 4, 5));
  t.deepEqual(await a.read(1, 10, 2), pagesData(1, 10, 2, 6));
  t.deepEqual(await a.read(1, 100, 64), pagesData(1, 100, 64, 5));
  await a.close();
  // Reopened from the device: what the synchronous writes put there is what recovery finds.
  const b = await Allocator.open({ path: dev.path, offset: 0, size: 64 * 1024 * 1024 });
  t.deepEqual(await b.read(1, 0, 4), pagesData(1, 0, 4, 5));
  t.deepEqual(await b.read(1, 10, 2), pagesData(1, 10, 2, 6));
  await b.close();
});

test.serial('a synchronous read of a damaged page rejects with ChecksumError (no throw from read())', async (t) => {
  const { a, path } = await setup(t);
  flip(path, a.locate(1, 20)! + 100);
  const c = syncCount();
  const p = a.read(1, 20, 1);
  t.is(syncCount(), c + 1);
  await t.throwsAsync(p, { instanceOf: ChecksumError });
  t.deepEqual(await a.read(1, 21, 1), pageData(1, 21, 3));
  await a.close();
});

/** A policy on a hand-driven clock whose turns end when the test says so. */
function manual(): { p: SyncIoPolicy; clock: { ms: number }; endTurn: () => void } {
  const clock = { ms: 1000 };
  let ends: Array<() => void> = [];
  const p = new SyncIoPolicy(READ_LIMITS, () => clock.ms, (f) => ends.push(f));
  return {
    p,
    clock,
    endTurn: () => {
      const fs = ends;
      ends = [];
      for (const f of fs) f();
    },
  };
}

test('slow synchronous reads (device, not page cache) back off to the pool for BACKOFF_MS', (t) => {
  const { p, clock, endTurn } = manual();
  // Cached reads with one preempted outlier: no back-off.
  for (let i = 0; i < 50; i++) {
    t.true(p.take(PAGE));
    p.record(i === 20 ? 5000 : 4);
    endTurn();
  }
  t.is(p.figures.backoffs, 0, 'one 5 ms outlier among cached reads does not back off');
  // Device reads of 120 µs: the mean crosses SLOW_MEAN_US within a few reads.
  let slow = 0;
  while (p.take(PAGE)) {
    p.record(120);
    endTurn();
    slow++;
    if (slow > 20) break;
  }
  t.true(slow > 1 && slow <= 10, `${slow} slow reads before the back-off`);
  t.is(p.figures.backoffs, 1);
  t.true(p.backingOff());
  clock.ms += BACKOFF_MS - 1;
  t.false(p.take(PAGE), 'still on the pool just before BACKOFF_MS');
  clock.ms += 2;
  t.true(p.take(PAGE), 'after BACKOFF_MS a read is tried synchronously again, with a fresh mean');
  p.record(4);
  t.false(p.backingOff());
  t.true(SLOW_MEAN_US < SAMPLE_CLAMP_US, 'a clamped sample can still reach the threshold');
});

test('a turn stops reading synchronously after TURN_BUDGET_US of measured read time', (t) => {
  const { p, endTurn } = manual();
  const us = SLOW_MEAN_US - 5; // fast enough never to back off, slow enough to spend the budget
  let n = 0;
  while (n < 100 && p.take(PAGE)) {
    p.record(us);
    n++;
  }
  t.is(n, Math.ceil(TURN_BUDGET_US / us), 'the turn ended on its time budget');
  t.true(n < TURN_MAX_READS);
  t.is(p.figures.backoffs, 0);
  endTurn();
  t.true(p.take(PAGE), 'the next turn reads synchronously again');
});

/** Drops the page cache of a whole file (GNU dd: posix_fadvise(DONTNEED) on clean pages). */
function evict(path: string): void {
  execFileSync('dd', [`if=${path}`, 'iflag=nocache', 'count=0', 'status=none']);
}

test.serial('reads of a device file evicted from the page cache back off to the thread pool and return the same bytes', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const a = await Allocator.open({ path: dev.path, offset: 0, size: 64 * 1024 * 1024 });
  const pages = 8192;
  for (let p = 0; p < pages; p += 256) await a.write(1, p, pagesData(1, p, 256, 3), 3);
  await a.flush();
  // How long a cold 4 KiB read takes on this machine's disk, measured outside the policy.
  evict(dev.path);
  const fd = openSync(dev.path, 'r');
  const probe = Buffer.alloc(PAGE);
  const times: number[] = [];
  for (let i = 0; i < 31; i++) {
    const t0 = performance.now();
    readSync(fd, probe, 0, PAGE, ((i * 2654435761) % 16000) * PAGE);
    times.push((performance.now() - t0) * 1000);
  }
  closeSync(fd);
  const coldUs = times.sort((x, y) => x - y)[15];
  evict(dev.path);
  const before = syncIoFigures().reads;
  for (let i = 0; i < 64; i++) {
    const page = (i * 127) % pages;
    t.deepEqual(await a.read(1, page, 1), pageData(1, page, 3));
    await nextTurn();
  }
  const after = syncIoFigures().reads;
  t.log(`cold 4 KiB read: ${coldUs.toFixed(0)} µs (median); ${after.calls - before.calls} of 64 reads synchronous, ${after.backoffs - before.backoffs} back-off(s)`);
  if (coldUs > 1.5 * SLOW_MEAN_US) {
    t.true(after.backoffs > before.backoffs, 'slow reads backed off');
    t.true(after.calls - before.calls < 32, 'most reads went to the pool');
  } else {
    t.pass(`this disk answers cold reads in ${coldUs.toFixed(0)} µs, under 1.5 × SLOW_MEAN_US: nothing to back off from`);
  }
  await a.close();
});

test('CAIRN_SYNC_IO chooses the kinds; an unknown value stops the process with one clear line', (t) => {
  const mod = new URL('../../allocator/sync-io.ts', import.meta.url).pathname;
  const probe = `import('${mod}').then((m) => console.log(JSON.stringify([m.syncReads.enabled, m.syncWrites.enabled])))`;
  const run = (value: string) => spawnSync(process.execPath, ['--import', 'tsx', '-e', probe], { env: { ...process.env, CAIRN_SYNC_IO: value }, encoding: 'utf8' });
  const bad = run('true');
  t.not(bad.status, 0);
  t.regex(bad.stderr, /CAIRN_SYNC_IO must be on, reads, writes or off \(got "true"\)/);
  const want: Record<string, [boolean, boolean]> = { on: [true, true], reads: [true, false], writes: [false, true], off: [false, false], '': [true, true] };
  for (const [v, both] of Object.entries(want)) {
    const r = run(v);
    t.is(r.status, 0, r.stderr);
    t.deepEqual(JSON.parse(r.stdout), both, `CAIRN_SYNC_IO=${v}`);
  }
});
