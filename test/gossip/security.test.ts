/**
 * Issue 4, must-show 3 (and promise 6): a peer without the cluster key cannot connect or
 * publish; a forged, corrupted or replayed (older) map — pushed by gossip or served over
 * the map-fetch protocol by a peer that has the network key but not the authority's
 * signing key — is rejected and logged by every node, and nobody's map changes. Also the
 * management API's authentication and errors, and the CLI commands against a live cluster.
 */
import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { LocalCluster } from '../../src/cluster/index.ts';
import { ApiClient, ApiError } from '../../src/api/index.ts';
import type { SubmitResult } from '../../src/authority/index.ts';
import { GossipPeer, clusterSwarmKey, encodeMessage, mapFetchProtocol, topics } from '../../src/gossip/index.ts';
import { applyChange, generateAuthorityKeys, openSignedMap, parsePrivateKey, parsePublicKey, signMap } from '../../src/clustermap/index.ts';
import { CAIRN, tempDataDir } from '../helpers/cairn-up.ts';
import { run } from '../helpers/tools.ts';
import { until } from '../helpers/cluster.ts';

const quiet = { info: () => undefined, warn: () => undefined, debug: () => undefined };
let cluster: LocalCluster;
let dataDir: string;
let cleanup: () => void;
const apis: ApiClient[] = [];

test.before(async () => {
  const d = tempDataDir();
  dataDir = d.dir;
  cleanup = d.cleanup;
  cluster = await LocalCluster.start({
    dataDir,
    layout: { nodes: 3, devicesPerNode: 1, deviceBytes: 16 << 20, partitionsPerDevice: 1, replicas: 3, volumeBytes: 8 << 20, membership: { heartbeatMs: 500, digestMs: 500 } },
    startTimeoutMs: 120000,
  });
  for (const n of cluster.config.nodes) apis.push(new ApiClient(`http://127.0.0.1:${n.apiPort}`, cluster.config.token));
});

test.after.always(async () => {
  await cluster?.stop();
  cleanup?.();
});

const seeds = (): Array<{ host: string; port: number }> => cluster.config.nodes.map((n) => ({ host: n.host, port: n.gossipPort! }));

/** Every node's (epoch, checksum), from its own API. */
async function nodeMaps(): Promise<string[]> {
  return Promise.all(apis.map(async (a) => {
    const m = await a.call<{ epoch: number; checksum: number }>('GET', '/v1/map');
    return `${m.epoch}/${m.checksum}`;
  }));
}

/** Per node: how many maps from `from` it logged as rejected for `reason`. */
function rejections(reason: string, from: string): number[] {
  return cluster.config.nodes.map((n) => readFileSync(join(dataDir, 'logs', `node${n.id}.log`), 'utf8').split('\n')
    .filter((l) => l.includes('"msg":"map rejected') && l.includes(`"reason":"${reason}"`) && l.includes(`"from":"${from}"`)).length);
}

/** True when every node logged at least `min` rejections of each reason from `from`. */
function everyNodeRejected(reasons: string[], from: string, min = 1): boolean {
  return reasons.every((r) => rejections(r, from).every((c) => c >= min));
}

test.serial('a peer without the cluster key can neither connect nor publish', async (t) => {
  const before = await nodeMaps();
  const rogue = await GossipPeer.start({ host: '127.0.0.1', port: 0, swarmKey: clusterSwarmKey('not-the-cluster-token-at-all', cluster.config.clusterId), seeds: seeds(), redialMs: 300, log: quiet });
  try {
    let received = 0;
    rogue.subscribe(topics(cluster.config.clusterId).map, () => {
      received++;
      return 'accept';
    });
    // Several rounds of dialling every node: the pre-shared-key handshake fails each time.
    await new Promise((r) => setTimeout(r, 2500));
    t.deepEqual(rogue.connectedPeers(), [], 'the rogue peer got a connection');
    const other = generateAuthorityKeys();
    const forged = signMap(applyChange(cluster.view.map, { type: 'out', node: 1 }, Date.now())!, parsePrivateKey(other.privateKeyPem));
    t.is(await rogue.publish(topics(cluster.config.clusterId).map, forged.wire), 0, 'a publish reached somebody');
    t.is(received, 0);
  } finally {
    await rogue.stop();
  }
  t.deepEqual(await nodeMaps(), before);
});

test.serial('forged, corrupted and replayed maps are rejected and logged; no map changes', async (t) => {
  // Two real epochs first, so that an older genuine map exists to replay.
  const r1 = await apis[0].call<SubmitResult>('POST', '/v1/map/changes', { type: 'out', node: 2 });
  const r2 = await apis[0].call<SubmitResult>('POST', '/v1/map/changes', { type: 'in', node: 2 });
  t.true(r1.changed && r2.changed);
  t.true(await until(() => cluster.follower!.epoch >= r2.epoch, 5000));
  await until(() => false, 300);
  const before = await nodeMaps();
  t.true(before.every((m) => m === before[0]), `nodes disagree before the test: ${before}`);
  const initiatorBefore = cluster.follower!.epoch;

  const insider = await GossipPeer.start({ host: '127.0.0.1', port: 0, swarmKey: clusterSwarmKey(cluster.config.token, cluster.config.clusterId), seeds: seeds(), log: quiet });
  try {
    const tp = topics(cluster.config.clusterId);
    insider.subscribe(tp.map, () => 'accept');
    t.true(await until(() => insider.topicPeers(tp.map).length >= 3, 10000), 'insider did not join the map topic');

    const cur = cluster.view.map;
    const mallory = parsePrivateKey(generateAuthorityKeys().privateKeyPem);
    // 1. Forged: a newer epoch signed with a key that is not the authority's.
    const forged = signMap(applyChange(cur, { type: 'out', node: 1 }, Date.now())!, mallory);
    // 2. Corrupted: a genuine map with a newer epoch in its header and a damaged byte.
    const files = readdirSync(join(dataDir, 'node0', 'maps')).filter((f) => f.endsWith('.map')).sort();
    const genuine = readFileSync(join(dataDir, 'node0', 'maps', files.at(-1)!));
    const corrupted = Buffer.from(genuine);
    corrupted.writeUInt32LE(cur.epoch + 1, 8);
    corrupted[corrupted.length - 10] ^= 0x20;
    // 3. Replayed: the genuine, correctly signed map of an older epoch.
    const replayed = readFileSync(join(dataDir, 'node0', 'maps', files[0]));
    t.notThrows(() => openSignedMap(replayed, parsePublicKey(cluster.config.authority!.publicKey), cluster.config.clusterId), 'the replayed map is genuine');

    // Publish until every node has logged each rejection (on a loaded machine the insider may
    // learn a node's subscription a moment before its own stream to that node is open).
    const reasons = ['signature', 'checksum', 'stale'];
    for (let round = 0; round < 5 && !everyNodeRejected(reasons, insider.id); round++) {
      for (const wire of [forged.wire, corrupted, replayed]) await insider.publish(tp.map, wire);
      await until(() => everyNodeRejected(reasons, insider.id), 2000);
    }
    t.true(everyNodeRejected(reasons, insider.id), `rejections logged per node: ${reasons.map((r) => `${r} ${rejections(r, insider.id)}`).join(', ')}`);

    // 4. Pull path: announce a newer digest and serve a forged map over map-fetch.
    await insider.handle(mapFetchProtocol(cluster.config.clusterId), async () => Buffer.concat([Uint8Array.of(0), forged.wire]));
    const sigBefore = Math.max(...rejections('signature', insider.id));
    for (let round = 0; round < 5 && !everyNodeRejected(['signature'], insider.id, sigBefore + 1); round++) {
      await insider.publish(tp.digest, encodeMessage({ epoch: cur.epoch + 5, checksum: 1, sentAt: Date.now() }));
      await until(() => everyNodeRejected(['signature'], insider.id, sigBefore + 1), 4000);
    }
    t.true(everyNodeRejected(['signature'], insider.id, sigBefore + 1), `forged map served over map-fetch: ${rejections('signature', insider.id)}`);
  } finally {
    await insider.stop();
  }
  t.deepEqual(await nodeMaps(), before, 'a node map changed');
  t.is(cluster.follower!.epoch, initiatorBefore);
});

test.serial('management API: token required, bad changes get their own errors', async (t) => {
  const n = cluster.config.nodes[1];
  const noToken = await fetch(`http://127.0.0.1:${n.apiPort}/v1/nodes`);
  t.is(noToken.status, 401);
  const bad = new ApiClient(`http://127.0.0.1:${n.apiPort}`, 'x'.repeat(48));
  const e401 = await t.throwsAsync(bad.call('GET', '/v1/map'), { instanceOf: ApiError });
  t.is(e401!.status, 401);
  const e400 = await t.throwsAsync(apis[1].call('POST', '/v1/map/changes', { type: 'reweight', node: 1, weight: 7 }), { instanceOf: ApiError });
  t.is(e400!.status, 400);
  t.regex(e400!.message, /weight/);
  const e409 = await t.throwsAsync(apis[1].call('POST', '/v1/map/changes', { type: 'out', node: 99 }), { instanceOf: ApiError });
  t.is(e409!.status, 409);
  t.regex(e409!.message, /node 99 is not in the map/);
  const e404 = await t.throwsAsync(apis[1].call('GET', '/v1/nope'), { instanceOf: ApiError });
  t.is(e404!.status, 404);
  // Non-authority nodes forward history and changes to the authority.
  const h = await apis[2].call<{ epochs: Array<{ epoch: number }> }>('GET', '/v1/map/history');
  t.true(h.epochs.length >= 1);
  t.is(h.epochs[0].epoch, 1);
});

test.serial('CLI: node list, node out/in/reweight, map show, map history', async (t) => {
  const cairn = (...args: string[]) => run(process.execPath, [CAIRN, ...args, '--data-dir', dataDir], 60000);
  let r = await cairn('node', 'reweight', '1', '0.5');
  t.is(r.code, 0, r.stderr);
  const epoch = Number(/Map epoch (\d+) published/.exec(r.stdout)?.[1]);
  t.true(epoch > 1, r.stdout);
  t.regex(r.stderr.replace(/\s*›\s*/g, " "), /moves placement: new members copy their extents/);
  r = await cairn('node', 'reweight', '1', '1');
  t.is(r.code, 0, r.stderr);
  r = await cairn('node', 'list');
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /ID\s+ADDRESS\s+STATE/);
  for (const n of cluster.config.nodes) t.regex(r.stdout, new RegExp(`^${n.id}\\s+127\\.0\\.0\\.1:${n.port}\\s+up/in`, 'm'));
  r = await cairn('map', 'history', '--json');
  const epochs = JSON.parse(r.stdout) as Array<{ epoch: number; change: string }>;
  t.deepEqual(epochs.map((e) => e.epoch), Array.from({ length: epochs.length }, (_, i) => i + 1));
  t.is(epochs.find((e) => e.epoch === epoch)?.change, 'reweight node 1 to 0.5');
  r = await cairn('map', 'show');
  t.regex(r.stdout, /^epoch \d+ /);
  t.regex(r.stdout, /host node2 .* up in/);
});
