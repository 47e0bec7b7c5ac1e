/**
 * A node's snapshot-pin registry (src/node/snapshots.ts) on real partition allocators, without
 * a cluster: what Pin records (held copies, incomplete extents), the NoSnapshot reasons of
 * snapshot reads, idempotent pin and unpin, restart (the record and the allocator pins
 * survive; a pin left without a record is released).
 */
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { partitionLeafId } from '../../placement/index.ts';
import type { ClusterMap } from '../../src/clustermap/index.ts';
import { NodeStorage } from '../../src/node/index.ts';
import { NoSnapshotError, SnapshotPins, type SnapshotPinsOptions } from '../../src/node/snapshots.ts';
import { placementFingerprint } from '../../src/node/placement-state.ts';
import { Flag, NoSnapshotReason, Op, extentKey, type RequestHeader } from '../../src/wire/index.ts';

const PAGE = 4096;
const VOL = 5;
const V = 3 * 2 ** 32;
const NODE = { id: 1, devices: [{ path: 'dev0.img', sizeBytes: 8 << 20, partitions: 2 }] };
const L0 = partitionLeafId(1, 0, 0);
const L1 = partitionLeafId(1, 0, 1);
/** Enough of a map for the placement fingerprint. */
const MAP = { epoch: 4, topology: { leaves: [] } } as unknown as ClusterMap;

const page = (tag: number): Buffer => Buffer.alloc(PAGE, tag);
const req = (over: Partial<RequestHeader>): RequestHeader => ({
  op: Op.Read, flags: Flag.AsOf, id: 1, epoch: 4, volume: VOL, extent: 0, partition: L0, firstPage: 0, pages: 1, lease: 0, version: V, members: [], ...over,
});

async function reason(t: { fail: (m: string) => void }, p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (e) {
    if (e instanceof NoSnapshotError) return e.reason;
    throw e;
  }
  t.fail('the read succeeded');
  return -1;
}

function registry(storage: NodeStorage, path: string, over: Partial<SnapshotPinsOptions> = {}): SnapshotPins {
  return new SnapshotPins({
    storage, nodeId: 1, path, log: pino({ level: 'silent' }), map: () => MAP,
    current: (_v, e) => e !== 3, peering: () => false, pulling: () => [9], caughtUp: () => placementFingerprint(MAP), ...over,
  });
}

test('pin records what the node vouches for; snapshot reads serve it and say why not', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-snapreg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'snapshots.json');
  let storage = await NodeStorage.open(NODE, dir);
  const a0 = storage.get(L0)!;
  const a1 = storage.get(L1)!;
  // Extents 0, 1 on partition 0 (current), 3 on partition 1 (not current); written by generation 2.
  await a0.write(extentKey(VOL, 0), 0, Buffer.concat([page(1), page(2)]), 2 * 2 ** 32 + 1);
  await a0.write(extentKey(VOL, 1), 5, page(3), 2 * 2 ** 32 + 2);
  await a0.trim(extentKey(VOL, 1), 7, 1, 2 * 2 ** 32 + 5); // trimmed before the snapshot
  await a1.write(extentKey(VOL, 3), 0, page(4), 2 * 2 ** 32 + 3);
  await a1.write(extentKey(VOL + 1, 0), 0, page(5), 2 * 2 ** 32 + 4); // another volume
  let reg = registry(storage, file);
  t.deepEqual(await reg.list(), [], 'a missing file is an empty registry');

  t.deepEqual(await reg.pin(VOL, V), { held: 2, incomplete: 2, peering: false });
  t.deepEqual(await reg.pin(VOL, V), { held: 2, incomplete: 2, peering: false }, 'pinning again is a no-op');
  t.is(a0.listPins().length, 1);
  t.is(a1.listPins().length, 1);
  const rec = (JSON.parse(readFileSync(file, 'utf8')) as { snapshots: Array<Record<string, unknown>> }).snapshots;
  t.is(rec.length, 1);
  t.deepEqual(rec[0].held, { [L0]: [0, 1], [L1]: [] });
  t.deepEqual(rec[0].incomplete, [3, 9], 'the not-current copy and the extent on the work list');
  t.true(rec[0].settled);

  // The next writer overwrites and trims after the pin.
  await a0.write(extentKey(VOL, 0), 0, page(7), 4 * 2 ** 32 + 1);
  await a0.trim(extentKey(VOL, 0), 1, 1, 4 * 2 ** 32 + 2);
  t.true((await reg.read(req({ pages: 2 }))).equals(Buffer.concat([page(1), page(2)])), 'the pinned view of extent 0 (a trim after the pin does not count)');
  t.true((await reg.read(req({ extent: 1, firstPage: 5 }))).equals(page(3)));
  t.is(await reason(t, reg.read(req({ version: V + 1 }))), NoSnapshotReason.NotPinned, 'another version');
  t.is(await reason(t, reg.read(req({ partition: 999 }))), NoSnapshotReason.NotPinned, 'a partition not pinned');
  t.is(await reason(t, reg.read(req({ extent: 3, partition: L1 }))), NoSnapshotReason.Incomplete, 'a copy not current at pin time');
  t.is(await reason(t, reg.read(req({ extent: 9, partition: L1, members: [L1] }))), NoSnapshotReason.Incomplete, 'an extent being pulled');
  t.is(await reason(t, reg.read(req({ extent: 2, members: [L0, 77] }))), NoSnapshotReason.Empty, 'nothing there, vouched for as a placed member');
  t.is(await reason(t, reg.read(req({ extent: 2, members: [77] }))), NoSnapshotReason.Absent, 'not vouched when the reader does not place it here');

  // Any partition: found on partition 0.
  t.true((await reg.read(req({ flags: Flag.AsOf | Flag.AnyPartition, partition: 0, extent: 1, firstPage: 5 }))).equals(page(3)));
  t.is(await reason(t, reg.read(req({ flags: Flag.AsOf | Flag.AnyPartition, partition: 0, extent: 2 }))), NoSnapshotReason.Absent);
  t.is(await reason(t, reg.read(req({ flags: Flag.AsOf | Flag.AnyPartition, partition: 0, extent: 3 }))), NoSnapshotReason.Incomplete);

  // Restart: the record and the pins survive; a pin that lost its record is released.
  await reg.close();
  await storage.close();
  storage = await NodeStorage.open(NODE, dir);
  const leaked = await storage.get(L1)!.pin(V + 5, { firstKey: extentKey(VOL, 0), lastKey: extentKey(VOL, 0xffffffff) });
  const foreign = await storage.get(L1)!.pin(V + 5, { firstKey: 0, lastKey: 10 });
  reg = registry(storage, file);
  t.is((await reg.list()).length, 1);
  t.deepEqual(storage.get(L1)!.listPins().map((p) => p.id).sort(), [1, foreign].sort(), 'the pin without a record is released, a pin of another shape kept');
  t.false(storage.get(L1)!.listPins().some((p) => p.id === leaked));
  t.true((await reg.read(req({ pages: 2 }))).equals(Buffer.concat([page(1), page(2)])), 'served after the restart');

  // Unpin: idempotent; the allocator pins go.
  t.true(await reg.unpin(VOL, V));
  t.false(await reg.unpin(VOL, V));
  t.deepEqual(storage.get(L0)!.listPins(), []);
  t.deepEqual(storage.get(L1)!.listPins().map((p) => p.id), [foreign]);
  t.is(await reason(t, reg.read(req({}))), NoSnapshotReason.Released, 'released here: not to be read as "never pinned"');
  t.is(await reason(t, reg.read(req({ version: V + 1 }))), NoSnapshotReason.NotPinned, 'a version never pinned here');
  t.deepEqual((JSON.parse(readFileSync(file, 'utf8')) as { snapshots: unknown[] }).snapshots, []);
  await reg.close();
  await storage.close();
});

test('a node that is peering when it pins vouches for nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-snapreg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const storage = await NodeStorage.open(NODE, dir);
  await storage.get(L0)!.write(extentKey(VOL, 0), 0, page(1), 2 * 2 ** 32 + 1);
  const reg = registry(storage, join(dir, 'snapshots.json'), { peering: () => true });
  t.deepEqual(await reg.pin(VOL, V), { held: 0, incomplete: 1, peering: true });
  t.is(await reason(t, reg.read(req({}))), NoSnapshotReason.Incomplete, 'a copy it holds');
  t.is(await reason(t, reg.read(req({ extent: 2, members: [L0] }))), NoSnapshotReason.Incomplete, 'an extent it does not hold');
  t.true(await reg.unpin(VOL, V));
  await reg.close();
  await storage.close();
});
