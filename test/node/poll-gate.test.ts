/**
 * When a storage node may busy-poll (NodeServer.pollGate, src/net/loop-poll.ts), against a
 * real NodeServer on 127.0.0.1 with a real partition: only right after the reply to a host
 * read flagged Alone; not after a plain read, a recovery read, a write or a flush. And a node
 * started with a bad CAIRN_NODE_POLL_US refuses to start with one clear line.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { NodeServer, NodeStorage, type NodeMapView } from '../../src/node/index.ts';
import type { ClusterConfig, NodeConfig } from '../../src/config/index.ts';
import { partitionLeafId } from '../../placement/index.ts';
import { Flag, Op, Status, WireClient, writeVersion } from '../../src/wire/index.ts';
import { MissedLog } from '../../src/recovery/index.ts';
import type { ClusterMap } from '../../src/clustermap/index.ts';
import { LocalCluster, NodeStartError } from '../../src/cluster/index.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';

test('a node may poll only after the reply to a read flagged Alone', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-poll-gate-'));
  const node: NodeConfig = { id: 0, host: '127.0.0.1', port: 1, devices: [{ path: 'dev0.img', sizeBytes: 8 << 20, partitions: 1 }] };
  const storage = await NodeStorage.open(node, dir);
  const map: NodeMapView = {
    epoch: () => 1,
    ensure: async () => false,
    address: () => undefined,
    map: () => ({ epoch: 1, nodes: [{ id: 0, up: true }], topology: { leaves: [] } }) as unknown as ClusterMap,
  };
  const config = { token: 't'.repeat(32), nodes: [node], pools: [], volumes: [] } as unknown as ClusterConfig;
  const missed = await MissedLog.open(join(dir, 'missed.log'));
  const server = new NodeServer({ config, nodeId: 0, storage, log: pino({ level: 'silent' }), map, missed });
  server.onMap();
  const port = await server.listen('127.0.0.1', 0);
  const c = new WireClient({ host: '127.0.0.1', port, token: config.token });
  await c.connect();
  const leaf = partitionLeafId(0, 0, 0);
  const req = (op: number, flags: number) => ({ op, flags, epoch: 1, volume: 1, extent: 0, partition: leaf, firstPage: 0, pages: 1, lease: 1, version: op === Op.Write ? writeVersion(1, 1) : 0, members: op === Op.Write ? [leaf] : [] });
  try {
    t.false(server.pollGate(), 'nothing served yet');
    t.is((await c.request(req(Op.Write, 0), Buffer.alloc(4096, 3))).h.status, Status.Ok);
    t.false(server.pollGate(), 'after a write');
    t.is((await c.request(req(Op.Read, Flag.Alone))).h.status, Status.Ok);
    t.true(server.pollGate(), 'after a read flagged Alone');
    t.is((await c.request(req(Op.Read, 0))).h.status, Status.Ok);
    t.false(server.pollGate(), 'after a plain read');
    t.is((await c.request(req(Op.Read, Flag.Alone | Flag.Recovery))).h.status, Status.Ok);
    t.false(server.pollGate(), 'after a recovery read, Alone or not');
    t.is((await c.request(req(Op.Read, Flag.Alone))).h.status, Status.Ok);
    t.true(server.pollGate());
    t.is((await c.request({ ...req(Op.Flush, 0), pages: 0 })).h.status, Status.Ok);
    t.false(server.pollGate(), 'after a flush');
    const two = await Promise.all([c.request(req(Op.Read, Flag.Alone)), c.request(req(Op.Read, Flag.Alone))]);
    t.true(two.every((r) => r.h.status === Status.Ok));
    t.true(server.pollGate(), 'the last reply went out with nothing else being served');
  } finally {
    c.close();
    await server.close();
    await missed.close();
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a node with a bad CAIRN_NODE_POLL_US does not start, and says why in one line', async (t) => {
  t.timeout(60000);
  const { dir, cleanup } = tempDataDir();
  const saved = process.env.CAIRN_NODE_POLL_US;
  process.env.CAIRN_NODE_POLL_US = 'fast';
  try {
    const e = await t.throwsAsync(LocalCluster.start({ dataDir: dir, layout: { nodes: 1, replicas: 1, deviceBytes: 16 << 20, volumeBytes: 0 } }), { instanceOf: NodeStartError });
    t.regex(e?.message ?? '', /CAIRN_NODE_POLL_US must be a number of microseconds from 0 to 10000 \(got "fast"\)/);
    t.is((e?.message ?? '').trim().split('\n').length, 1, e?.message);
  } finally {
    if (saved === undefined) delete process.env.CAIRN_NODE_POLL_US;
    else process.env.CAIRN_NODE_POLL_US = saved;
    cleanup();
  }
});
