/**
 * Cluster status (src/api/status.ts): computeStatus on hand-made maps and reports — healthy,
 * one node down (degraded), two down (inactive), resync records counted once — and the
 * management API's /v1/recovery and /v1/status routes with a stub control plane, one node
 * answering over HTTP, one in-process and one unreachable.
 */
import test from 'ava';
import { initialMap } from '../../src/clustermap/index.ts';
import type { ControlPlane } from '../../src/gossip/index.ts';
import { startManagementApi } from '../../src/api/index.ts';
import { computeStatus, type ClusterStatus } from '../../src/api/status.ts';
import { EXTENTS, MIB, makeConfig, nextMap, placement, reports, totalBytes, withDown } from '../helpers/status.ts';

test('every node reporting, nothing missed: HEALTH_OK', async (t) => {
  const config = await makeConfig();
  const s = computeStatus(initialMap(config), config, reports(config));
  t.is(s.health, 'HEALTH_OK');
  t.deepEqual(s.checks, []);
  t.deepEqual(s.data, { extents: EXTENTS, bytes: totalBytes(EXTENTS), degraded: 0, degradedBytes: 0, recovering: 0, inactive: 0, inactiveBytes: 0 });
  t.deepEqual(s.nodes, { total: 3, up: 3, in: 3, down: [], out: [], peering: [] });
  t.deepEqual(s.unreachable, []);
  t.deepEqual(s.pools, [{ id: 0, name: 'default', size: 3, min_size: 2 }]);
  t.is(s.volumes, 1);
  t.is(s.epoch, 1);
  t.is(s.clusterId, config.clusterId);
  t.deepEqual(s.recovery.map((r) => r.node), [0, 1, 2]);
  t.is(s.recovery[0].extents, EXTENTS);
});

test('one node down: HEALTH_WARN, every extent placed on it degraded, none inactive', async (t) => {
  for (const nodes of [3, 4]) {
    const config = await makeConfig(nodes);
    const placed = placement(config);
    const down = 2;
    const expected = [...placed.values()].filter((m) => m.includes(down)).length;
    if (nodes === 4) t.true(expected > 0 && expected < EXTENTS, 'with 4 nodes only some extents are on node 2');
    const s = computeStatus(withDown(initialMap(config), [down]), config, reports(config).filter((r) => r.node !== down));
    t.is(s.health, 'HEALTH_WARN');
    t.is(s.data.degraded, expected);
    t.is(s.data.inactive, 0);
    t.is(s.data.recovering, 0);
    t.is(s.data.extents, EXTENTS);
    t.deepEqual(s.nodes.down, [down]);
    t.is(s.nodes.up, nodes - 1);
    t.deepEqual(s.unreachable, [], 'a down node is not asked, so not unreachable');
    t.true(s.checks.includes('1 node down: 2'), s.checks.join('; '));
    t.true(s.checks.some((c) => c.startsWith(`${expected} extent${expected === 1 ? '' : 's'} degraded (`)), s.checks.join('; '));
  }
});

test('two nodes down: HEALTH_ERR, every extent inactive', async (t) => {
  const config = await makeConfig();
  const s = computeStatus(withDown(initialMap(config), [1, 2]), config, reports(config, [0]));
  t.is(s.health, 'HEALTH_ERR');
  t.is(s.data.inactive, EXTENTS);
  t.is(s.data.inactiveBytes, totalBytes(EXTENTS));
  t.is(s.data.degraded, EXTENTS);
  t.deepEqual(s.nodes.down, [1, 2]);
  t.true(s.checks[0].startsWith(`${EXTENTS} extents inactive`), s.checks.join('; '));
  t.true(s.checks.includes('2 nodes down: 1, 2'));
});

test('an extent that cannot be placed on min_size members is inactive', async (t) => {
  const config = await makeConfig();
  // Two nodes out: placement finds one host only (< min_size 2) and throws PlacementError.
  const m = nextMap(initialMap(config), (n) => {
    if (n.id !== 0) n.in = false;
  });
  const s = computeStatus(m, config, reports(config));
  t.is(s.health, 'HEALTH_ERR');
  t.is(s.data.inactive, EXTENTS);
  t.deepEqual(s.nodes.out, [1, 2]);
  t.true(s.checks.includes('2 nodes out: 1, 2'));
});

test('a resync record listed by two reporters is one degraded, recovering extent', async (t) => {
  const config = await makeConfig();
  const rs = reports(config);
  rs[0].missed.push({ node: 2, volume: 1, extent: 5 });
  rs[1].missed.push({ node: 2, volume: 1, extent: 5 });
  const s = computeStatus(initialMap(config), config, rs);
  t.is(s.health, 'HEALTH_WARN');
  t.is(s.data.degraded, 1);
  t.is(s.data.degradedBytes, MIB - 4096 * 5);
  t.is(s.data.recovering, 1);
  t.is(s.data.inactive, 0);
  t.deepEqual(s.checks, ['1 extent degraded (1004.0 KiB), 1 recovering']);

  // The same record while node 2 is down: degraded, not recovering (nobody to catch up).
  const down = computeStatus(withDown(initialMap(config), [2]), config, rs.slice(0, 2));
  t.is(down.data.degraded, EXTENTS);
  t.is(down.data.recovering, 0);

  // A stale extent listed by an up node (and peering) is recovering too.
  const rs2 = reports(config);
  rs2[2].stale.push([1, 7]);
  rs2[2].peering = true;
  const st = computeStatus(initialMap(config), config, rs2);
  t.is(st.data.degraded, 1);
  t.is(st.data.recovering, 1);
  t.deepEqual(st.nodes.peering, [2]);
  t.true(st.checks.includes('node 2 peering'));
});

test('an up node without a report is unreachable (HEALTH_WARN); volumes cluster.json does not list are placed in pool 0', async (t) => {
  const config = await makeConfig();
  const rs = reports(config, [0, 1]);
  rs[0].held.push([9, 0, 4096]);
  const s = computeStatus(initialMap(config), config, rs, new Map([[2, 'no answer within 3000 ms']]));
  t.is(s.health, 'HEALTH_WARN');
  t.deepEqual(s.unreachable, [{ node: 2, error: 'no answer within 3000 ms' }]);
  t.true(s.checks.includes('node 2 unreachable: no answer within 3000 ms'));
  t.deepEqual(s.unknownVolumes, [], 'a catalog volume (not in cluster.json) is placed in pool 0');
  t.is(s.data.extents, EXTENTS + 1);
  t.is(s.volumes, config.volumes.length + 1);
  t.is(s.data.degraded, 0, 'an unreachable but up node still counts as an up member');
});

test('GET /v1/recovery and /v1/status: one node over HTTP, one in-process, one unreachable', async (t) => {
  const config = await makeConfig();
  const rs = reports(config);
  let map = initialMap(config);
  const control = (): ControlPlane => ({ keeper: { get map() { return map; }, signed: null }, heartbeats: new Map() }) as unknown as ControlPlane;
  const token = config.token;
  const base = { host: '127.0.0.1', port: 0, token, authorityNode: 0 };
  const a0 = await startManagementApi({ ...base, nodeId: 0, control: control(), config, recovery: () => rs[0] });
  const a1 = await startManagementApi({ ...base, nodeId: 1, control: control(), recovery: () => rs[1] });
  t.teardown(async () => {
    await a0.app.close();
    await a1.app.close();
  });
  // Node 1 at its real port; node 2 at a port nobody listens on (node 1's closed sibling).
  const a2 = await startManagementApi({ ...base, nodeId: 2, control: control() });
  await a2.app.close();
  map = structuredClone(map);
  map.nodes[0].apiPort = a0.port;
  map.nodes[1].apiPort = a1.port;
  map.nodes[2].apiPort = a2.port;

  const get = async (port: number, path: string, tok = token): Promise<{ status: number; body: unknown }> => {
    const r = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${tok}` } });
    return { status: r.status, body: await r.json() };
  };
  t.deepEqual((await get(a1.port, '/v1/recovery')).body, rs[1]);
  t.is((await get(a1.port, '/v1/recovery', 'wrong-token-wrong-token')).status, 401);
  t.is((await get(a1.port, '/v1/status')).status, 503, 'no config on node 1');

  const r = await get(a0.port, '/v1/status');
  t.is(r.status, 200);
  const s = r.body as ClusterStatus & { servedBy: number };
  t.is(s.servedBy, 0);
  t.is(s.health, 'HEALTH_WARN');
  t.deepEqual(s.unreachable.map((u) => u.node), [2]);
  t.regex(s.unreachable[0].error, /ECONNREFUSED/);
  t.deepEqual(s.recovery.map((x) => x.node), [0, 1]);
  t.is(s.data.extents, EXTENTS);
  t.is(s.data.degraded, 0);
});
