/**
 * Malformed and hostile PDUs (issue 5, must-show 4): each gets the spec's answer — a
 * C2HTermReq with the right Fatal Error Status and a closed connection, or a command status —
 * while a bystander association on the same target keeps doing verified I/O. Ends with a fuzz
 * of thousands of random PDUs.
 */
import test from 'ava';
import { randomBytes, randomInt } from 'node:crypto';
import { join } from 'node:path';
import { AdminOpc, FcType, IoOpc, SglId, buildSqe } from '../../src/nvmf/command.ts';
import { NvmeStatus as S } from '../../src/nvmf/index.ts';
import {
  Fes,
  PduFlag,
  PduType,
  capsuleCmdHeader,
  crcOf,
  dataHeader,
  encodeICReq,
  encodeTermReq,
  framePdu,
  writeCommonHeader,
} from '../../src/nvmf/pdu.ts';
import { FileBlockDevice } from '../../src/volume/index.ts';
import { openSession, TestHost, type Session } from './helpers/host.ts';
import { HOSTNQN, SUBNQN, startFixture, type Fixture } from './helpers/fixture.ts';

const FUZZNQN = 'nqn.2024-01.io.cairn:test:fuzz';

/** A bystander doing verified writes and reads until stopped; resolves with the op count. */
function bystander(s: Session): { stop: () => Promise<number>; errors: string[] } {
  const errors: string[] = [];
  let running = true;
  let ops = 0;
  const loop = (async () => {
    while (running) {
      const lba = randomInt(0, 1024);
      const data = randomBytes(4096 * randomInt(1, 9));
      const w = await s.io.write(1, lba, data, { inCapsule: data.length <= 16384 && Math.random() < 0.5 });
      if (w.status !== 0) errors.push(`write status 0x${w.status.toString(16)}`);
      const r = await s.io.read(1, lba, data.length / 4096);
      if (r.cqe.status !== 0 || !r.data!.equals(data)) errors.push(`read back mismatch at ${lba}`);
      ops++;
    }
  })().catch((e: Error) => errors.push(`bystander: ${e.message}`));
  return {
    errors,
    stop: async () => {
      running = false;
      await loop;
      return ops;
    },
  };
}

interface Env {
  f: Fixture;
  fuzzDev: FileBlockDevice;
  by: Session;
  watch: ReturnType<typeof bystander>;
}

async function setup(): Promise<Env> {
  const f = await startFixture();
  const fuzzDev = await FileBlockDevice.open(join(f.dir, 'fuzz.img'), { size: 4 << 20 });
  f.target.addSubsystem({ nqn: FUZZNQN, allowHosts: 'any', namespaces: [{ nsid: 1, device: fuzzDev }] });
  const by = await openSession(f.port.trsvcid, SUBNQN, HOSTNQN, { hdgst: true, ddgst: true });
  return { f, fuzzDev, by, watch: bystander(by) };
}

async function teardown(t: { is: (a: unknown, b: unknown, m?: string) => void; deepEqual: (a: unknown, b: unknown, m?: string) => void; true: (a: boolean, m?: string) => void }, e: Env): Promise<void> {
  const ops = await e.watch.stop();
  t.deepEqual(e.watch.errors, [], 'bystander saw no error');
  t.true(ops > 0, 'bystander made progress');
  // The bystander's association is still usable afterwards.
  t.is((await e.by.admin.identify(1)).cqe.status, 0);
  e.by.close();
  await e.f.close();
  await e.fuzzDev.close();
}

/** Waits for the target to close `h`; returns the termination request it sent (if any). */
async function closedWith(h: TestHost, ms = 15000): Promise<{ fes: number; fei: number } | undefined> {
  await Promise.race([h.closed, new Promise((_, rej) => setTimeout(() => rej(new Error('connection not closed by the target')), ms))]);
  return h.termReq && { fes: h.termReq.fes, fei: h.termReq.fei };
}

function pdu(type: number, hlen: number, plen: number, o: { flags?: number; pdo?: number; body?: Buffer } = {}): Buffer {
  const b = Buffer.alloc(Math.max(8, Math.min(plen, 4096)));
  writeCommonHeader(b, { type, flags: o.flags ?? 0, hlen, pdo: o.pdo ?? 0, plen });
  o.body?.copy(b, 8);
  return b;
}

test.serial('malformed PDUs get a C2HTermReq with the spec FES/FEI and a closed connection', async (t) => {
  const e = await setup();
  const port = e.f.port.trsvcid;
  const cases: Array<[string, (h: TestHost) => void, { fes: number; fei?: number } | 'silent', boolean]> = [
    ['unknown PDU type', (h) => h.sendRaw(pdu(0x0a, 24, 24)), { fes: Fes.INVALID_HEADER_FIELD, fei: 0 }, true],
    ['unknown PDU type before ICReq', (h) => h.sendRaw(pdu(0x55, 24, 24)), { fes: Fes.INVALID_HEADER_FIELD, fei: 0 }, false],
    ['controller-to-host PDU type from the host (R2T)', (h) => h.sendRaw(pdu(PduType.R2T, 24, 24)), { fes: Fes.INVALID_HEADER_FIELD, fei: 0 }, true],
    ['capsule before ICReq', (h) => h.sendRaw(framePdu(capsuleCmdHeader(buildSqe({ opcode: 0x06, cid: 1 })), undefined, { hdgst: false, ddgst: false })), { fes: Fes.PDU_SEQUENCE_ERROR }, false],
    ['ICReq with HLEN 100', (h) => h.sendRaw(pdu(PduType.ICReq, 100, 128)), { fes: Fes.INVALID_HEADER_FIELD, fei: 2 }, false],
    ['ICReq with PLEN 64', (h) => h.sendRaw(pdu(PduType.ICReq, 128, 64)), { fes: Fes.INVALID_HEADER_FIELD, fei: 4 }, false],
    ['ICReq with PFV 1', (h) => { const b = encodeICReq({ pfv: 1, hpda: 0, hdgst: false, ddgst: false, maxr2t: 0 }); h.sendRaw(b); }, { fes: Fes.UNSUPPORTED_PARAMETER, fei: 8 }, false],
    ['ICReq with HPDA 32', (h) => h.sendRaw(encodeICReq({ pfv: 0, hpda: 32, hdgst: false, ddgst: false, maxr2t: 0 })), { fes: Fes.INVALID_HEADER_FIELD, fei: 10 }, false],
    ['second ICReq', (h) => h.sendRaw(encodeICReq({ pfv: 0, hpda: 0, hdgst: false, ddgst: false, maxr2t: 0 })), { fes: Fes.PDU_SEQUENCE_ERROR }, true],
    ['capsule with HLEN 24', (h) => h.sendRaw(pdu(PduType.CapsuleCmd, 24, 72)), { fes: Fes.INVALID_HEADER_FIELD, fei: 2 }, true],
    ['capsule with reserved flag bits', (h) => h.sendRaw(pdu(PduType.CapsuleCmd, 72, 72, { flags: 0x10 })), { fes: Fes.INVALID_HEADER_FIELD, fei: 1 }, true],
    ['capsule with PLEN of 1 GiB (never buffered)', (h) => h.sendRaw(pdu(PduType.CapsuleCmd, 72, 1 << 30, { pdo: 72 })), { fes: Fes.INVALID_HEADER_FIELD, fei: 4 }, true],
    ['capsule with PLEN shorter than HLEN', (h) => h.sendRaw(pdu(PduType.CapsuleCmd, 72, 40)), { fes: Fes.INVALID_HEADER_FIELD, fei: 4 }, true],
    ['capsule with PDO inside the header', (h) => h.sendRaw(pdu(PduType.CapsuleCmd, 72, 200, { pdo: 16 })), { fes: Fes.INVALID_HEADER_FIELD, fei: 3 }, true],
    ['CapsuleResp PDU with data', (h) => h.sendRaw(pdu(PduType.CapsuleResp, 24, 24)), { fes: Fes.INVALID_HEADER_FIELD, fei: 0 }, true],
    ['H2CData with an unknown TTAG', (h) => h.sendRaw(framePdu(dataHeader(PduType.H2CData, { cccid: 1, ttag: 77, offset: 0, length: 4096 }), Buffer.alloc(4096), h.digestMode, 4, PduFlag.LAST_PDU)), { fes: Fes.INVALID_HEADER_FIELD, fei: 10 }, true],
    ['H2CData without data', (h) => h.sendRaw(pdu(PduType.H2CData, 24, 24)), { fes: Fes.INVALID_HEADER_FIELD }, true],
    ['malformed H2CTermReq (PLEN 500)', (h) => h.sendRaw(pdu(PduType.H2CTermReq, 24, 500)), 'silent', true],
  ];
  for (const [name, send, want, ic] of cases) {
    const h = ic ? await TestHost.open(port) : await TestHost.raw(port);
    send(h);
    const got = await closedWith(h);
    if (want === 'silent') t.is(got, undefined, `${name}: closed without a termination request`);
    else {
      t.truthy(got, `${name}: a C2HTermReq`);
      t.is(got?.fes, want.fes, `${name}: FES`);
      if (want.fei !== undefined) t.is(got?.fei, want.fei, `${name}: FEI`);
      t.true(h.termReq!.errorData.length >= 8 && h.termReq!.errorData.length <= 128, `${name}: the offending header is echoed`);
    }
  }
  // A host's own H2CTermReq just ends its connection.
  const h = await TestHost.open(port);
  h.sendRaw(encodeTermReq(PduType.H2CTermReq, Fes.PDU_SEQUENCE_ERROR, 0));
  t.is(await closedWith(h), undefined);
  await teardown(t, e);
});

test.serial('digest errors: header digest is fatal (FES 3); data digest fails only the command (Transient Transport Error)', async (t) => {
  const e = await setup();
  const port = e.f.port.trsvcid;
  const mode = { hdgst: true, ddgst: true };
  // Header digest flag missing although negotiated.
  let h = await TestHost.open(port, '127.0.0.1', mode);
  h.sendRaw(framePdu(capsuleCmdHeader(buildSqe({ opcode: 0x06, cid: 1 })), undefined, { hdgst: false, ddgst: false }));
  t.deepEqual(await closedWith(h), { fes: Fes.INVALID_HEADER_FIELD, fei: 1 });
  // Wrong header digest.
  h = await TestHost.open(port, '127.0.0.1', mode);
  const bad = framePdu(capsuleCmdHeader(buildSqe({ opcode: 0x06, cid: 1 })), undefined, mode);
  bad[0].writeUInt32LE((bad[0].readUInt32LE(72) ^ 1) >>> 0, 72);
  h.sendRaw(bad);
  t.deepEqual(await closedWith(h), { fes: Fes.HEADER_DIGEST_ERROR, fei: 0 });
  // Wrong data digest on in-capsule data and on H2CData: the command fails, the queue lives on.
  const s = await openSession(port, SUBNQN, HOSTNQN, mode);
  t.is((await s.io.write(1, 2000, randomBytes(8192), { inCapsule: true })).status, 0, 'well-formed writes succeed');
  // Now a write whose H2CData digest is wrong: hand-built on the raw socket.
  const cid = 950;
  const w2 = buildSqe({ opcode: IoOpc.WRITE, cid, nsid: 1, sglLength: 4096, cdw: { 10: 2100, 12: 0 } });
  const before = (await s.io.read(1, 2100, 1)).data!;
  const status = await new Promise<number>((resolve) => {
    const onData = (c: Buffer): void => {
      // R2T for our command: answer with a corrupted H2CData data digest.
      if (c[0] === PduType.R2T && c.readUInt16LE(8) === cid) {
        const ttag = c.readUInt16LE(10);
        const pdus = framePdu(dataHeader(PduType.H2CData, { cccid: cid, ttag, offset: 0, length: 4096 }), randomBytes(4096), mode, 4, PduFlag.LAST_PDU);
        pdus[2] = Buffer.from([9, 9, 9, 9]);
        s.io.sendRaw(pdus);
      }
      if (c[0] === PduType.CapsuleResp && c.readUInt16LE(8 + 12) === cid) {
        s.io.socket.off('data', onData);
        resolve((c.readUInt16LE(8 + 14) >> 1) & 0x7fff);
      }
    };
    s.io.socket.on('data', onData);
    s.io.sendRaw(framePdu(capsuleCmdHeader(w2), undefined, mode));
  });
  t.is(status, S.TRANSIENT_TRANSPORT_ERROR);
  t.deepEqual((await s.io.read(1, 2100, 1)).data, before, 'the corrupt data was not written');
  // In-capsule data with a bad digest.
  const st2 = await new Promise<number>((resolve) => {
    const c3 = 960;
    const onData = (c: Buffer): void => {
      if (c[0] === PduType.CapsuleResp && c.readUInt16LE(8 + 12) === c3) {
        s.io.socket.off('data', onData);
        resolve((c.readUInt16LE(8 + 14) >> 1) & 0x7fff);
      }
    };
    s.io.socket.on('data', onData);
    const q = framePdu(capsuleCmdHeader(buildSqe({ opcode: IoOpc.WRITE, cid: c3, nsid: 1, sglId: SglId.IN_CAPSULE, sglLength: 4096, cdw: { 10: 2100, 12: 0 } })), randomBytes(4096), mode);
    q[2] = Buffer.from([0, 0, 0, 0]);
    s.io.sendRaw(q);
  });
  t.is(st2, S.TRANSIENT_TRANSPORT_ERROR);
  t.deepEqual((await s.io.read(1, 2100, 1)).data, before);
  s.close();
  await teardown(t, e);
});

test.serial('commands before Connect get Command Sequence Error and the connection is closed', async (t) => {
  const e = await setup();
  for (const sqe of [
    buildSqe({ opcode: AdminOpc.IDENTIFY, cid: 1, sglLength: 4096, cdw: { 10: 1 } }),
    buildSqe({ opcode: AdminOpc.FABRICS, fctype: FcType.PROPERTY_GET, cid: 2 }),
    buildSqe({ opcode: IoOpc.READ, cid: 3, nsid: 1, sglLength: 4096 }),
  ]) {
    const h = await TestHost.open(e.f.port.trsvcid);
    const r = await h.submit(sqe);
    t.is(r.cqe.status, S.CMD_SEQUENCE_ERROR);
    t.is(r.data, undefined, 'no data leaked');
    await closedWith(h);
  }
  // I/O queue Connect for a controller that was never enabled.
  const a = await TestHost.open(e.f.port.trsvcid);
  const c = await a.connect(SUBNQN, HOSTNQN);
  const q = await TestHost.open(e.f.port.trsvcid);
  t.is((await q.connect(SUBNQN, HOSTNQN, { qid: 1, cntlid: c.result & 0xffff })).status, S.CMD_SEQUENCE_ERROR);
  a.close();
  q.close();
  await teardown(t, e);
});

test.serial('data transfer abuse: beyond MAXH2CDATA, outside the R2T, out of order, too many commands', async (t) => {
  const e = await setup();
  const port = e.f.port.trsvcid;
  const r2tFor = async (s: Session, cid: number, len: number): Promise<number> =>
    new Promise<number>((resolve) => {
      const onData = (c: Buffer): void => {
        if (c[0] === PduType.R2T && c.readUInt16LE(8) === cid) {
          s.io.socket.off('data', onData);
          resolve(c.readUInt16LE(10));
        }
      };
      s.io.socket.on('data', onData);
      s.io.sendRaw(framePdu(capsuleCmdHeader(buildSqe({ opcode: IoOpc.WRITE, cid, nsid: 1, sglLength: len, cdw: { 10: 0, 12: len / 4096 - 1 } })), undefined, s.io.digestMode));
    });
  const mode = { hdgst: false, ddgst: false };
  // DATAL above MAXH2CDATA (announced in ICResp): rejected from the header, before the data.
  let s = await openSession(port, FUZZNQN, HOSTNQN);
  const maxh2c = s.io.icresp.maxh2cdata;
  let ttag = await r2tFor(s, 10, 1 << 20);
  const huge = dataHeader(PduType.H2CData, { cccid: 10, ttag, offset: 0, length: maxh2c + 4096 });
  writeCommonHeader(huge, { type: PduType.H2CData, flags: PduFlag.LAST_PDU, hlen: 24, pdo: 24, plen: 24 + maxh2c + 4096 });
  s.io.sendRaw(huge);
  t.deepEqual(await closedWith(s.io), { fes: Fes.DATA_LIMIT_EXCEEDED, fei: 0 });
  s.close();
  // Data beyond the R2T's range.
  s = await openSession(port, FUZZNQN, HOSTNQN);
  ttag = await r2tFor(s, 11, 8192);
  s.io.sendRaw(framePdu(dataHeader(PduType.H2CData, { cccid: 11, ttag, offset: 4096, length: 8192 }), Buffer.alloc(8192), mode, 4, PduFlag.LAST_PDU));
  t.deepEqual(await closedWith(s.io), { fes: Fes.DATA_OUT_OF_RANGE, fei: 0 });
  s.close();
  // Out of order DATAO, and a CCCID that does not match the TTAG.
  s = await openSession(port, FUZZNQN, HOSTNQN);
  ttag = await r2tFor(s, 12, 8192);
  s.io.sendRaw(framePdu(dataHeader(PduType.H2CData, { cccid: 12, ttag, offset: 4096, length: 4096 }), Buffer.alloc(4096), mode, 4, PduFlag.LAST_PDU));
  t.deepEqual(await closedWith(s.io), { fes: Fes.INVALID_HEADER_FIELD, fei: 12 });
  s.close();
  s = await openSession(port, FUZZNQN, HOSTNQN);
  ttag = await r2tFor(s, 13, 4096);
  s.io.sendRaw(framePdu(dataHeader(PduType.H2CData, { cccid: 14, ttag, offset: 0, length: 4096 }), Buffer.alloc(4096), mode, 4, PduFlag.LAST_PDU));
  t.deepEqual(await closedWith(s.io), { fes: Fes.INVALID_HEADER_FIELD, fei: 8 });
  s.close();
  // LAST_PDU before the R2T's data is complete.
  s = await openSession(port, FUZZNQN, HOSTNQN);
  ttag = await r2tFor(s, 15, 8192);
  s.io.sendRaw(framePdu(dataHeader(PduType.H2CData, { cccid: 15, ttag, offset: 0, length: 4096 }), Buffer.alloc(4096), mode, 4, PduFlag.LAST_PDU));
  t.deepEqual(await closedWith(s.io), { fes: Fes.INVALID_HEADER_FIELD, fei: 1 });
  s.close();
  // More commands in flight than the queue holds (SQSIZE 127 → 128 entries).
  s = await openSession(port, FUZZNQN, HOSTNQN);
  for (let cid = 1; cid <= 129; cid++) {
    s.io.sendRaw(framePdu(capsuleCmdHeader(buildSqe({ opcode: IoOpc.WRITE, cid, nsid: 1, sglLength: 4096, cdw: { 10: cid } })), undefined, mode));
  }
  t.deepEqual(await closedWith(s.io), { fes: Fes.PDU_SEQUENCE_ERROR, fei: 0 });
  s.close();
  // A duplicate CID while the first is in flight: Command ID Conflict, and the queue lives on.
  s = await openSession(port, FUZZNQN, HOSTNQN);
  ttag = await r2tFor(s, 20, 4096);
  const dup = await s.io.submit(buildSqe({ opcode: IoOpc.FLUSH, cid: 20, nsid: 1 }));
  t.is(dup.cqe.status, S.CID_CONFLICT);
  t.is((await s.io.write(1, 0, randomBytes(4096))).status, 0);
  s.close();
  await teardown(t, e);
});

/** One fuzz round on a fresh connection; returns how it ended. */
async function fuzzOne(port: number): Promise<'term' | 'closed' | 'open'> {
  const kind = randomInt(0, 4);
  const h = kind === 0 ? await TestHost.raw(port) : await TestHost.open(port, '127.0.0.1', { hdgst: kind === 3, ddgst: kind === 3 });
  if (kind === 0) {
    h.sendRaw(randomBytes(randomInt(1, 600)));
  } else if (kind === 1) {
    // A plausible common header (known type, small lengths) with random contents.
    const types = [0, 1, 2, 3, 4, 5, 6, 7, 9];
    const type = types[randomInt(0, types.length)];
    const hlen = [8, 24, 72, 128, randomInt(0, 256)][randomInt(0, 5)];
    const plen = randomInt(0, 2) ? hlen + randomInt(0, 300) : randomInt(0, 2 ** 32);
    const body = randomBytes(Math.min(plen, 600));
    writeCommonHeader(body, { type, flags: randomInt(0, 256), hlen, pdo: randomInt(0, 256), plen });
    h.sendRaw(body);
  } else {
    // A connected admin queue, then capsules with random SQEs (and sometimes random data).
    const c = await h.connect(FUZZNQN, HOSTNQN).catch(() => undefined);
    if (!c) return 'closed';
    for (let i = 0; i < randomInt(1, 6); i++) {
      const sqe = randomBytes(64);
      if (randomInt(0, 2)) sqe[0] = [0x7f, 0x06, 0x02, 0x09, 0x0a, 0x0c, 0x18, 0x08][randomInt(0, 8)];
      if (sqe[0] === 0x7f && randomInt(0, 2)) sqe[4] = [0, 1, 4, 8][randomInt(0, 4)];
      const data = randomInt(0, 3) === 0 ? randomBytes(randomInt(1, 2048)) : undefined;
      const parts = framePdu(capsuleCmdHeader(sqe), data, h.digestMode);
      if (randomInt(0, 10) === 0) parts[0][randomInt(0, parts[0].length)] ^= 1 << randomInt(0, 8);
      h.sendRaw(parts);
    }
  }
  const end = await Promise.race([h.closed.then(() => 'closed' as const), new Promise<'open'>((r) => setTimeout(() => r('open'), 300))]);
  h.close();
  if (end === 'closed' && h.termReq) return 'term';
  return end;
}

test.serial('fuzz: thousands of random PDUs never disturb other connections', async (t) => {
  const e = await setup();
  const rounds = Number(process.env.CAIRN_FUZZ_ROUNDS ?? 2000);
  const tally = { term: 0, closed: 0, open: 0 };
  const workers = 16;
  let next = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < rounds) {
        next++;
        tally[await fuzzOne(e.f.port.trsvcid)]++;
      }
    }),
  );
  t.log(`fuzz: ${rounds} rounds: ${tally.term} termination requests, ${tally.closed} closed, ${tally.open} still open`);
  t.is(tally.term + tally.closed + tally.open, rounds);
  t.true(tally.term > rounds / 10, 'malformed streams get termination requests (about half the rounds on a quiet host)');
  // Every connection the fuzzer opened is gone; only the bystander's two remain.
  for (let i = 0; i < 200 && e.f.target.connectionCount > 2; i++) await new Promise((r) => setTimeout(r, 50));
  t.is(e.f.target.connectionCount, 2);
  await teardown(t, e);
});
