/**
 * The node's side of epoch fencing, against a real NodeServer on 127.0.0.1 with real
 * partitions, and a map view under the test's control: an older epoch gets StaleEpoch naming
 * the node's epoch; a newer epoch makes the node fetch that map before serving; when it
 * cannot, the request fails with Io and nothing is served under the old map.
 */
import test from 'ava';
import type { NodeMapView } from '../../src/node/index.ts';
import { Op, Status, writeVersion } from '../../src/wire/index.ts';
import type { ClusterMap } from '../../src/clustermap/index.ts';
import { startInProcessNode } from '../helpers/node-server.ts';

test('older epochs are refused, newer ones are fetched before serving', async (t) => {
  let epoch = 5;
  const asked: number[] = [];
  const map: NodeMapView = {
    epoch: () => epoch,
    ensure: async (e) => {
      asked.push(e);
      await new Promise((r) => setTimeout(r, 20));
      if (e > 9) return false; // nobody has it
      epoch = e;
      return true;
    },
    address: () => undefined,
    map: () => ({ epoch, nodes: [{ id: 0, up: true }], topology: { leaves: [] } }) as unknown as ClusterMap,
  };
  const n = await startInProcessNode(map);
  const c = n.client;
  const leaf = n.leaf;
  const req = (e: number, op: number = Op.Read) => ({ op, flags: 0, epoch: e, volume: 1, extent: 0, partition: leaf, firstPage: 0, pages: 1, lease: 1, version: op === Op.Write ? writeVersion(1, e) : 0, members: op === Op.Write ? [leaf] : [] });
  try {
    let r = await c.request(req(3));
    t.is(r.h.status, Status.StaleEpoch);
    t.is(r.h.aux, 5);
    t.deepEqual(asked, [], 'an older epoch fetches nothing');

    r = await c.request(req(7, Op.Write), Buffer.alloc(4096, 9));
    t.is(r.h.status, Status.Ok);
    t.deepEqual(asked, [7], 'the node fetched epoch 7 before serving');
    t.is(r.h.epoch, 7, 'and replies at its new epoch');

    r = await c.request(req(6));
    t.is(r.h.status, Status.StaleEpoch, 'the old epoch is now fenced');
    t.is(r.h.aux, 7);

    r = await c.request(req(12, Op.Write), Buffer.alloc(4096, 1));
    t.is(r.h.status, Status.Io, 'a map that cannot be fetched fails the request');
    t.is(epoch, 7);
    r = await c.request(req(7));
    t.is(r.h.status, Status.Ok);
    t.is(r.payload[0], 9, 'the refused write changed nothing');
  } finally {
    await n.close();
  }
});
