/**
 * The recovery rate limit (token bucket that yields to the foreground), per-kind progress
 * counters, and the reconcile rule that a trimmed copy's page never beats the data of the
 * same version (so a copy trimmed as misplaced cannot erase data when it is placed again).
 */
import test from 'ava';
import { ProgressTracker, RecoveryThrottle, newer, reconcileExtent, type ExtentCopy, type PageVersion, type PutEntry } from '../../src/recovery/index.ts';
import { dominates } from '../../src/node/misplaced.ts';

test('throttle: 4 MiB at 8 MiB/s takes about half a second; unlimited takes none', async (t) => {
  const th = new RecoveryThrottle({ bytesPerSec: 8 * 1024 * 1024, burstMs: 0 });
  const t0 = performance.now();
  for (let i = 0; i < 16; i++) await th.take(256 * 1024);
  const ms = performance.now() - t0;
  t.true(ms >= 440 && ms < 1500, `${ms} ms`);
  th.setRate(0);
  const t1 = performance.now();
  for (let i = 0; i < 100; i++) await th.take(1024 * 1024);
  t.true(performance.now() - t1 < 50);
});

test('throttle: host I/O cuts recovery to its foreground share', async (t) => {
  const th = new RecoveryThrottle({ bytesPerSec: 16 * 1024 * 1024, foregroundShare: 0.25, foregroundWindowMs: 5000, burstMs: 0 });
  t.is(th.effectiveRate(), 16 * 1024 * 1024);
  th.foreground();
  t.true(th.foregroundActive);
  t.is(th.effectiveRate(), 4 * 1024 * 1024);
  const t0 = performance.now();
  for (let i = 0; i < 4; i++) await th.take(256 * 1024); // 1 MiB at 4 MiB/s
  const ms = performance.now() - t0;
  t.true(ms >= 220 && ms < 1000, `${ms} ms`);
});

test('progress: a pass starts with work, counts bytes and extents, and ends when all is done', (t) => {
  let now = 1000;
  const p = new ProgressTracker(() => now);
  p.add('backfill', 2, 2 * 1048576);
  let b = p.snapshot().find((x) => x.kind === 'backfill')!;
  t.true(b.active);
  t.is(b.startedAt, 1000);
  now += 2000;
  p.done('backfill', 1, 1048576);
  b = p.snapshot().find((x) => x.kind === 'backfill')!;
  t.is(b.extentsDone, 1);
  t.true(b.rate > 0, 'a rate once bytes moved');
  now += 1000;
  p.drop('backfill', 1, 1048576);
  b = p.snapshot().find((x) => x.kind === 'backfill')!;
  t.false(b.active);
  t.is(b.finishedAt, 4000);
  t.is(b.extentsTotal, 1);
  // Restored counters continue a pass.
  const q = new ProgressTracker(() => now);
  q.restore([{ ...b, active: true, finishedAt: null, extentsTotal: 3, extentsDone: 1 }]);
  q.done('backfill', 2, 0);
  t.false(q.active('backfill'));
  t.is(q.snapshot().find((x) => x.kind === 'backfill')!.extentsDone, 3);
});

function memCopy(leaf: number, pages: Map<number, { v: PageVersion; data?: Buffer }>): ExtentCopy {
  return {
    leaf,
    versions: async () => [...pages.values()].map((p) => p.v).sort((a, b) => a.page - b.page),
    read: async (first, n) => {
      const b = Buffer.alloc(n * 4096);
      for (let p = first; p < first + n; p++) pages.get(p)?.data?.copy(b, (p - first) * 4096);
      return b;
    },
    put: async (entries: PutEntry[]) => {
      for (const e of entries) pages.set(e.page, { v: { page: e.page, version: e.version, mapped: !e.trim }, data: e.trim ? undefined : Buffer.from(e.data!) });
    },
  };
}

test('reconcile: at equal versions data beats a trim, so a copy trimmed as misplaced is refilled, never the members emptied', async (t) => {
  const data = Buffer.alloc(4096, 7);
  const member = new Map([[0, { v: { page: 0, version: 5, mapped: true }, data }]]);
  const trimmed = new Map([[0, { v: { page: 0, version: 5, mapped: false } }]]) as Map<number, { v: PageVersion; data?: Buffer }>;
  t.true(newer({ page: 0, version: 5, mapped: true }, { page: 0, version: 5, mapped: false }));
  t.false(newer({ page: 0, version: 5, mapped: false }, { page: 0, version: 5, mapped: true }));
  // Whichever order the copies come in.
  for (const order of [[0, 1], [1, 0]]) {
    const m = new Map(member);
    const x = new Map(trimmed);
    const copies = [memCopy(1, m), memCopy(2, x)];
    const r = await reconcileExtent(order.map((i) => copies[i]));
    t.is(r.pages, 1);
    t.deepEqual(r.updated, [2]);
    t.true(x.get(0)!.v.mapped);
    t.deepEqual(x.get(0)!.data, data);
    t.true(m.get(0)!.v.mapped);
  }
});

test('dominates: a member covers a copy when it holds each mapped page at the same version mapped, or newer', (t) => {
  const mine = [{ page: 0, version: 5, mapped: true }, { page: 1, version: 3, mapped: false }];
  t.true(dominates([{ page: 0, version: 5, mapped: true }], mine), 'trimmed pages need nothing');
  t.true(dominates([{ page: 0, version: 9, mapped: false }], mine), 'a newer trim covers it');
  t.false(dominates([{ page: 0, version: 5, mapped: false }], mine), 'a trim at the same version is not the data');
  t.false(dominates([{ page: 0, version: 4, mapped: true }], mine));
  t.false(dominates([], mine));
});
