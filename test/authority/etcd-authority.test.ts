/**
 * The etcd-backed map authority (issue 14) against a real etcd: several EtcdAuthority
 * instances on one prefix (as several nodes would run them) race map changes and lease grants,
 * and the membership leadership moves when its holder closes or stops renewing its lease.
 *
 * - concurrent submissions from three authorities commit distinct, consecutive epochs, and the
 *   history has one map per epoch;
 * - lease generations from three authorities are unique and increasing, and a new authority
 *   (the authority moving) continues after the last one;
 * - exactly one leads; when it closes, another takes over within the lease TTL; a leader whose
 *   lease is gone (revoked behind its back) cannot commit a membership decision;
 * - down needs two reporters: one silent report is not enough, two are.
 */
import test from 'ava';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import {
  EtcdAuthority, LocalEtcd, etcdKeys, membershipDecisions, type AuthorityPublisher,
} from '../../src/authority/index.ts';
import { createClusterConfig, provisionControlPlane, useEtcdAuthority, DEFAULT_LAYOUT } from '../../src/cluster/index.ts';
import { initialMap, parsePublicKey, openSignedMap, type SignedMap } from '../../src/clustermap/index.ts';
import { DEFAULT_MEMBERSHIP, type ClusterConfig } from '../../src/config/index.ts';
import { eventually } from '../helpers/cluster.ts';

const silentLog = { info: () => undefined, warn: () => undefined, error: () => undefined };
const publisher: AuthorityPublisher = { publishMap: async () => 0, publishDigest: async () => 0 };

let etcd: LocalEtcd;
let root: string;

test.before(async () => {
  root = mkdtempSync(join(tmpdir(), 'cairn-etcd-auth-'));
  etcd = await LocalEtcd.start({ dir: join(root, 'etcd'), members: 1 });
});
test.after.always(async () => {
  await etcd?.stop();
  rmSync(root, { recursive: true, force: true });
});

let prefixes = 0;
/** A 3-node cluster config with an etcd authority under a fresh prefix, the key in every node dir. */
async function etcdCluster(leaderTtlMs = 2000): Promise<{ config: ClusterConfig; dataDir: string }> {
  const dataDir = join(root, `c${prefixes++}`);
  mkdirSync(dataDir, { recursive: true });
  const config = await createClusterConfig({ ...DEFAULT_LAYOUT, nodes: 3 });
  await provisionControlPlane(dataDir, config);
  useEtcdAuthority(dataDir, config, { endpoints: etcd.endpoints, prefix: `/cairn-test/${config.clusterId}`, leaderTtlMs });
  return { config, dataDir };
}

async function open(config: ClusterConfig, dataDir: string, node: number, maps?: SignedMap[], leading?: boolean[]): Promise<EtcdAuthority> {
  return EtcdAuthority.open({
    config, dataDir, selfNode: node, publisher, log: silentLog,
    onLocalMap: (s) => maps?.push(s),
    onLeader: (l) => leading?.push(l),
    membership: { ...DEFAULT_MEMBERSHIP, outAfterMs: 0 },
  });
}


test('racing submissions from three nodes commit distinct consecutive epochs; every node learns the newest', async (t) => {
  const { config, dataDir } = await etcdCluster();
  const seen: SignedMap[][] = [[], [], []];
  const auths = await Promise.all([0, 1, 2].map((id) => open(config, dataDir, id, seen[id])));
  try {
    const first = auths[0].current().epoch;
    t.is(first, initialMap(config).epoch, 'the new prefix starts at the creation map');
    // Each node flips noout/norebalance-style settings many times at once: every change applies.
    const results = await Promise.all(auths.flatMap((a, i) => Array.from({ length: 5 }, (_, j) => a.submit({ type: 'reweight', node: i, weight: 0.5 + (j + 1) / 20 } as never))));
    const epochs = results.filter((r) => r.changed).map((r) => r.epoch).sort((x, y) => x - y);
    t.is(new Set(epochs).size, epochs.length, 'no epoch was committed twice');
    t.deepEqual(epochs, Array.from({ length: epochs.length }, (_, i) => first + 1 + i), 'epochs are consecutive');
    t.true(epochs.length >= 3, `${epochs.length} changes committed`);
    const newest = epochs.at(-1)!;
    t.true(await eventually(() => auths.every((a) => a.current().epoch === newest), 5000, 25), 'every authority holds the newest epoch (watch)');
    const history = await auths[1].history();
    t.deepEqual(history.map((h) => h.epoch), Array.from({ length: newest - first + 1 }, (_, i) => first + i), 'one map per epoch in etcd');
    // What etcd holds verifies with the cluster's key, and matches what the committer returned.
    const c = new Etcd3({ hosts: etcd.endpoints });
    const wire = await c.get(etcdKeys(config.authority!.etcd!.prefix).map(newest)).buffer();
    c.close();
    t.is(openSignedMap(wire!, parsePublicKey(config.authority!.publicKey), config.clusterId).checksum, results.find((r) => r.epoch === newest)!.checksum);
  } finally {
    await Promise.all(auths.map((a) => a.close()));
  }
});

test('lease generations are unique and increasing across nodes, and continue when the authority moves', async (t) => {
  const { config, dataDir } = await etcdCluster();
  const auths = await Promise.all([0, 1, 2].map((id) => open(config, dataDir, id)));
  const gens = await Promise.all(auths.flatMap((a) => Array.from({ length: 6 }, () => a.acquireLease(7))));
  t.deepEqual([...gens].sort((x, y) => x - y), Array.from({ length: 18 }, (_, i) => i + 1), 'generations 1..18, each once');
  await Promise.all(auths.map((a) => a.close()));
  const again = await open(config, dataDir, 2);
  try {
    t.is(again.leases()[7], 18, 'a new authority knows the last grant');
    t.is(await again.acquireLease(7), 19, 'and grants the next');
  } finally {
    await again.close();
  }
});

test('one node leads; the leadership moves when it closes, and a leader whose lease is gone commits no decision', async (t) => {
  const { config, dataDir } = await etcdCluster(2000);
  const leading: boolean[][] = [[], [], []];
  const auths = await Promise.all([0, 1, 2].map((id) => open(config, dataDir, id, undefined, leading[id])));
  try {
    t.true(await eventually(() => auths.filter((a) => a.isLeader()).length === 1, 5000, 25), 'one leader');
    const first = auths.findIndex((a) => a.isLeader());
    t.true(await eventually(() => auths.every((a) => a.leader() === first), 3000, 25), 'every node knows who leads');
    const t0 = Date.now();
    await auths[first].close();
    const rest = auths.filter((_, i) => i !== first);
    t.true(await eventually(() => rest.filter((a) => a.isLeader()).length === 1, 4000, 25), 'another node leads after a clean hand-over');
    t.log(`leadership moved in ${Date.now() - t0} ms (closed leader revokes its lease)`);
    const second = auths.findIndex((a, i) => i !== first && a.isLeader());
    t.deepEqual(leading[second], [true]);

    // Revoke the leader's etcd lease behind its back (as if it expired while the process was
    // stopped): its next decision must fail, and it steps down.
    const c = new Etcd3({ hosts: etcd.endpoints });
    const k = etcdKeys(config.authority!.etcd!.prefix);
    const kv = (await c.get(k.leader).exec()).kvs[0];
    await c.leaseClient.leaseRevoke({ ID: kv.lease });
    c.close();
    // An operator change needs no leadership; the node it marks down is then heard from, which
    // a leader answers by committing 'up' — this one must not, and steps down instead.
    const down = await auths[second].submit({ type: 'down', nodes: [first] });
    t.true(down.changed, 'an operator change commits on any node');
    auths[second].heartbeat(first, Date.now());
    t.true(await eventually(() => leading[second].includes(false), 5000, 25), 'the deposed leader stepped down');
    const third = 3 - first - second;
    const history = await auths[third].history();
    t.is(history.at(-1)!.epoch, down.epoch, `nothing was committed after the operator's change: ${JSON.stringify(history.slice(-2))}`);
    t.false(auths[second].isLeader());
  } finally {
    await Promise.all(auths.map((a) => a.close()));
  }
});

test('down needs two reporters: the leader alone does not mark a node down when a fresh peer still hears it', (t) => {
  const config = { nodes: [0, 1, 2].map((id) => ({ id })) };
  const map = { nodes: config.nodes.map((n) => ({ id: n.id, up: true, in: true, downSince: null })), settings: {} } as never;
  const now = 100000;
  const base = {
    map, now, startedAt: 0, timing: { ...DEFAULT_MEMBERSHIP, downAfterMs: 4000 }, self: 0, minReporters: 2,
    lastSeen: new Map([[1, now - 100], [2, now - 10000]]),
  };
  t.deepEqual(membershipDecisions({ ...base, reports: new Map([[1, { suspects: [], receivedAt: now - 100 }]]) }).down, [], 'node 1 still hears node 2');
  t.deepEqual(membershipDecisions({ ...base, reports: new Map([[1, { suspects: [2], receivedAt: now - 100 }]]) }).down, [2], 'node 1 agrees');
  t.deepEqual(membershipDecisions({ ...base, reports: new Map([[1, { suspects: [], receivedAt: now - 9000 }]]) }).down, [2], 'a stale report does not count: the leader decides alone');
  t.deepEqual(membershipDecisions({ ...base, minReporters: 1, reports: new Map() }).down, [2], 'minReporters 1: the decider alone');
});
