/**
 * Issue 4, must-show 4: epoch fencing on the data path with real node processes. An
 * initiator that missed new epochs (it follows no gossip: it learns maps only on demand)
 * sends I/O tagged with its old epoch; the node refuses it with the typed StaleEpoch reply
 * naming the node's epoch; the initiator fetches the newer map from a neighbour and
 * retries, and the caller sees success, with the data intact.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { LocalCluster } from '../../src/cluster/index.ts';
import { ApiClient } from '../../src/api/index.ts';
import type { SubmitResult } from '../../src/authority/index.ts';
import { MapFollower, Volume } from '../../src/initiator/index.ts';
import { ConnectionPool, Op, Status, WireClient } from '../../src/wire/index.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';
import { NodeMaps, until } from '../helpers/cluster.ts';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };

test('I/O against a stale epoch is refused with StaleEpoch, then succeeds after the automatic refresh', async (t) => {
  const d = tempDataDir();
  const cluster = await LocalCluster.start({
    dataDir: d.dir,
    layout: { nodes: 3, devicesPerNode: 1, deviceBytes: 32 << 20, partitionsPerDevice: 2, replicas: 3, volumeBytes: 16 << 20, extentBytes: 64 << 10 },
    startTimeoutMs: 120000,
  });
  const maps = new NodeMaps(cluster);
  const followers: MapFollower[] = [];
  const pools: ConnectionPool[] = [];
  try {
    const record = cluster.config.volumes[0];
    const lease = (await cluster.attach(record.name)).leaseGeneration; // the authority grants the next generation
    const stale = async (): Promise<{ follower: MapFollower; volume: Volume }> => {
      const follower = await MapFollower.start({ config: cluster.config, log: quiet, followMaps: false });
      await follower.refresh(cluster.view.epoch);
      const connections = new ConnectionPool({ token: cluster.config.token, address: (id) => follower.current.address(id) });
      followers.push(follower);
      pools.push(connections);
      return { follower, volume: new Volume({ views: follower, connections, record, lease }) };
    };
    const w = await stale();
    const r = await stale();
    const e0 = w.follower.epoch;
    const a = randomBytes(256 << 10);
    await w.volume.write(0, a);
    t.like(w.volume.counters, { staleEpochReplies: 0, refreshes: 0 });

    // Two epochs the stale initiators do not follow (out, then in: the same placement again).
    const api = new ApiClient(`http://127.0.0.1:${cluster.config.nodes[1].apiPort}`, cluster.config.token);
    await api.call<SubmitResult>('POST', '/v1/map/changes', { type: 'out', node: 2 });
    const last = await api.call<SubmitResult>('POST', '/v1/map/changes', { type: 'in', node: 2 });
    t.true(await until(() => [0, 1, 2].every((n) => (maps.latest.get(n)?.epoch ?? 0) >= last.epoch), 5000), 'nodes did not get the new epoch');
    t.is(w.follower.epoch, e0, 'the initiator did not follow gossip');

    // The typed reply: a request tagged with the old epoch is refused, naming the node's epoch.
    const view = w.follower.current;
    const members = view.members(record.id, 0, record.pool);
    const n = view.address(view.nodeOf(members[0]))!;
    const raw = new WireClient({ host: n.host, port: n.port, token: cluster.config.token });
    await raw.connect();
    const reply = await raw.request({ op: Op.Read, flags: 0, epoch: e0, volume: record.id, extent: 0, partition: members[0], firstPage: 0, pages: 1, lease, version: 0, members: [] });
    raw.close();
    t.is(reply.h.status, Status.StaleEpoch);
    t.is(reply.h.aux, last.epoch, 'StaleEpoch names the node\'s epoch');

    // A write through the stale initiator: refused, refreshed, retried — no error for the caller.
    const b = randomBytes(256 << 10);
    await t.notThrowsAsync(w.volume.write(256 << 10, b));
    t.true(w.volume.counters.staleEpochReplies >= 1, JSON.stringify(w.volume.counters));
    t.true(w.volume.counters.refreshes >= 1);
    t.is(w.follower.epoch, last.epoch, 'the write fetched the newer map');

    // A read through another stale initiator: the same, and the data is all there.
    t.is(r.follower.epoch, e0);
    const back = await r.volume.read(0, 512 << 10);
    t.true(back.equals(Buffer.concat([a, b])), 'data read back after the refresh');
    t.true(r.volume.counters.staleEpochReplies >= 1);
    t.is(r.follower.epoch, last.epoch);
  } finally {
    for (const p of pools) p.close();
    await Promise.all(followers.map((f) => f.stop()));
    await cluster.stop();
    d.cleanup();
  }
});
