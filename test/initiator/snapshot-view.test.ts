/**
 * SnapshotView's choice of source for each extent (src/initiator/snapshot-view.ts), against
 * scripted node answers (no cluster): a placed member that serves it, failover, the fallback
 * to any up node with Flag.AnyPartition (a copy placement moved away), zeros when a placed
 * member vouches the extent empty or no node held it, EIO when a node held it but was not
 * current, when it is pinned nowhere or a node cannot be asked, and a map refresh on
 * StaleEpoch. Also EROFS for every change.
 */
import test from 'ava';
import { DEFAULT_LAYOUT, createClusterConfig } from '../../src/cluster/create.ts';
import { ClusterView, SnapshotView, fixedViews, type ViewSource } from '../../src/initiator/index.ts';
import type { ClusterConfig } from '../../src/config/index.ts';
import { BlockDeviceError } from '../../src/volume/index.ts';
import { ConnectionError, Flag, NoSnapshotReason, Status, type ConnectionPool, type Reply, type RequestHeader } from '../../src/wire/index.ts';

const PAGE = 4096;
const V = 7 * 2 ** 32;
type Answer = { status: number; aux?: number; payload?: Buffer } | 'unreachable';
type Script = (node: number, h: Omit<RequestHeader, 'id'>) => Answer;

let config: ClusterConfig;
let view: ClusterView;
test.before(async () => {
  config = await createClusterConfig({ ...DEFAULT_LAYOUT, nodes: 4, basePort: 41000, volumeBytes: 16 << 20 });
  // The volume record (cluster.json lists none; the catalog would hold it).
  config.volumes.push({ id: 1, name: 'vol0', sizeBytes: 16 << 20, pool: 0, extentBytes: DEFAULT_LAYOUT.extentBytes, thin: true, lease: 0 });
  view = ClusterView.fromConfig(config);
});

/** A ConnectionPool stand-in answering from `script`; records every request. */
function fakePool(script: Script, log: Array<{ node: number; h: Omit<RequestHeader, 'id'> }>): ConnectionPool {
  return {
    get: async (node: number) => ({
      request: async (h: Omit<RequestHeader, 'id'>): Promise<Reply> => {
        log.push({ node, h });
        const a = script(node, h);
        if (a === 'unreachable') throw new ConnectionError('ECONNREFUSED', `node ${node} refused`);
        return { h: { op: h.op, status: a.status, id: 1, epoch: h.epoch, aux: a.aux ?? 0 }, payload: a.payload ?? Buffer.alloc(0) };
      },
    }),
  } as unknown as ConnectionPool;
}

function snapshot(script: Script, views: ViewSource = fixedViews(view), ioTimeoutMs = 300) {
  const log: Array<{ node: number; h: Omit<RequestHeader, 'id'> }> = [];
  const snap = new SnapshotView({ views, connections: fakePool(script, log), record: config.volumes[0], version: V, name: 'vol0@s', ioTimeoutMs });
  return { snap, log };
}

const noSnap = (aux: number): Answer => ({ status: Status.NoSnapshot, aux });
const data = (tag: number): Buffer => Buffer.alloc(PAGE, tag);
/** Extent 0's placed partitions and the one node that holds none of them. */
const placement = () => {
  const placed = view.members(1, 0, 0);
  const other = config.nodes.map((n) => n.id).find((id) => !placed.some((m) => view.nodeOf(m) === id))!;
  return { placed, other };
};

test('a placed member serves; a member without it is passed over', async (t) => {
  const { placed } = placement();
  const { snap, log } = snapshot((_n, h) => (h.partition === placed[1] ? { status: Status.Ok, payload: data(5) } : noSnap(NoSnapshotReason.Absent)));
  t.true((await snap.read(0, PAGE)).equals(data(5)));
  t.is(snap.counters.failovers, 1);
  t.deepEqual(log.map((r) => r.h.partition), placed.slice(0, 2));
  t.true(log.every((r) => r.h.flags === Flag.AsOf && r.h.version === V && r.h.lease === 0 && r.h.members.join() === placed.join()));
});

test('a copy placement moved away is found on any up node', async (t) => {
  const { placed, other } = placement();
  const { snap, log } = snapshot((n, h) => {
    if (h.flags & Flag.AnyPartition) return n === other ? { status: Status.Ok, payload: data(9) } : noSnap(NoSnapshotReason.Absent);
    return noSnap(n === view.nodeOf(placed[0]) ? NoSnapshotReason.NotPinned : NoSnapshotReason.Absent);
  });
  t.true((await snap.read(0, PAGE)).equals(data(9)));
  t.is(snap.counters.fallbackReads, 1);
  const any = log.filter((r) => r.h.flags & Flag.AnyPartition);
  t.deepEqual(any.map((r) => r.node).sort(), config.nodes.map((n) => n.id), 'every up node asked once');
});

test('zeros when a placed member vouches the extent empty (remembered for the epoch), or when no node held it', async (t) => {
  const { placed } = placement();
  let r = snapshot((_n, h) => noSnap(h.partition === placed[2] ? NoSnapshotReason.Empty : NoSnapshotReason.Absent));
  t.true((await r.snap.read(0, 2 * PAGE)).equals(Buffer.alloc(2 * PAGE)));
  t.is(r.log.length, 3, 'the placed members only');
  await r.snap.read(PAGE, PAGE);
  t.is(r.log.length, 3, 'the answer is remembered');
  r = snapshot(() => noSnap(NoSnapshotReason.Absent));
  t.true((await r.snap.read(0, PAGE)).equals(Buffer.alloc(PAGE)));
  t.is(r.snap.counters.zeroExtents, 1);
});

test('EIO when a node held it but was not current, when it is pinned nowhere, when it was released, or when a node cannot be asked', async (t) => {
  const { placed, other } = placement();
  let r = snapshot((_n, h) => noSnap(h.partition === placed[1] ? NoSnapshotReason.Incomplete : NoSnapshotReason.Absent), fixedViews(view), 60000);
  let e = await t.throwsAsync(r.snap.read(0, PAGE));
  t.is((e as BlockDeviceError).code, 'EIO');
  t.regex(e!.message, /extent 0 .*no complete copy.*not current/);
  t.false(r.log.some((x) => x.h.flags & Flag.AnyPartition), 'no fallback past an incomplete member');
  r = snapshot(() => noSnap(NoSnapshotReason.NotPinned), fixedViews(view), 60000);
  e = await t.throwsAsync(r.snap.read(0, PAGE));
  t.regex(e!.message, /not pinned on any node/);
  // A snapshot being deleted: the placed members already released it, the other node still
  // pins it but never held the extent. That is not "nobody held it": EIO, not zeros.
  r = snapshot((n) => noSnap(n === other ? NoSnapshotReason.Absent : NoSnapshotReason.Released), fixedViews(view), 60000);
  e = await t.throwsAsync(r.snap.read(0, PAGE));
  t.is((e as BlockDeviceError).code, 'EIO');
  t.regex(e!.message, /released/);
  r = snapshot((n) => (n === other ? 'unreachable' : noSnap(NoSnapshotReason.Absent)));
  const t0 = Date.now();
  e = await t.throwsAsync(r.snap.read(0, PAGE));
  t.is((e as BlockDeviceError).code, 'EIO');
  t.regex(e!.message, new RegExp(`node ${other}: node ${other} refused`));
  t.true(Date.now() - t0 >= 300, 'retried until ioTimeoutMs');
});

test('StaleEpoch refreshes the view; every change is refused with EROFS', async (t) => {
  const { placed } = placement();
  const newer = new ClusterView({ ...view.map, epoch: view.epoch + 1 }, config.pools);
  let current = view;
  const views: ViewSource = { get current() { return current; }, refresh: async () => (current = newer) };
  const { snap } = snapshot((_n, h) => {
    if (h.epoch < newer.epoch) return { status: Status.StaleEpoch, aux: newer.epoch };
    return h.partition === placed[0] ? { status: Status.Ok, payload: data(3) } : noSnap(NoSnapshotReason.Absent);
  }, views);
  t.true((await snap.read(0, PAGE)).equals(data(3)));
  t.is(current, newer);
  for (const f of [() => snap.write(0, data(1)), () => snap.trim(0, PAGE), () => snap.writeZeroes(0, PAGE)]) {
    t.is(((await t.throwsAsync(f())) as BlockDeviceError).code, 'EROFS');
  }
  await snap.flush();
  t.true(snap.readOnly);
  const e = await t.throwsAsync(snap.read(16 << 20, 1));
  t.is((e as BlockDeviceError).code, 'EINVAL');
});
