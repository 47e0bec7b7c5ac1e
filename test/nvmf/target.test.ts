/**
 * The NVMe/TCP target against our own host client over real TCP and a real file: fabrics,
 * admin and I/O commands, digests, status codes, shutdown, keep-alive, discovery, allow-list.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { buildSqe, IoOpc, SglId } from '../../src/nvmf/command.ts';
import { DISCOVERY_NQN, NvmeStatus as S, uuidString } from '../../src/nvmf/index.ts';
import { openSession, TestHost } from './helpers/host.ts';
import { HOSTNQN, SUBNQN, startFixture } from './helpers/fixture.ts';

const ascii = (b: Buffer, off: number, len: number) => b.toString('latin1', off, off + len).trim();
const nqnAt = (b: Buffer, off: number) => b.toString('utf8', off, b.indexOf(0, off));

test('connect, properties, enable; identify controller and namespace', async (t) => {
  const f = await startFixture();
  t.teardown(() => f.close());
  const admin = await TestHost.open(f.port.trsvcid);
  t.is(admin.icresp.pfv, 0);
  t.is(admin.icresp.cpda, 0);
  t.true(admin.icresp.maxh2cdata >= 4096 && admin.icresp.maxh2cdata % 4 === 0);
  const c = await admin.connect(SUBNQN, HOSTNQN, { kato: 10000 });
  t.is(c.status, 0);
  const cntlid = c.result & 0xffff;
  t.true(cntlid >= 1 && cntlid <= 0xffef);
  const cap = (await admin.propGet(0, true)).value;
  t.is(Number(cap & 0xffffn), 127, 'MQES');
  t.is(Number((cap >> 37n) & 1n), 1, 'NVM command set');
  t.is(Number((await admin.propGet(0x08)).value), 0x00020000, 'VS 2.0');
  // Admin commands other than fabrics ones are refused until CC.EN=1.
  t.is((await admin.identify(1)).cqe.status, S.CMD_SEQUENCE_ERROR);
  t.is((await admin.enable()) & 1, 1);
  const id = (await admin.identify(1)).data!;
  t.is(id.length, 4096);
  t.is(id.readUInt16LE(78), cntlid, 'CNTLID');
  t.is(ascii(id, 24, 40), 'Cairn volume');
  t.is(ascii(id, 4, 20).length, 20, 'serial');
  t.is(nqnAt(id, 768), SUBNQN);
  t.is(id[76], 0x0b, 'CMIC: multi-port, multi-controller, ANA');
  t.is(id[77], 8, 'MDTS = 1 MiB');
  t.is(id.readUInt32LE(516), 128, 'NN');
  t.is(id.readUInt32LE(540), 128, 'MNAN');
  t.is(id[525] & 1, 1, 'volatile write cache present');
  t.is(id.readUInt32LE(1792), (64 + 16384) / 16, 'IOCCSZ');
  t.is(id[111], 1, 'I/O controller');
  t.is(id[343], 0x5f, 'ANACAP');
  t.is(id.readUInt32LE(344), 128, 'ANAGRPMAX');
  t.is(id.readUInt32LE(348), 128, 'NANAGRPID (hosts size the ANA log page from it)');
  t.is(id.readUInt16LE(514), 128, 'MAXCMD');
  const ns = (await admin.identify(0, 1)).data!;
  t.is(Number(ns.readBigUInt64LE(0)), (16 << 20) / 4096, 'NSZE');
  t.is((ns.readUInt32LE(128) >> 16) & 0xff, 12, '4 KiB LBA');
  t.is(ns.readUInt32LE(92), 1, 'ANAGRPID');
  t.is(ns[30] & 1, 1, 'shared namespace');
  t.true(Number(ns.readBigUInt64LE(16)) <= Number(ns.readBigUInt64LE(0)), 'NUSE ≤ NSZE');
  const list = (await admin.identify(2, 0)).data!;
  t.is(list.readUInt32LE(0), 1);
  t.is(list.readUInt32LE(4), 0);
  const desc = (await admin.identify(3, 1)).data!;
  t.deepEqual([desc[0], desc[1]], [2, 16]);
  t.deepEqual(desc.subarray(4, 20), ns.subarray(104, 120), 'NGUID in descriptors = NGUID in Identify Namespace');
  t.deepEqual([desc[20], desc[21]], [3, 16]);
  t.regex(uuidString(desc.subarray(24, 40)), /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  t.is((await admin.identify(0, 7)).data!.readBigUInt64LE(0), 0n, 'inactive NSID: zero-filled');
  t.is((await admin.identify(0, 0)).cqe.status, S.INVALID_NS);
  t.is((await admin.identify(0x1f)).cqe.status, S.INVALID_FIELD);
  admin.close();
});

test('writes (R2T and in-capsule) read back, land in the file, and Compare/Write Zeroes/DSM/Flush work', async (t) => {
  const f = await startFixture();
  t.teardown(() => f.close());
  const s = await openSession(f.port.trsvcid, SUBNQN, HOSTNQN);
  const a = randomBytes(256 * 1024);
  const b = randomBytes(8192);
  t.is((await s.io.write(1, 10, a)).status, 0);
  t.is((await s.io.write(1, 200, b, { inCapsule: true, fua: true })).status, 0);
  t.deepEqual((await s.io.read(1, 10, 64)).data, a);
  t.deepEqual((await s.io.read(1, 200, 2)).data, b);
  const file = readFileSync(join(f.dir, 'vol0.img'));
  t.deepEqual(file.subarray(10 * 4096, 10 * 4096 + a.length), a);
  // Compare: equal, then different.
  const cmp = (data: Buffer) => s.io.submit(buildSqe({ opcode: IoOpc.COMPARE, cid: s.io.cid(), nsid: 1, sglLength: data.length, cdw: { 10: 200, 12: data.length / 4096 - 1 } }), { h2c: data });
  t.is((await cmp(b)).cqe.status, 0);
  t.is((await cmp(randomBytes(8192))).cqe.status, S.COMPARE_FAILURE);
  // Write Zeroes over 2 blocks of `a`.
  const wz = await s.io.submit(buildSqe({ opcode: IoOpc.WRITE_ZEROES, cid: s.io.cid(), nsid: 1, cdw: { 10: 12, 12: 1 } }));
  t.is(wz.cqe.status, 0);
  const r = (await s.io.read(1, 10, 4)).data!;
  t.deepEqual(r.subarray(8192), Buffer.alloc(8192));
  t.deepEqual(r.subarray(0, 8192), a.subarray(0, 8192));
  // Dataset Management, deallocate two ranges.
  const ranges = Buffer.alloc(32);
  ranges.writeUInt32LE(1, 4);
  ranges.writeUInt32LE(20, 8);
  ranges.writeUInt32LE(2, 16 + 4);
  ranges.writeUInt32LE(200, 16 + 8);
  const dsm = await s.io.submit(buildSqe({ opcode: IoOpc.DSM, cid: s.io.cid(), nsid: 1, sglId: SglId.IN_CAPSULE, sglLength: 32, cdw: { 10: 1, 11: 4 } }), { h2c: ranges, inCapsule: true });
  t.is(dsm.cqe.status, 0);
  t.deepEqual((await s.io.read(1, 200, 2)).data, Buffer.alloc(8192));
  t.deepEqual((await s.io.read(1, 20, 1)).data, Buffer.alloc(4096));
  t.deepEqual((await s.io.read(1, 21, 1)).data, a.subarray(11 * 4096, 12 * 4096));
  // Flush one namespace and all namespaces.
  t.is((await s.io.submit(buildSqe({ opcode: IoOpc.FLUSH, cid: s.io.cid(), nsid: 1 }))).cqe.status, 0);
  t.is((await s.io.submit(buildSqe({ opcode: IoOpc.FLUSH, cid: s.io.cid(), nsid: 0xffffffff }))).cqe.status, 0);
  // SMART / Health counts what went through.
  const smart = (await s.admin.getLogPage(0x02, 512)).data!;
  t.true(smart.readBigUInt64LE(48) >= BigInt(Math.ceil((a.length + b.length) / 512000)), 'data units written');
  t.true(smart.readBigUInt64LE(80) >= 2n, 'host write commands');
  s.close();
});

test('header and data digests; HPDA-aligned C2HData; H2CData split in several PDUs; many commands in flight', async (t) => {
  const f = await startFixture();
  t.teardown(() => f.close());
  // HPDA 7: C2HData payloads must start at a multiple of 32 bytes (the client's reader checks PDO).
  const s = await openSession(f.port.trsvcid, SUBNQN, HOSTNQN, { hdgst: true, ddgst: true, hpda: 7, h2cChunk: 12288 });
  t.true(s.io.icresp.hdgst && s.io.icresp.ddgst);
  const blocks = Array.from({ length: 64 }, () => randomBytes(64 * 1024));
  const w = await Promise.all(blocks.map((d, i) => s.io.write(1, i * 16, d)));
  t.true(w.every((c) => c.status === 0));
  const r = await Promise.all(blocks.map((_, i) => s.io.read(1, i * 16, 16)));
  t.true(r.every((x, i) => x.cqe.status === 0 && x.data!.equals(blocks[i])));
  const big = randomBytes(1 << 20);
  t.is((await s.io.write(1, 1024, big)).status, 0, '1 MiB write = MDTS');
  t.deepEqual((await s.io.read(1, 1024, 256)).data, big);
  s.close();
});

test('spec status codes for bad I/O commands', async (t) => {
  const f = await startFixture();
  t.teardown(() => f.close());
  const s = await openSession(f.port.trsvcid, SUBNQN, HOSTNQN);
  const blocks = (16 << 20) / 4096;
  t.is((await s.io.read(1, blocks - 1, 2)).cqe.status, S.LBA_OUT_OF_RANGE);
  t.is((await s.io.read(1, 2 ** 40, 1)).cqe.status, S.LBA_OUT_OF_RANGE);
  t.is((await s.io.write(1, blocks, randomBytes(4096))).status, S.LBA_OUT_OF_RANGE);
  t.is((await s.io.read(2, 0, 1)).cqe.status, S.INVALID_NS);
  t.is((await s.io.submit(buildSqe({ opcode: 0x04, cid: s.io.cid(), nsid: 1 }))).cqe.status, S.INVALID_OPCODE, 'Write Uncorrectable not supported');
  t.is((await s.io.submit(buildSqe({ opcode: 0x7e, cid: s.io.cid(), nsid: 1 }))).cqe.status, S.INVALID_OPCODE);
  t.is((await s.io.submit(buildSqe({ opcode: IoOpc.READ, cid: s.io.cid(), nsid: 1, sglLength: 4096, cdw: { 12: 1 } }))).cqe.status, S.DATA_SGL_LENGTH_INVALID);
  t.is((await s.io.read(1, 0, 512)).cqe.status, S.INVALID_FIELD, '2 MiB > MDTS');
  t.is((await s.io.submit(buildSqe({ opcode: IoOpc.READ, cid: s.io.cid(), nsid: 1, sglLength: 4096, sglId: 0x00 }))).cqe.status, S.SGL_TYPE_INVALID);
  t.is((await s.io.submit(buildSqe({ opcode: IoOpc.READ, cid: s.io.cid(), nsid: 1, sglLength: 4096, psdt: 0 }))).cqe.status, S.INVALID_FIELD, 'PRPs are not for fabrics');
  const fused = buildSqe({ opcode: IoOpc.READ, cid: s.io.cid(), nsid: 1, sglLength: 4096 });
  fused[1] |= 1;
  t.is((await s.io.submit(fused)).cqe.status, S.INVALID_FIELD);
  // Admin: unknown log page, unknown feature, Get Log Page beyond the page, Set Features saveable.
  t.is((await s.admin.getLogPage(0x42, 512)).cqe.status, S.INVALID_LOG_PAGE);
  t.is((await s.admin.getLogPage(0x02, 512, { offset: 4096 })).cqe.status, S.INVALID_FIELD);
  t.is((await s.admin.setFeature(0x7d, 0)).status, S.INVALID_FIELD);
  t.is((await s.admin.setFeature(0x0b | 0x80000000, 0)).status, S.FEATURE_NOT_SAVEABLE);
  t.is((await s.admin.adminIn(0x80, 0)).cqe.status, S.INVALID_OPCODE, 'Format NVM not supported');
  // Every failure lands in the Error Information log, newest first.
  const elog = (await s.admin.getLogPage(0x01, 64 * 64)).data!;
  t.true(elog.readBigUInt64LE(0) >= 14n);
  t.is((elog.readUInt16LE(12) >> 1) & 0x7fff, S.INVALID_OPCODE);
  // The connection still works.
  t.is((await s.io.write(1, 0, randomBytes(4096))).status, 0);
  s.close();
});

test('features: number of queues, volatile write cache, keep alive timer, async event config', async (t) => {
  const f = await startFixture();
  t.teardown(() => f.close());
  const admin = await TestHost.open(f.port.trsvcid);
  await admin.connect(SUBNQN, HOSTNQN);
  await admin.enable();
  const nq = await admin.setFeature(0x07, (3 << 16) | 3);
  t.is(nq.status, 0);
  t.is(nq.result, (3 << 16) | 3);
  t.is((await admin.getFeature(0x07)).result, (3 << 16) | 3);
  t.is((await admin.getFeature(0x06)).result, 1, 'write cache on');
  t.is((await admin.setFeature(0x06, 0)).status, 0);
  t.is((await admin.getFeature(0x06)).result, 0);
  t.is((await admin.setFeature(0x0f, 30000)).status, 0);
  t.is((await admin.getFeature(0x0f)).result, 30000);
  t.is((await admin.setFeature(0x0b, 0xffffffff)).status, 0);
  t.is((await admin.getFeature(0x0b)).result, 0xff | (1 << 8) | (1 << 11), 'only supported events stick');
  t.is((await admin.getFeature(0x0b, 3)).result & 4, 4, 'changeable');
  // I/O queue ids above the granted count are refused.
  const cntlid = f.target.liveControllers()[0].cntlid;
  const q5 = await TestHost.open(f.port.trsvcid);
  t.is((await q5.connect(SUBNQN, HOSTNQN, { qid: 5, cntlid })).status, S.CONNECT_INVALID_PARAMETERS);
  const q4 = await TestHost.open(f.port.trsvcid);
  t.is((await q4.connect(SUBNQN, HOSTNQN, { qid: 4, cntlid })).status, 0);
  t.is((await admin.setFeature(0x07, 0)).status, S.CMD_SEQUENCE_ERROR, 'queue count is fixed once I/O queues exist');
  // With the cache off every write is durable on completion (FUA); the command still succeeds.
  t.is((await q4.write(1, 0, randomBytes(4096))).status, 0);
  for (const h of [admin, q5, q4]) h.close();
});

test('host NQN allow-list: an unknown host is refused at Connect; bad Connect parameters', async (t) => {
  const f = await startFixture();
  t.teardown(() => f.close());
  const h = await TestHost.open(f.port.trsvcid);
  const other = 'nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-0000000000bd';
  const c = await h.connect(SUBNQN, other);
  t.is(c.status, S.CONNECT_INVALID_HOST);
  t.is(c.result, (1 << 16) | 512, 'IATTR = data, IPO = HOSTNQN');
  t.is(f.target.liveControllers().length, 0);
  t.is((await h.connect('nqn.2024-01.io.cairn:test:nope', HOSTNQN)).status, S.CONNECT_INVALID_PARAMETERS);
  t.is((await h.connect('not an nqn', HOSTNQN)).result, (1 << 16) | 256);
  t.is((await h.connect(SUBNQN, HOSTNQN, { sqsize: 0 })).result, 44, 'IPO = SQSIZE in the SQE');
  t.is((await h.connect(SUBNQN, HOSTNQN, { cntlid: 5 })).status, S.CONNECT_INVALID_PARAMETERS, 'admin queue needs CNTLID FFFFh');
  // The allowed host gets in on the same connection; Connect over R2T works too.
  const ok = await h.connect(SUBNQN, HOSTNQN, { inCapsule: false });
  t.is(ok.status, 0);
  t.is((await h.connect(SUBNQN, HOSTNQN)).status, S.CMD_SEQUENCE_ERROR, 'second Connect on a queue');
  await h.enable();
  // I/O queue Connect: wrong host id, wrong controller id, wrong host.
  const cntlid = ok.result & 0xffff;
  const q = await TestHost.open(f.port.trsvcid);
  t.is((await q.connect(SUBNQN, HOSTNQN, { qid: 1, cntlid, hostid: Buffer.alloc(16, 0x22) })).result, (1 << 16) | 0);
  t.is((await q.connect(SUBNQN, HOSTNQN, { qid: 1, cntlid: cntlid + 1 })).result, (1 << 16) | 16);
  t.is((await q.connect(SUBNQN, other, { qid: 1, cntlid })).status, S.CONNECT_INVALID_HOST);
  t.is((await q.connect(SUBNQN, HOSTNQN, { qid: 1, cntlid })).status, 0);
  h.close();
  q.close();
});

test('shutdown handshake flushes and reports SHST complete; CC.EN=0 resets', async (t) => {
  const f = await startFixture();
  t.teardown(() => f.close());
  const s = await openSession(f.port.trsvcid, SUBNQN, HOSTNQN);
  t.is((await s.io.write(1, 0, randomBytes(4096))).status, 0);
  t.is((await s.admin.propSet(0x14, 1 | (6 << 16) | (4 << 20) | (1 << 14))).status, 0);
  let csts = 0;
  for (let i = 0; i < 100 && ((csts >> 2) & 3) !== 2; i++) {
    csts = Number((await s.admin.propGet(0x1c)).value);
    await new Promise((r) => setTimeout(r, 5));
  }
  t.is((csts >> 2) & 3, 2, 'SHST = shutdown complete');
  // Disable: the I/O queue is closed by the controller reset.
  t.is((await s.admin.propSet(0x14, 0)).status, 0);
  t.is(Number((await s.admin.propGet(0x1c)).value) & 1, 0, 'RDY cleared');
  await s.io.closed;
  t.pass();
  s.close();
});

test('Disconnect ends an I/O queue; it is not for the admin queue', async (t) => {
  const f = await startFixture();
  t.teardown(() => f.close());
  const s = await openSession(f.port.trsvcid, SUBNQN, HOSTNQN);
  const disconnect = (h: TestHost) => h.submit(buildSqe({ opcode: 0x7f, fctype: 0x08, cid: h.cid() }));
  t.is((await disconnect(s.admin)).cqe.status, S.INVALID_QUEUE_TYPE);
  t.is((await disconnect(s.io)).cqe.status, 0);
  await s.io.closed;
  t.is(f.target.liveControllers()[0].queues.has(1), false, 'queue 1 is gone');
  // The controller lives on: queue 1 can be connected again.
  const q = await TestHost.open(f.port.trsvcid);
  t.is((await q.connect(SUBNQN, HOSTNQN, { qid: 1, cntlid: s.cntlid })).status, 0);
  t.is((await q.write(1, 0, randomBytes(4096))).status, 0);
  q.close();
  s.close();
});

test('controller enable with unsupported queue entry sizes sets CSTS.CFS', async (t) => {
  const f = await startFixture();
  t.teardown(() => f.close());
  const h = await TestHost.open(f.port.trsvcid);
  await h.connect(SUBNQN, HOSTNQN);
  await h.propSet(0x14, 1 | (7 << 16) | (4 << 20));
  t.is(Number((await h.propGet(0x1c)).value) & 3, 2, 'CFS, not RDY');
  h.close();
});

test.serial('keep-alive timeout ends the association', async (t) => {
  const f = await startFixture();
  t.teardown(() => f.close());
  // KATO 2 s: the association ends after 2 × KATO without a command (margin for a busy host).
  const s = await openSession(f.port.trsvcid, SUBNQN, HOSTNQN, { kato: 2000 });
  t.is(f.target.liveControllers().length, 1);
  // Keep Alive keeps it up well past the expiry window...
  const t0 = Date.now();
  while (Date.now() - t0 < 6000) {
    await new Promise((r) => setTimeout(r, 500));
    t.is((await s.admin.adminIn(0x18, 0)).cqe.status, 0);
  }
  t.is(f.target.liveControllers().length, 1);
  // ...silence ends it.
  const quiet = Date.now();
  await Promise.all([s.admin.closed, s.io.closed]);
  t.true(Date.now() - quiet >= 2000, 'not before KATO');
  t.is(f.target.liveControllers().length, 0);
  t.true(f.logs.some((l) => /keep-alive timeout/.test(l)));
});

test('discovery controller lists every path of the subsystems the host may use', async (t) => {
  const f = await startFixture({ sub: { remotePaths: [{ portId: 2, traddr: '10.0.0.2', trsvcid: 4420 }, { portId: 3, traddr: 'fd00::3', trsvcid: 4421 }] } });
  t.teardown(() => f.close());
  f.target.addSubsystem({ nqn: 'nqn.2024-01.io.cairn:test:private', allowHosts: ['nqn.2024-01.io.cairn:someone-else'], namespaces: [{ nsid: 1, device: f.device }] });
  const d = await TestHost.open(f.port.trsvcid);
  t.is((await d.connect(DISCOVERY_NQN, HOSTNQN)).status, 0);
  await d.enable();
  const id = (await d.identify(1)).data!;
  t.is(id[111], 2, 'discovery controller');
  t.is(nqnAt(id, 768), DISCOVERY_NQN);
  t.is((await d.identify(0, 1)).cqe.status, S.INVALID_FIELD);
  const hdr = (await d.getLogPage(0x70, 1024)).data!;
  const numrec = Number(hdr.readBigUInt64LE(8));
  t.is(numrec, 3, 'local port + two remote paths; the private subsystem is hidden');
  const page = (await d.getLogPage(0x70, 1024 * (numrec + 1))).data!;
  const entries = Array.from({ length: numrec }, (_, i) => page.subarray(1024 * (i + 1), 1024 * (i + 2)));
  t.deepEqual(entries.map((e) => [e[0], e[1], e[2], e.readUInt16LE(4), ascii(e, 32, 32), ascii(e, 512, 256), nqnAt(e, 256)]), [
    [3, 1, 2, 1, String(f.port.trsvcid), '127.0.0.1', SUBNQN],
    [3, 1, 2, 2, '4420', '10.0.0.2', SUBNQN],
    [3, 2, 2, 3, '4421', 'fd00::3', SUBNQN],
  ]);
  // Read at an offset (how hosts page through large logs), and port-local entries only.
  const second = (await d.getLogPage(0x70, 1024, { offset: 2048 })).data!;
  t.deepEqual(second, entries[1]);
  const local = (await d.getLogPage(0x70, 1024, { lsp: 1 })).data!;
  t.is(Number(local.readBigUInt64LE(8)), 1);
  t.is(hdr.readBigUInt64LE(0), page.readBigUInt64LE(0), 'generation counter stable');
  // A discovery controller has no I/O queues.
  const q = await TestHost.open(f.port.trsvcid);
  t.is((await q.connect(DISCOVERY_NQN, HOSTNQN, { qid: 1, cntlid: f.target.liveControllers()[0].cntlid })).status, S.CONNECT_INVALID_PARAMETERS);
  d.close();
  q.close();
});
