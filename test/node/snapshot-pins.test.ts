/**
 * Snapshot pins end to end (issue 11, data plane), on a real 3-node cluster: pattern A is
 * written and flushed; the snapshot is taken the way the orchestrator takes it — a new
 * lease generation g' is granted and adopted by a second attachment (which fences the
 * first), then version g' × 2^32 is pinned on every node (pinSnapshot); pattern B is written
 * through the new attachment over A and beyond. Then
 *
 * - a SnapshotView reads exactly A (zeros where nothing was written before the snapshot,
 *   also where A was trimmed before it), the live volume reads B;
 * - a snapshot view refuses writes, trims and write-zeroes with EROFS;
 * - after a node is killed (-9) and started again, the snapshot still reads A, and that node
 *   alone serves its copies as of the version over the wire (and vouches for an empty extent);
 * - after unpinSnapshot, the nodes answer NoSnapshot (released) and the view's read fails.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiClient } from '../../src/api/index.ts';
import { LocalCluster } from '../../src/cluster/index.ts';
import { placementFingerprint } from '../../src/node/placement-state.ts';
import { SnapshotView, pinSnapshot, unpinSnapshot } from '../../src/initiator/index.ts';
import { BlockDeviceError } from '../../src/volume/index.ts';
import {
  ConnectionPool, Flag, NoSnapshotReason, Op, Status, VERSION_SEQ_SPAN, WireClient, type Reply, type RequestHeader,
} from '../../src/wire/index.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';
import { waitSettled } from '../helpers/device.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

test('a pinned snapshot reads as of its version, through a node restart, until it is released', async (t) => {
  t.timeout(180000);
  const { dir, cleanup } = tempDataDir();
  const cluster = await LocalCluster.start({ dataDir: dir, layout: { deviceBytes: 128 * MiB, volumeBytes: 16 * MiB } });
  const pool = new ConnectionPool({ token: cluster.config.token, address: (id) => cluster.view.address(id) });
  const clients: WireClient[] = [];
  try {
    const record = cluster.config.volumes.find((v) => v.name === 'vol0')!;
    t.is(record.extentBytes, 1 * MiB);
    const views = cluster.follower!;
    // A node vouches that an extent was empty only once it has pulled every extent of its
    // placement; a node still in its first peering round pins, but vouches for nothing.
    t.true(await cluster.waitPeered(cluster.nodeIds(), 60000), 'every node finished its first peering round');
    const first = await cluster.attach('vol0');

    // Pattern A: parts of extents 0-5 (one whole extent, one write across an extent boundary),
    // and a range of extent 6 written and then trimmed before the snapshot.
    const A = Buffer.alloc(record.sizeBytes);
    const put = (img: Buffer, offset: number, data: Buffer): Buffer => {
      data.copy(img, offset);
      return data;
    };
    for (const [offset, length] of [[0, 64 * KiB], [1 * MiB + 128 * KiB, 256 * KiB], [2 * MiB, 1 * MiB], [3 * MiB + 4 * KiB, 4 * KiB], [5 * MiB - 8 * KiB, 16 * KiB], [6 * MiB, 64 * KiB]]) {
      await first.write(offset, put(A, offset, randomBytes(length)));
    }
    await first.trim(6 * MiB + 16 * KiB, 32 * KiB);
    A.fill(0, 6 * MiB + 16 * KiB, 6 * MiB + 48 * KiB);
    await first.flush();

    // The snapshot: fence the writer with a new generation, then pin everything older.
    const second = await cluster.attach('vol0');
    const version = second.leaseGeneration * VERSION_SEQ_SPAN;
    t.true(second.leaseGeneration > first.leaseGeneration);
    const placementAtPin = placementFingerprint(cluster.view.map);
    const pinned = await pinSnapshot(views, pool, record.id, version);
    t.deepEqual(pinned, { pinned: cluster.nodeIds(), failed: [], incomplete: [] }, 'every node pinned, every copy current');
    t.deepEqual(await pinSnapshot(views, pool, record.id, version), pinned, 'pinning again is a no-op');
    for (const id of cluster.nodeIds()) {
      const stored = JSON.parse(readFileSync(join(dir, `node${id}`, 'snapshots.json'), 'utf8')) as { snapshots: Array<{ volume: number; version: number; settled: boolean }> };
      t.deepEqual(stored.snapshots.map((s) => [s.volume, s.version, s.settled]), [[record.id, version, true]], `node ${id} stored one settled record`);
    }
    const fenced = await t.throwsAsync(first.write(0, Buffer.alloc(4096)));
    t.is((fenced as BlockDeviceError).code, 'EFENCED', 'the first attachment is fenced');

    // Pattern B, through the new attachment: over A, a trim of part of A, and new extents.
    const B = Buffer.from(A);
    for (const [offset, length] of [[0, 32 * KiB], [2 * MiB + 512 * KiB, 1 * MiB], [5 * MiB - 4 * KiB, 4 * KiB], [8 * MiB, 128 * KiB], [15 * MiB, 1 * MiB]]) {
      await second.write(offset, put(B, offset, randomBytes(length)));
    }
    await second.trim(1 * MiB + 128 * KiB, 64 * KiB);
    B.fill(0, 1 * MiB + 128 * KiB, 1 * MiB + 192 * KiB);
    await second.flush();

    const snap = new SnapshotView({ views, connections: pool, record, version, name: 'vol0@snap' });
    t.true(snap.readOnly);
    t.true((await snap.read(0, record.sizeBytes)).equals(A), 'the snapshot reads pattern A (zeros elsewhere)');
    t.true((await second.read(0, record.sizeBytes)).equals(B), 'the volume reads pattern B');
    t.true((await snap.read(1 * MiB + 128 * KiB + 100, 5000)).equals(A.subarray(1 * MiB + 128 * KiB + 100, 1 * MiB + 128 * KiB + 5100)), 'an unaligned read');
    t.is(snap.counters.fallbackReads, 0, 'every extent came from a placed member or was vouched empty by one');
    for (const refused of [() => snap.write(0, Buffer.alloc(4096)), () => snap.trim(0, 4096), () => snap.writeZeroes(0, 4096)]) {
      const e = await t.throwsAsync(refused());
      t.is((e as BlockDeviceError).code, 'EROFS');
    }
    await snap.flush();

    // A node crashes and comes back: its pins and its record survive.
    const keeper = cluster.config.authority?.node ?? 0;
    const victim = cluster.nodeIds().find((id) => id !== keeper)!;
    await cluster.stopNode(victim, 'SIGKILL');
    await cluster.startNode(victim);
    t.true(await cluster.waitPeered([victim], 60000), `node ${victim} peered after its restart`);
    t.true(await waitSettled(cluster, 60000), 'every node up in one map');
    t.true((await snap.read(0, record.sizeBytes)).equals(A), 'the snapshot still reads pattern A');

    // That node alone, over the wire: every copy it holds of A's extents, as of the version.
    const c = new WireClient({ ...cluster.view.address(victim)!, token: cluster.config.token });
    clients.push(c);
    await c.connect();
    const readAsOf = async (over: Partial<RequestHeader>): Promise<Reply> => {
      let epoch = cluster.view.epoch;
      for (let i = 0; ; i++) {
        const r = await c.request({ op: Op.Read, flags: Flag.AsOf, epoch, volume: record.id, extent: 0, partition: 0, firstPage: 0, pages: 256, lease: 0, version, members: [], ...over });
        if (r.h.status !== Status.StaleEpoch || i >= 5) return r;
        epoch = r.h.aux;
      }
    };
    const view = cluster.view;
    let served = 0;
    for (let extent = 0; extent <= 6; extent++) {
      const members = view.members(record.id, extent, record.pool);
      const leaf = members.find((m) => view.nodeOf(m) === victim);
      if (leaf === undefined) continue;
      const r = await readAsOf({ extent, partition: leaf, members });
      t.is(r.h.status, Status.Ok, `node ${victim} serves extent ${extent} as of the snapshot`);
      t.true(r.payload.equals(A.subarray(extent * MiB, (extent + 1) * MiB)), `extent ${extent} from node ${victim} is pattern A`);
      served++;
    }
    t.true(served >= 3, `node ${victim} holds copies of ${served} of A's extents`);
    const emptyExtent = 12;
    const members12 = view.members(record.id, emptyExtent, record.pool);
    const leaf12 = members12.find((m) => view.nodeOf(m) === victim)!;
    let r = await readAsOf({ extent: emptyExtent, partition: leaf12, members: members12 });
    t.is(r.h.status, Status.NoSnapshot);
    if (r.h.aux !== NoSnapshotReason.Empty) {
      // Say what moved: a placement change since the pin makes Absent the right answer.
      const api = new ApiClient(`http://127.0.0.1:${cluster.config.nodes.find((n) => n.id === keeper)!.apiPort}`, cluster.config.token);
      const history = await api.call<{ epochs: Array<{ epoch: number; change: string }> }>('GET', '/v1/map/history').catch((e: Error) => ({ epochs: [{ epoch: -1, change: e.message }] }));
      t.log(`placement fingerprint at the pin ${placementAtPin}, now ${placementFingerprint(cluster.view.map)} (epoch ${cluster.view.epoch}); map history: ${history.epochs.map((h) => `${h.epoch} ${h.change}`).join('; ')}`);
    }
    t.is(r.h.aux, NoSnapshotReason.Empty, 'a never-written extent is vouched empty by a placed member');
    r = await readAsOf({ extent: 8, partition: view.members(record.id, 8, record.pool).find((m) => view.nodeOf(m) === victim)!, members: view.members(record.id, 8, record.pool) });
    t.is(r.h.aux, NoSnapshotReason.Empty, 'so is an extent first written after the snapshot');

    // Released: every node answers NoSnapshot (released), and the view's reads fail.
    const released = await unpinSnapshot(views, pool, record.id, version);
    t.deepEqual(released, { released: cluster.nodeIds(), failed: [] });
    t.deepEqual(await unpinSnapshot(views, pool, record.id, version), released, 'releasing again is a no-op');
    const leaf0 = view.members(record.id, 0, record.pool).find((m) => view.nodeOf(m) === victim)!;
    r = await readAsOf({ extent: 0, partition: leaf0 });
    t.is(r.h.status, Status.NoSnapshot);
    t.is(r.h.aux, NoSnapshotReason.Released);
    const gone = new SnapshotView({ views, connections: pool, record, version, name: 'vol0@snap', ioTimeoutMs: 2000 });
    const e = await t.throwsAsync(gone.read(0, 4096));
    t.is((e as BlockDeviceError).code, 'EIO');
    t.regex(e!.message, /extent 0 .*was released/);
    t.true((await second.read(0, record.sizeBytes)).equals(B), 'the volume still reads pattern B');
    second.close();
    first.close();
  } finally {
    for (const c of clients) c.close();
    pool.close();
    await cluster.stop();
    cleanup();
  }
});
