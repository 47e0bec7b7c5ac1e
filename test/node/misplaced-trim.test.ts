/**
 * The trimmer of misplaced copies (src/node/misplaced.ts) against a map change: it reads the
 * map again right before each copy's trims and stops the pass once the epoch moved, so a
 * copy that placement brings back is not trimmed after a peering round compared it. A copy
 * it does trim is trimmed at each page's own version, runs of pages in one trim each.
 * Real allocators on real files; the map view and the members' copies are stand-ins.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Allocator, PAGE } from '../../allocator/index.ts';
import type { ClusterView } from '../../src/initiator/index.ts';
import { trimMisplaced } from '../../src/node/misplaced.ts';
import type { NodeStorage } from '../../src/node/storage.ts';
import type { ExtentCopy, PageVersion } from '../../src/recovery/index.ts';
import { extentKey } from '../../src/wire/index.ts';

const LEAF = 7;
const MEMBERS = [1, 2, 3];

/** A view at `epoch` placing every extent on `members` (not on LEAF) of a 3-replica pool, every node up. */
function viewAt(epoch: number, members = MEMBERS): ClusterView {
  return { epoch, members: () => members, isUp: () => true, nodeOf: (m: number) => m, pool: () => ({ replicas: 3 }) } as unknown as ClusterView;
}

test('a trim pass stops once the map epoch moves; trims land at each page\'s own version', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-misplaced-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const a = await Allocator.open({ path: join(dir, 'dev'), offset: 0, size: 16 * 1024 * 1024, segmentBytes: 256 * 1024 });
  t.teardown(() => a.close());
  // Three misplaced extents of volume 1, pages 0-7 at version 10 and 8-11 at version 20.
  const keys = [0, 1, 2].map((x) => extentKey(1, x));
  for (const k of keys) {
    await a.write(k, 0, Buffer.alloc(8 * PAGE, 1), 10);
    await a.write(k, 8, Buffer.alloc(4 * PAGE, 2), 20);
  }
  const storage = { partitions: new Map([[LEAF, a]]), get: (l: number) => (l === LEAF ? a : undefined), markDirty: () => undefined, flushDirty: async () => undefined } as unknown as NodeStorage;
  let epoch = 5;
  let trimsSeen = 0;
  const members = (versions: PageVersion[]): ExtentCopy => ({ leaf: 1, versions: async () => versions, read: async () => Buffer.alloc(0), put: async () => undefined });
  const origTrim = a.trim.bind(a);
  // The map moves to epoch 6 as soon as the first copy's trims are queued.
  a.trim = (key, first, count, version) => {
    trimsSeen++;
    epoch = 6;
    return origTrim(key, first, count, version);
  };
  const r = await trimMisplaced({
    storage, nodeId: 9, view: () => viewAt(epoch), volumeInfo: () => ({ pool: 0, extentPages: 256 }),
    copy: () => members([...Array(12).keys()].map((p) => ({ page: p, version: p < 8 ? 10 : 20, mapped: true }))),
    flushNode: async () => undefined, log: pino({ level: 'silent' }), stopped: () => false,
  });
  t.is(r.extents, 1, 'one copy trimmed, then the pass stopped');
  t.is(trimsSeen, 2, 'that copy in two trims: pages 0-7 at 10, 8-11 at 20');
  const trimmed = keys.filter((k) => a.mappedPages(k) === 0);
  t.is(trimmed.length, 1);
  t.is(a.version(trimmed[0], 3), 10, 'trimmed at the page\'s own version');
  t.is(a.version(trimmed[0], 9), 20);
  for (const k of keys.filter((x) => x !== trimmed[0])) t.is(a.mappedPages(k), 12, 'copies after the epoch change are kept');
});

test('an undersized extent (2 members placeable of 3 replicas) keeps its misplaced copy', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-misplaced-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const a = await Allocator.open({ path: join(dir, 'dev'), offset: 0, size: 16 * 1024 * 1024, segmentBytes: 256 * 1024 });
  t.teardown(() => a.close());
  const key = extentKey(1, 0);
  await a.write(key, 0, Buffer.alloc(8 * PAGE, 1), 10);
  const storage = { partitions: new Map([[LEAF, a]]), get: (l: number) => (l === LEAF ? a : undefined), markDirty: () => undefined, flushDirty: async () => undefined } as unknown as NodeStorage;
  const copy = (): ExtentCopy => ({ leaf: 1, versions: async () => [...Array(8).keys()].map((p) => ({ page: p, version: 10, mapped: true })), read: async () => Buffer.alloc(0), put: async () => undefined });
  const ctx = { storage, nodeId: 9, volumeInfo: () => ({ pool: 0, extentPages: 256 }), copy, flushNode: async () => undefined, log: pino({ level: 'silent' }), stopped: () => false };
  const under = await trimMisplaced({ ...ctx, view: () => viewAt(5, [1, 2]) });
  t.deepEqual(under, { misplaced: 1, extents: 0, bytes: 0 }, 'found misplaced, not trimmed');
  t.is(a.mappedPages(key), 8, 'every page still mapped');
  // Once placement gives the extent its 3 members again, the copy is dead weight and goes.
  const full = await trimMisplaced({ ...ctx, view: () => viewAt(6) });
  t.is(full.extents, 1);
  t.is(a.mappedPages(key), 0);
});
