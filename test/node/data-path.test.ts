/**
 * The storage nodes' data path, spoken to directly over the wire protocol against real
 * node processes: authentication, malformed frames, epoch, lease, version and member checks,
 * recovery requests, and that a write each member acknowledged is on every member.
 */
import test from 'ava';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { LocalCluster } from '../../src/cluster/index.ts';
import { ClusterView } from '../../src/initiator/index.ts';
import { ConnectionError, Op, Status, WireClient, writeVersion, type RequestHeader } from '../../src/wire/index.ts';
import { decodeVersions, encodePut } from '../../src/recovery/index.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';
import { localSocketPath } from '../../src/net/index.ts';

let cluster: LocalCluster;
let cleanup: () => void;

test.before(async () => {
  const d = tempDataDir();
  cleanup = d.cleanup;
  cluster = await LocalCluster.start({ dataDir: d.dir, layout: { deviceBytes: 256 * 1024 * 1024, volumeBytes: 64 * 1024 * 1024 } });
});
test.after.always(async () => {
  await cluster?.stop();
  cleanup?.();
});

function client(node: number, token = cluster.config.token): WireClient {
  const n = cluster.config.nodes[node];
  return new WireClient({ host: n.host, port: n.port, token });
}

function baseReq(over: Partial<RequestHeader>): Omit<RequestHeader, 'id'> {
  return { op: Op.Read, flags: 0, epoch: cluster.view.epoch, volume: 1, extent: 0, partition: 0, firstPage: 0, pages: 1, lease: 1, version: 0, members: [], ...over };
}

test('a wrong cluster token is refused', async (t) => {
  const e = await t.throwsAsync(client(0, 'not-the-token-at-all').connect(), { instanceOf: ConnectionError });
  t.is(e?.code, 'EAUTH');
});

test('garbage frames close only that connection; the node keeps serving', async (t) => {
  const n = cluster.config.nodes[0];
  for (const junk of [randomBytes(64), Buffer.from([0xff, 0xff, 0xff, 0x7f]), Buffer.alloc(48)]) {
    await new Promise<void>((resolve) => {
      const s = connect({ host: n.host, port: n.port }, () => s.write(junk));
      s.on('close', () => resolve());
      s.on('error', () => undefined);
      s.setTimeout(3000, () => s.destroy());
      s.resume();
    });
  }
  const c = client(0);
  await c.connect();
  const r = await c.request(baseReq({ op: Op.Ping, pages: 0 }));
  t.is(r.h.status, Status.Ok);
  c.close();
});

test.serial('a same-host client reaches the node over its local Unix socket, token and framing checked as on TCP; CAIRN_LOCAL_SOCKETS=0 means TCP', async (t) => {
  const n = cluster.config.nodes[0];
  const path = localSocketPath(n.host, n.port);
  t.truthy(path, `${n.host} is a loopback address`);
  const c = client(0);
  await c.connect();
  t.is(c.transport, 'unix');
  t.is((await c.request(baseReq({ op: Op.Ping, pages: 0 }))).h.status, Status.Ok);
  const e = await t.throwsAsync(client(0, 'not-the-token-at-all').connect(), { instanceOf: ConnectionError });
  t.is(e?.code, 'EAUTH', 'the local socket checks the token');
  await new Promise<void>((resolve) => {
    const s = connect({ path: path! }, () => s.write(randomBytes(64)));
    s.on('close', () => resolve());
    s.on('error', () => undefined);
    s.setTimeout(3000, () => s.destroy());
    s.resume();
  });
  t.is((await c.request(baseReq({ op: Op.Ping, pages: 0 }))).h.status, Status.Ok, 'garbage on another local connection closed only that one');
  c.close();
  process.env.CAIRN_LOCAL_SOCKETS = '0';
  try {
    const tcp = client(0);
    await tcp.connect();
    t.is(tcp.transport, 'tcp');
    t.is((await tcp.request(baseReq({ op: Op.Ping, pages: 0 }))).h.status, Status.Ok);
    tcp.close();
  } finally {
    delete process.env.CAIRN_LOCAL_SOCKETS;
  }
});

test('stale epoch, unknown partition, bad page range and fenced lease get typed statuses', async (t) => {
  // Tests run concurrently and leases are per volume: this one uses volume 2 alone.
  const volume = 2;
  const req = (over: Partial<RequestHeader>): Omit<RequestHeader, 'id'> => baseReq({ volume, ...over });
  const view = ClusterView.fromConfig(cluster.config);
  const members = view.members(volume, 0, 0);
  const primaryNode = view.nodeOf(members[0]);
  const c = client(primaryNode);
  await c.connect();
  let r = await c.request(req({ epoch: 0, partition: members[0] }));
  t.is(r.h.status, Status.StaleEpoch);
  t.is(r.h.aux, r.h.epoch, 'the reply names the node\'s epoch');
  r = await c.request(req({ partition: 999999 }));
  t.is(r.h.status, Status.NoPartition);
  r = await c.request(req({ partition: members[0], pages: 0 }));
  t.is(r.h.status, Status.Invalid);
  r = await c.request(req({ op: Op.Write, partition: members[0], members, pages: 1 }), Buffer.alloc(100));
  t.is(r.h.status, Status.Invalid, 'payload length must match the page count');
  r = await c.request(req({ op: Op.Write, partition: members[0], members, lease: 7, version: writeVersion(6, 1) }), Buffer.alloc(4096, 1));
  t.is(r.h.status, Status.Invalid, 'a version that its lease generation did not make is refused');
  r = await c.request(req({ op: Op.Write, partition: members[0], members: members.slice(1), lease: 7, version: writeVersion(7, 1) }), Buffer.alloc(4096, 1));
  t.is(r.h.status, Status.Invalid, 'members must include the target');
  r = await c.request(req({ op: Op.Write, partition: members[0], members, absent: 1, lease: 7, version: writeVersion(7, 1) }), Buffer.alloc(4096, 1));
  t.is(r.h.status, Status.Invalid, 'the target cannot be absent');
  r = await c.request(req({ op: Op.Write, partition: members[0], members, absent: 1 << 5, lease: 7, version: writeVersion(7, 1) }), Buffer.alloc(4096, 1));
  t.is(r.h.status, Status.Invalid, 'an absent bit beyond the members');
  r = await c.request(req({ op: Op.Versions, partition: members[0], pages: 0 }));
  t.is(r.h.status, Status.Invalid, 'an extent of 0 pages');
  r = await c.request(req({ op: Op.Put, partition: members[0], pages: 2 }), encodePut([{ page: 0, version: 5, trim: true }]));
  t.is(r.h.status, Status.Invalid, 'a put whose entries do not match its count');
  r = await c.request(req({ op: Op.Put, partition: members[0], pages: 1 }), encodePut([{ page: 300, version: 5, trim: true }]));
  t.is(r.h.status, Status.Invalid, 'a put beyond the extent');
  r = await c.request(req({ op: Op.Write, partition: members[0], members, lease: 7, version: writeVersion(7, 1) }), Buffer.alloc(4096, 1));
  t.is(r.h.status, Status.Ok);
  r = await c.request(req({ op: Op.Write, partition: members[0], members, lease: 6, version: writeVersion(6, 2) }), Buffer.alloc(4096, 2));
  t.is(r.h.status, Status.Fenced, 'an older lease generation is fenced');
  t.is(r.h.aux, 7);
  r = await c.request(req({ partition: members[0], lease: 7 }));
  t.is(r.payload[0], 1, 'the fenced write changed nothing');
  c.close();
});

test('a write each member acknowledged is on every member with one version, and a flush makes it durable', async (t) => {
  const volume = 3;
  const req = (over: Partial<RequestHeader>): Omit<RequestHeader, 'id'> => baseReq({ volume, ...over });
  const view = ClusterView.fromConfig(cluster.config);
  const extent = 5;
  const members = view.members(volume, extent, 0);
  t.is(members.length, 3);
  t.is(new Set(members.map((m) => view.nodeOf(m))).size, 3, 'three different nodes');
  const data = randomBytes(8 * 4096);
  const version = writeVersion(100, 42);
  for (const m of members) {
    const c = client(view.nodeOf(m));
    await c.connect();
    const w = await c.request(req({ op: Op.Write, extent, partition: m, members, firstPage: 8, pages: 8, lease: 100, version }), data);
    t.is(w.h.status, Status.Ok);
    c.close();
  }
  for (const m of members) {
    const c = client(view.nodeOf(m));
    await c.connect();
    const r = await c.request(req({ extent, partition: m, firstPage: 8, pages: 8, lease: 100 }));
    t.is(r.h.status, Status.Ok);
    t.true(r.payload.equals(data), `member ${m} holds the data`);
    const v = await c.request(req({ op: Op.Versions, extent, partition: m, pages: 256 }));
    t.deepEqual(decodeVersions(v.payload).map((x) => x.version), Array(8).fill(version), `member ${m} holds version ${version} of pages 8-15`);
    t.is((await c.request(req({ op: Op.Flush, pages: 0 }))).h.status, Status.Ok);
    c.close();
  }
});
