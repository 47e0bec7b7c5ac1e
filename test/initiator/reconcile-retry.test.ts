/**
 * A writer change whose reconcile cannot finish at once (DESIGN "peering").
 *
 * The new writer names each suspect extent's members from its own map. When that map is
 * older than the nodes' (here: a node joined, and the writer's follower lags), the members
 * named can be the wrong set, so a node refuses Reconcile from an older epoch (StaleEpoch)
 * and the writer refreshes its map before asking again. While its map cannot catch up, the
 * extent stays unreconciled: the volume retries it in the background, and its flushes carry
 * no settle watermark meanwhile, so the nodes keep listing the extent as a suspect (a next
 * writer would find it, should this one die). Once the map catches up, the retry makes every
 * member of the current epoch agree, and the next flush settles the extent.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { LocalCluster } from '../../src/cluster/index.ts';
import { ClusterView, Volume, grantLease, type ViewSource } from '../../src/initiator/index.ts';
import { decodeVersions } from '../../src/recovery/index.ts';
import { ConnectionPool, Flag, Op, Status, WireClient, statusName, writeVersion, type Reply, type RequestHeader } from '../../src/wire/index.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';
import { eventually } from '../helpers/cluster.ts';

const MiB = 1024 * 1024;
const LAYOUT = { nodes: 3, devicesPerNode: 1, deviceBytes: 64 * MiB, partitionsPerDevice: 2, replicas: 3, volumeBytes: 8 * MiB };

/** A writer's map that can be held back: `current` and refresh() stay at `held` until release(). */
class LaggingViews implements ViewSource {
  private released = false;
  refreshes = 0;

  constructor(private readonly held: ClusterView, private readonly live: () => ClusterView) {}

  get current(): ClusterView {
    return this.released ? this.live() : this.held;
  }

  async refresh(): Promise<ClusterView> {
    this.refreshes++;
    return this.current;
  }

  release(): void {
    this.released = true;
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

test('a reconcile from an older map is refused; the writer retries it in the background, holding settlement until the member placed since agrees', async (t) => {
  t.timeout(240000);
  const { dir, cleanup } = tempDataDir();
  const cluster = await LocalCluster.start({ dataDir: dir, layout: LAYOUT, startTimeoutMs: 60000 });
  const connections = new ConnectionPool({ token: cluster.config.token, address: (id) => cluster.view.address(id) });
  let writer: Volume | null = null;
  try {
    const rec = cluster.config.volumes.find((v) => v.name === 'vol0')!;
    const pages = rec.extentBytes / 4096;
    const first = await cluster.attach('vol0');
    await first.write(0, randomBytes(rec.sizeBytes));
    await first.flush();
    const gen1 = first.leaseGeneration;
    first.close();

    // A fourth node joins: a new epoch, and some extents get a member on it.
    const old = cluster.view;
    const added = await cluster.addNode();
    t.true(await eventually(() => cluster.view.epoch > old.epoch && cluster.view.isUp(added), 60000), 'the initiator sees the new node up');
    const now = cluster.view;
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
    const views = new LaggingViews(old, () => cluster.view);
    writer = new Volume({ views, connections, record: rec, lease: 0, ioTimeoutMs: 20000 });
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

    // The map catches up: the background retry reconciles the extent on its current members.
    views.release();
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
    connections.close();
    await cluster.stop();
    cleanup();
  }
});
