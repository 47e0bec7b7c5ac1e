/**
 * The signed cluster map: canonical encoding, checksum and Ed25519 signature checks, the
 * changes that make new epochs, placement ignoring up/down, and the keeper's acceptance
 * rules (newer and verified only; stale, duplicate, forged, corrupted, conflicting refused).
 */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ChangeError, MapKeeper, MapRejectedError, applyChange, buildTopology, decodeMap, encodeMap, generateAuthorityKeys, initialMap, openSignedMap,
  parsePrivateKey, parsePublicKey, placementTopology, signMap, type ClusterMap,
} from '../../src/clustermap/index.ts';
import { compileMap, place } from '../../placement/index.ts';
import type { ClusterConfig } from '../../src/config/index.ts';

const CLUSTER = '00000000-0000-4000-8000-000000000001';
const keys = generateAuthorityKeys();
const priv = parsePrivateKey(keys.privateKeyPem);
const pub = parsePublicKey(keys.publicKey);

function config(nodes = 4): ClusterConfig {
  return {
    format: 1, clusterId: CLUSTER, token: 'x'.repeat(32), pools: [], volumes: [], map: buildTopology([], 1),
    nodes: Array.from({ length: nodes }, (_, id) => ({ id, host: '127.0.0.1', port: 7000 + id, gossipPort: 7100 + id, apiPort: 7200 + id, devices: [{ path: `n${id}.img`, sizeBytes: 1 << 30, partitions: 4 }] })),
  };
}

const next = (m: ClusterMap, c: Parameters<typeof applyChange>[1]): ClusterMap => applyChange(m, c, 1000)!;

test('canonical encoding round-trips and is key-order independent', (t) => {
  const m = initialMap(config());
  const bytes = encodeMap(m);
  t.deepEqual(decodeMap(bytes), m);
  const reverse = (v: unknown): unknown => (Array.isArray(v) ? v.map(reverse)
    : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reverse(x)])) : v);
  const shuffled = reverse(m) as ClusterMap;
  t.notDeepEqual(Object.keys(shuffled), Object.keys(m));
  t.true(encodeMap(shuffled).equals(bytes));
  t.throws(() => decodeMap(Buffer.from(JSON.stringify(m, null, 1))), { message: /not canonical/ });
  const bad = { ...m, topology: { ...m.topology, leaves: m.topology.leaves.map((l, i) => (i === 0 ? { ...l, weight: 5 } : l)) } };
  t.throws(() => decodeMap(encodeMap(bad)), { message: /does not match its nodes/ });
});

test('a signed map verifies; damaged, forged and foreign ones do not', (t) => {
  const m = next(initialMap(config()), { type: 'out', node: 1 });
  const s = signMap(m, priv);
  t.is(openSignedMap(s.wire, pub, CLUSTER).epoch, 2);
  const damaged = Buffer.from(s.wire);
  damaged[damaged.length - 5] ^= 1;
  t.is(t.throws(() => openSignedMap(damaged, pub, CLUSTER), { instanceOf: MapRejectedError })!.reason, 'checksum');
  const forged = signMap(m, parsePrivateKey(generateAuthorityKeys().privateKeyPem));
  t.is(t.throws(() => openSignedMap(forged.wire, pub, CLUSTER), { instanceOf: MapRejectedError })!.reason, 'signature');
  t.is(t.throws(() => openSignedMap(s.wire, pub, 'another-cluster'), { instanceOf: MapRejectedError })!.reason, 'cluster');
  t.is(t.throws(() => openSignedMap(s.wire.subarray(0, 30), pub, CLUSTER), { instanceOf: MapRejectedError })!.reason, 'malformed');
  const lying = Buffer.from(s.wire);
  lying.writeUInt32LE(9, 8); // header epoch differs from the signed map's
  t.is(t.throws(() => openSignedMap(lying, pub, CLUSTER), { instanceOf: MapRejectedError })!.reason, 'malformed');
});

test('changes make the next epoch; no-ops and bad targets do not', (t) => {
  const m1 = initialMap(config());
  const m2 = next(m1, { type: 'reweight', node: 2, weight: 0.5 });
  t.is(m2.epoch, 2);
  t.is(m2.change, 'reweight node 2 to 0.5');
  t.is(m2.topology.leaves.find((l) => l.id === 2 * 65536)!.weight, m1.topology.leaves.find((l) => l.id === 2 * 65536)!.weight / 2);
  t.is(applyChange(m2, { type: 'reweight', node: 2, weight: 0.5 }, 1), null);
  const m3 = next(m2, { type: 'out', node: 3, device: 0 });
  t.false(m3.topology.leaves.filter((l) => l.id >= 3 * 65536).some((l) => l.in));
  t.true(m3.nodes[3].in, 'only the device is out');
  const m4 = next(m3, { type: 'add-node', node: { id: 9, host: '127.0.0.1', port: 1, gossipPort: 2, apiPort: 3, devices: [{ path: 'x', sizeBytes: 1 << 30, partitions: 2 }] } });
  t.is(m4.nodes.length, 5);
  t.false(m4.nodes[4].up, 'a new node starts down until it heartbeats');
  const m5 = next(m4, { type: 'add-device', node: 9, device: { path: 'y', sizeBytes: 1 << 30, partitions: 1 } });
  t.deepEqual(m5.nodes[4].devices.map((d) => d.id), [0, 1]);
  const m6 = next(m5, { type: 'remove-device', node: 9, device: 0 });
  t.deepEqual(m6.nodes[4].devices.map((d) => d.id), [1], 'device ids stay stable');
  const m7 = next(m6, { type: 'remove-node', node: 9 });
  t.is(m7.nodes.length, 4);
  t.throws(() => applyChange(m7, { type: 'out', node: 42 }, 1), { instanceOf: ChangeError });
  t.throws(() => applyChange(m7, { type: 'add-node', node: { ...m4.nodes[0], devices: [] } }, 1), { instanceOf: ChangeError });
  // Membership: down, auto-out, and back up (and in again, because the out was automatic).
  const d = next(m7, { type: 'down', nodes: [1] });
  t.false(d.nodes[1].up);
  t.is(d.nodes[1].downSince, 1000);
  const o = next(d, { type: 'auto-out', nodes: [1] });
  t.true(o.nodes[1].autoOut);
  const u = next(o, { type: 'up', nodes: [1] });
  t.true(u.nodes[1].up && u.nodes[1].in && !u.nodes[1].autoOut);
  t.true(decodeMap(encodeMap(u)) !== null);
});

test('down does not move placement; out does', (t) => {
  const m1 = initialMap(config(5));
  const down = next(m1, { type: 'down', nodes: [2] });
  const out = next(m1, { type: 'out', node: 2 });
  const rule = { failureDomain: 'host', replicas: 3 };
  const [c1, cd, co] = [m1, down, out].map((m) => compileMap(placementTopology(m)));
  let moved = 0;
  for (let x = 0; x < 2000; x++) {
    t.deepEqual(place(cd, rule, x).members, place(c1, rule, x).members);
    const before = place(c1, rule, x).members;
    const after = place(co, rule, x).members;
    if (before.join() !== after.join()) moved++;
    t.false(after.some((l) => Math.floor(l / 65536) === 2));
  }
  t.true(moved > 0);
  t.false(down.topology.leaves.filter((l) => l.id >= 2 * 65536 && l.id < 3 * 65536).some((l) => l.up), 'the map itself says down (routing)');
});

test('epoch edits move only what must move: out moves only that node\'s copies, in restores them, a new node only attracts', (t) => {
  const rule = { failureDomain: 'host', replicas: 3 };
  const m1 = initialMap(config(6));
  const out = next(m1, { type: 'out', node: 2 });
  const back = next(out, { type: 'in', node: 2 });
  const grown = next(back, { type: 'add-node', node: { id: 7, host: '127.0.0.1', port: 1, gossipPort: 2, apiPort: 3, devices: [{ path: 'x', sizeBytes: 1 << 30, partitions: 4 }] } });
  const [c1, co, cb, cg] = [m1, out, back, grown].map((m) => compileMap(placementTopology(m)));
  let replaced = 0;
  let attracted = 0;
  const keys = 4000;
  for (let x = 0; x < keys; x++) {
    const before = place(c1, rule, x).members;
    const after = place(co, rule, x).members;
    for (let i = 0; i < before.length; i++) {
      // A position changes only where node 2 held it (replacement in place).
      if (before[i] !== after[i]) {
        t.is(Math.floor(before[i] / 65536), 2, `key ${x} position ${i} moved off a node that stayed in`);
        replaced++;
      }
    }
    t.deepEqual(place(cb, rule, x).members, before, `key ${x}: out then in restores the placement`);
    // Members that change go to the new node only (positions may reorder: firstn lists).
    const g = place(cg, rule, x).members;
    for (const l of g) {
      if (!before.includes(l)) {
        t.is(Math.floor(l / 65536), 7, `key ${x}: ${l} joined, not on the new node (before ${before}, after ${g})`);
        attracted++;
      }
    }
  }
  // Node 2 holds about 1/6 × 3 positions per key; the new node should draw about 3/7 × its share.
  t.true(replaced > keys * 3 / 6 * 0.8 && replaced < keys * 3 / 6 * 1.2, `replaced ${replaced}`);
  t.true(attracted > keys * 3 / 7 * 0.8 && attracted < keys * 3 / 7 * 1.2, `attracted ${attracted}`);
  t.true(grown.topology.grafts.some((g) => g.node < 0), 'the new node is a graft');
  t.is(decodeMap(encodeMap(grown)).epoch, grown.epoch);
});

test('the keeper accepts only newer verified maps, and keeps the newest across restarts', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-keeper-'));
  const logged: string[] = [];
  const log = { info: () => undefined, warn: (o: object, m: string) => logged.push(`warn ${m}`), error: (o: object, m: string) => logged.push(`error ${m}`) };
  const m1 = initialMap(config());
  const s2 = signMap(next(m1, { type: 'out', node: 1 }), priv);
  const s3 = signMap(next(s2.map, { type: 'in', node: 1 }), priv);
  const path = join(dir, 'map.current');
  const k = new MapKeeper({ clusterId: CLUSTER, authorityKey: pub, initial: m1, log, persistPath: path });
  t.deepEqual(k.offer(s3.wire, 'p1'), { accepted: true, epoch: 3 });
  t.like(k.offer(s2.wire, 'p2'), { accepted: false, reason: 'stale' });
  t.like(k.offer(s3.wire, 'p3'), { accepted: false, reason: 'duplicate' });
  const other = signMap({ ...next(s2.map, { type: 'reweight', node: 0, weight: 0.1 }) }, priv);
  t.is(other.epoch, 3);
  t.like(k.offer(other.wire, 'p4'), { accepted: false, reason: 'conflict' });
  const forged = signMap(next(s3.map, { type: 'out', node: 0 }), parsePrivateKey(generateAuthorityKeys().privateKeyPem));
  t.like(k.offer(forged.wire, 'p5'), { accepted: false, reason: 'signature' });
  t.like(k.offer(Buffer.from('garbage'), 'p6'), { accepted: false, reason: 'malformed' });
  t.is(k.epoch, 3);
  t.is(k.rejections.stale + k.rejections.conflict + k.rejections.signature + k.rejections.malformed, 4);
  t.is(logged.length, 4, `duplicates are not logged: ${logged.join('; ')}`);
  t.truthy(logged.find((l) => l.startsWith('error map rejected') && /forged/.test(l)));
  await k.close();
  const k2 = new MapKeeper({ clusterId: CLUSTER, authorityKey: pub, initial: m1, log, persistPath: path });
  await k2.loadPersisted();
  t.is(k2.epoch, 3);
  // A damaged file is ignored, not trusted.
  writeFileSync(path, Buffer.from('nonsense'));
  const k3 = new MapKeeper({ clusterId: CLUSTER, authorityKey: pub, initial: m1, log, persistPath: path });
  await k3.loadPersisted();
  t.is(k3.epoch, 1);
  t.true(await k2.waitFor(3, 10));
  t.false(await k3.waitFor(2, 30));
  rmSync(dir, { recursive: true, force: true });
});
