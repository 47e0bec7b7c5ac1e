/**
 * When a storage node may busy-poll (NodeServer.pollGate, src/net/loop-poll.ts), against a
 * real NodeServer on 127.0.0.1 with a real partition: only right after the reply to a host
 * read flagged Alone; not after a plain read, a recovery read, a write or a flush. And a node
 * started with a bad CAIRN_NODE_POLL_US refuses to start with one clear line.
 */
import test from 'ava';
import { Flag, Op, Status, writeVersion } from '../../src/wire/index.ts';
import { LocalCluster, NodeStartError } from '../../src/cluster/index.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';
import { startInProcessNode, staticMap } from '../helpers/node-server.ts';

test('a node may poll only after the reply to a read flagged Alone', async (t) => {
  const n = await startInProcessNode(staticMap(1));
  const { server, client: c, leaf } = n;
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
    await n.close();
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
