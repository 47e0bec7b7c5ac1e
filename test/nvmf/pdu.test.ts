/**
 * The PDU codec and incremental reader: PDUs split at any byte boundary come out whole, with
 * digests checked, padding skipped and data placed into the receiver's buffer.
 */
import test from 'ava';
import { randomBytes, randomInt } from 'node:crypto';
import { buildSqe, decodeCqe, encodeCqe, Sqe } from '../../src/nvmf/command.ts';
import {
  PduFlag,
  PduType,
  capsuleCmdHeader,
  capsuleRespHeader,
  crcOf,
  dataHeader,
  decodeDataHeader,
  decodeICReq,
  decodeTermReq,
  encodeICReq,
  encodeTermReq,
  framePdu,
} from '../../src/nvmf/pdu.ts';
import { PduReader, type ReceivedPdu } from '../../src/nvmf/pdu-reader.ts';
import { S, decodeStatus, encodeStatus } from '../../src/nvmf/status.ts';

function controllerReader(out: ReceivedPdu[], fatal: string[], target?: Buffer): PduReader {
  const r = new PduReader({
    role: 'controller',
    maxData: () => 1 << 20,
    onHeader: (ch) => (ch.type === PduType.H2CData && target ? { buf: target, off: 0 } : undefined),
    onPdu: (p) => {
      out.push({ ...p, header: Buffer.from(p.header), data: p.data && Buffer.from(p.data) });
      if (p.ch.type === PduType.ICReq) {
        // As a connection does: digests apply from the next PDU on.
        r.icDone = true;
        r.hdgst = r.ddgst = true;
      }
    },
    onFatal: (e) => fatal.push(`${e.fes}/${e.fei}: ${e.message}`),
  });
  return r;
}

test('a stream of PDUs split at random byte boundaries parses whole, with digests and padding', (t) => {
  for (let round = 0; round < 50; round++) {
    const mode = { hdgst: true, ddgst: true };
    const icd = randomBytes(randomInt(1, 5000));
    const h2c = randomBytes(randomInt(1, 9000));
    const sqe = buildSqe({ opcode: 0x01, cid: 7, nsid: 1, sglLength: icd.length });
    const stream = Buffer.concat([
      encodeICReq({ pfv: 0, hpda: 0, hdgst: true, ddgst: true, maxr2t: 0 }),
      ...framePdu(capsuleCmdHeader(sqe), icd, mode, 32), // PDO padded to 32 bytes
      ...framePdu(dataHeader(PduType.H2CData, { cccid: 7, ttag: 3, offset: 0, length: h2c.length }), h2c, mode, 4, PduFlag.LAST_PDU),
      ...framePdu(capsuleCmdHeader(buildSqe({ opcode: 0x18, cid: 8 })), undefined, mode),
    ]);
    const out: ReceivedPdu[] = [];
    const fatal: string[] = [];
    const target = Buffer.alloc(h2c.length);
    const r = controllerReader(out, fatal, target);
    for (let off = 0; off < stream.length; ) {
      const n = Math.min(stream.length - off, randomInt(1, 40));
      r.push(stream.subarray(off, off + n));
      off += n;
    }
    t.deepEqual(fatal, []);
    t.is(out.length, 4);
    t.deepEqual(decodeICReq(out[0].header), { pfv: 0, hpda: 0, hdgst: true, ddgst: true, maxr2t: 0 });
    t.deepEqual(new Sqe(out[1].header.subarray(8, 72)).buf, sqe);
    t.deepEqual(out[1].data, icd);
    t.true(out[1].dataDigestOk);
    t.is(decodeDataHeader(out[2].header).length, h2c.length);
    t.deepEqual(target, h2c, 'H2CData went straight into the target buffer');
    t.is(out[2].data, undefined);
    t.is(out[3].dataLength, 0);
  }
});

test('a corrupted data digest is reported, not fatal; a corrupted header digest is fatal', (t) => {
  const mode = { hdgst: true, ddgst: true };
  const out: ReceivedPdu[] = [];
  const fatal: string[] = [];
  const r = controllerReader(out, fatal);
  r.icDone = r.hdgst = r.ddgst = true;
  const parts = framePdu(capsuleCmdHeader(buildSqe({ opcode: 0x01, cid: 1 })), randomBytes(100), mode);
  parts[2] = Buffer.from([0, 0, 0, 0]);
  r.push(Buffer.concat(parts));
  t.is(out.length, 1);
  t.false(out[0].dataDigestOk);
  const bad = framePdu(capsuleCmdHeader(buildSqe({ opcode: 0x01, cid: 2 })), undefined, mode);
  bad[0][72] ^= 0xff;
  r.push(bad[0]);
  t.is(fatal.length, 1);
  t.regex(fatal[0], /^3\/0/);
  r.push(Buffer.concat(framePdu(capsuleCmdHeader(buildSqe({ opcode: 0x01, cid: 3 })), undefined, mode)));
  t.is(out.length, 1, 'nothing is parsed after a fatal error');
});

test('header digest is CRC-32C of the header, little endian; termination requests round-trip', (t) => {
  const h = capsuleCmdHeader(buildSqe({ opcode: 0x06, cid: 9 }));
  const [withDigest] = framePdu(h, undefined, { hdgst: true, ddgst: false });
  t.is(withDigest.length, 76);
  t.is(withDigest.readUInt32LE(72), crcOf(withDigest.subarray(0, 72)));
  t.is(crcOf(Buffer.from('123456789')), 0xe3069283, 'CRC-32C check value');
  const tr = encodeTermReq(PduType.C2HTermReq, 1, 4, withDigest);
  t.is(tr.length, 24 + 76);
  t.is(tr.readUInt32LE(4), tr.length, 'PLEN');
  t.deepEqual(decodeTermReq(tr.subarray(0, 24), tr.subarray(24)), { fes: 1, fei: 4, errorData: withDigest });
  t.is(encodeTermReq(PduType.C2HTermReq, 1, 0, Buffer.alloc(500)).length, 152, 'error data capped at 128 bytes');
});

test('completion entries encode status with the phase tag bit clear', (t) => {
  const cqe = encodeCqe({ result: 0xdeadbeef, resultHi: 1, sqhd: 5, sqid: 2, cid: 77, status: S.CONNECT_INVALID_HOST });
  t.is(cqe.readUInt16LE(14), 0x8308 | 0, 'DNR | SCT 1 | SC 84h, shifted past the phase tag');
  t.deepEqual(decodeCqe(cqe), { result: 0xdeadbeef, resultHi: 1, sqhd: 5, sqid: 2, cid: 77, status: S.CONNECT_INVALID_HOST });
  t.is(decodeStatus(encodeStatus(S.LBA_OUT_OF_RANGE)), S.LBA_OUT_OF_RANGE);
  const resp = capsuleRespHeader(cqe);
  t.is(resp[0], PduType.CapsuleResp);
  t.deepEqual(resp.subarray(8, 24), cqe);
});
