/**
 * A writer change (DESIGN "peering") by a writer whose map lags the nodes': here a node
 * joined, and the new writer's map does not have it yet.
 *
 * - Every reply carries the node's epoch: the writer refreshes its map and announces its
 *   generation to the node its map lacked, so that node fences the old writer too.
 * - The writer names each suspect extent's members from its own map; from an older epoch
 *   that can be the wrong set, so a node refuses Reconcile from an older epoch (StaleEpoch)
 *   and the writer refreshes before asking again. While its map cannot catch up, the extent
 *   stays unreconciled: the volume retries it in the background, and its flushes carry no
 *   settle watermark meanwhile, so the nodes keep listing the extent as a suspect (a next
 *   writer would find it, should this one die). Once the map catches up, the retry makes
 *   every member of the current epoch agree, and the next flush settles the extent.
 */
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { LocalCluster } from '../../src/cluster/index.ts';
import { ClusterView, Volume, grantLease, type ViewSource } from '../../src/initiator/index.ts';
import { decodeVersions } from '../../src/recovery/index.ts';
import { ConnectionPool, Flag, Op, Status, WireClient, statusName, writeVersion, type Reply, type RequestHeader } from '../../src/wire/index.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';
import { eventually } from '../helpers/cluster.ts';

const MiB = 1024 * 1024;
const LAYOUT = { nodes: 3, devicesPerNode: 1, deviceBytes: 64 * MiB, partitionsPerDevice: 2, replicas: 3, volumeBytes: 8 * MiB };

/** A writer's map at an older epoch: refresh() catches up to the live one unless `stuck` (a follower cut off from gossip). */
class LaggingViews implements ViewSource {
  private caughtUp = false;
  refreshes = 0;

  constructor(private readonly old: ClusterView, private readonly live: () => ClusterView, public stuck: boolean) {}

  get current(): ClusterView {
    return this.caughtUp ? this.live() : this.old;
  }

  async refresh(): Promise<ClusterView> {
    this.refreshes++;
    if (!this.stuck) this.caughtUp = true;
    return this.current;
  }
}

/** One request to node `node` over a connection of its own. */
async function ask(cluster: LocalCluster, node: number, h: Omit<RequestHeader, 'id'>, payload?: Buffer): Promise<Reply> {
  const a = cluster.view.address(node)!;
  const c = new WireClient({ host: a.host, port: a.port, token: cluster.config.token, timeoutMs: 30000 });
  await c.connect();
  try {
    const r = await c.request(h, payload);
    return { h: r.h, payload: Buffer.from(r.payload) };
  } finally {
    c.close();
  }
}

/** A running cluster whose volume a first writer filled and flushed, and a 4th node that joined since. */
async function grown(t: ExecutionContext) {
  const { dir, cleanup } = tempDataDir();
  const cluster = await LocalCluster.start({ dataDir: dir, layout: LAYOUT, startTimeoutMs: 60000 });
  const rec = cluster.config.volumes.find((v) => v.name === 'vol0')!;
  let gen1 = 0;
  let old = cluster.view;
  let added = -1;
  try {
    const first = await cluster.attach('vol0');
    await first.write(0, randomBytes(rec.sizeBytes));
    await first.flush();
    gen1 = first.leaseGeneration;
    first.close();
    old = cluster.view;
    added = await cluster.addNode();
    t.true(await eventually(() => cluster.view.epoch > old.epoch && cluster.view.isUp(added), 60000), 'the initiator sees the new node up');
  } catch (e) {
    await cluster.stop(); // a failed setup leaves no node processes behind
    cleanup();
    throw e;
  }
  const now = cluster.view;
  const connections = new ConnectionPool({ token: cluster.config.token, address: (id) => cluster.view.address(id) });
  const stop = async (): Promise<void> => {
    connections.close();
    await cluster.stop();
    cleanup();
  };
  return { cluster, rec, gen1, old, now, added, connections, stop };
}

test('a writer whose map lacks a node that joined announces its generation there too', async (t) => {
  t.timeout(240000);
  const g = await grown(t);
  let writer: Volume | null = null;
  try {
    const { cluster, rec, now, added } = g;
    const views = new LaggingViews(g.old, () => cluster.view, false);
    writer = new Volume({ views, connections: g.connections, record: rec, lease: 0, ioTimeoutMs: 20000 });
    await writer.adoptLease(await grantLease(now, cluster.config.token, rec.id));
    t.true(views.refreshes > 0, 'the writer refreshed its map');
    t.true(views.current.epoch >= now.epoch, `the writer's map caught up (epoch ${views.current.epoch})`);
    // The old generation is fenced on the node the writer's map did not have.
    const extents = rec.sizeBytes / rec.extentBytes;
    let x = 0;
    while (x < extents && !now.members(rec.id, x, rec.pool).some((l) => now.nodeOf(l) === added)) x++;
    const placed = now.members(rec.id, x, rec.pool);
    const leaf = placed.find((l) => now.nodeOf(l) === added)!;
    t.truthy(leaf, 'an extent has a member on the new node');
    const w = await ask(cluster, added, {
      op: Op.Write, flags: 0, epoch: now.epoch, volume: rec.id, extent: x, partition: leaf, firstPage: 0, pages: 1, lease: g.gen1, version: writeVersion(g.gen1, 2 ** 31), members: placed,
    }, Buffer.alloc(4096, 0x11));
    t.is(statusName(w.h.status), 'Fenced', 'the new node refuses the old generation');
    t.is(w.h.aux, writer.leaseGeneration);
  } finally {
    writer?.close();
    await g.stop();
  }
});

test('a reconcile from an older map is refused; the writer retries it in the background, holding settlement until the member placed since agrees', async (t) => {
  t.timeout(240000);
  const g = await grown(t);
  let writer: Volume | null = null;
  try {
    const { cluster, rec, gen1, old, now, added } = g;
    const pages = rec.extentBytes / 4096;
    const extents = rec.sizeBytes / rec.extentBytes;
    let x = -1;
    for (let e = 0; e < extents && x < 0; e++) if (now.members(rec.id, e, rec.pool).some((l) => now.nodeOf(l) === added)) x = e;
    t.true(x >= 0, 'an extent has a member on the new node');
    const placedNow = now.members(rec.id, x, rec.pool);
    const placedOld = old.members(rec.id, x, rec.pool);
    const kept = placedNow.find((l) => placedOld.includes(l))!;
    t.truthy(kept, 'the extent keeps a member of the old map');

    // The crashed writer's last write reached one member only (one of both maps).
    const torn = { page: 3, version: writeVersion(gen1, 2 ** 31), data: Buffer.alloc(4096, 0x6c) };
    const w = await ask(cluster, now.nodeOf(kept), {
      op: Op.Write, flags: 0, epoch: now.epoch, volume: rec.id, extent: x, partition: kept, firstPage: torn.page, pages: 1, lease: gen1, version: torn.version, members: placedNow,
    }, torn.data);
    t.is(statusName(w.h.status), 'Ok', 'the torn write reached one member');

    // The node refuses a Reconcile from the older epoch, naming its own.
    const refused = await ask(cluster, now.nodeOf(kept), {
      op: Op.Reconcile, flags: 0, epoch: old.epoch, volume: rec.id, extent: x, partition: kept, firstPage: 0, pages, lease: gen1, version: 0, members: placedOld,
    });
    t.is(statusName(refused.h.status), 'StaleEpoch');
    t.is(refused.h.aux, now.epoch);

    // A new writer whose map is stuck at the old epoch takes the lease.
    const views = new LaggingViews(old, () => cluster.view, true);
    writer = new Volume({ views, connections: g.connections, record: rec, lease: 0, ioTimeoutMs: 20000 });
    await writer.adoptLease(await grantLease(now, cluster.config.token, rec.id));
    t.true(writer.unreconciledExtents >= 1, `extent ${x} could not be reconciled with the old map (${writer.unreconciledExtents} pending)`);
    t.true(views.refreshes > 0, 'the writer tried to refresh its map');

    // Its flush settles nothing meanwhile: the member still lists the extent as a suspect.
    await writer.flush();
    const suspects = async (): Promise<number[]> => {
      const r = await ask(cluster, now.nodeOf(kept), { op: Op.Suspects, flags: 0, epoch: now.epoch, volume: rec.id, extent: 0, partition: 0, firstPage: 0, pages: 0, lease: writer!.leaseGeneration, version: 0, members: [] });
      t.is(r.h.status, Status.Ok);
      const out: number[] = [];
      for (let o = 0; o + 4 <= r.payload.length; o += 4) out.push(r.payload.readUInt32LE(o));
      return out;
    };
    t.true((await suspects()).includes(x), `extent ${x} is still a suspect after the writer's flush`);

    // The map can catch up: the background retry reconciles the extent on its current members.
    views.stuck = false;
    t.true(await eventually(() => writer!.unreconciledExtents === 0, 60000), 'the retry reconciled every pending extent');
    for (const leaf of placedNow) {
      const h = { flags: Flag.Recovery, epoch: now.epoch, volume: rec.id, extent: x, partition: leaf, firstPage: 0, pages, lease: 0, version: 0, members: [] };
      const v = await ask(cluster, now.nodeOf(leaf), { ...h, op: Op.Versions });
      t.is(v.h.status, Status.Ok);
      t.is(decodeVersions(v.payload).find((p) => p.page === torn.page)?.version, torn.version, `the torn page's version on partition ${leaf} (node ${now.nodeOf(leaf)})`);
      const d = await ask(cluster, now.nodeOf(leaf), { ...h, op: Op.Read, firstPage: torn.page, pages: 1 });
      t.true(d.payload.equals(torn.data), `the torn page's bytes on partition ${leaf}`);
    }

    // Now a flush settles it.
    await writer.flush();
    t.false((await suspects()).includes(x), `extent ${x} is settled by the next flush`);
  } finally {
    writer?.close();
    await g.stop();
  }
});
