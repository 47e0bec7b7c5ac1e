/**
 * A small NVMe/TCP host for tests: connection initialisation, command capsules with in-capsule
 * data or R2T/H2CData, C2HData collection, digests, plus raw byte access for hostile tests.
 * Built on the target's own PDU codec, but it speaks the wire protocol independently of the
 * target's state machine.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { AdminOpc, FcType, IoOpc, SglId, buildSqe, decodeCqe, type Cqe } from '../../../src/nvmf/command.ts';
import {
  PduFlag,
  PduType,
  capsuleCmdHeader,
  dataHeader,
  decodeDataHeader,
  decodeICResp,
  decodeTermReq,
  encodeICReq,
  framePdu,
  type DigestMode,
  type ICResp,
  type TermReq,
} from '../../../src/nvmf/pdu.ts';
import { FatalPduError, PduReader } from '../../../src/nvmf/pdu-reader.ts';
import { putNqn } from '../../../src/nvmf/ids.ts';

/** Options for a test host connection. */
export interface HostOptions {
  hdgst?: boolean;
  ddgst?: boolean;
  hpda?: number;
  /** Split H2CData into PDUs of at most this many bytes (default: MAXH2CDATA). */
  h2cChunk?: number;
}

/** A command's outcome. */
export interface Result {
  cqe: Cqe;
  data?: Buffer;
}

interface Pending {
  resolve: (r: Result) => void;
  reject: (e: Error) => void;
  c2h?: Buffer;
  h2c?: Buffer;
}

/** A host-side NVMe/TCP connection (one queue). */
export class TestHost {
  icresp!: ICResp;
  /** The C2HTermReq the target sent, if any. */
  termReq: TermReq | undefined;
  /** Resolves when the socket has closed. */
  readonly closed: Promise<void>;
  private readonly pending = new Map<number, Pending>();
  private nextCid = 1;
  private mode: DigestMode = { hdgst: false, ddgst: false };
  private readonly reader: PduReader;
  private icWaiter: ((r: ICResp) => void) | undefined;
  private isClosed = false;

  private constructor(
    readonly socket: Socket,
    private readonly opts: HostOptions,
  ) {
    this.closed = new Promise((r) => socket.once('close', () => {
      this.isClosed = true;
      for (const p of this.pending.values()) p.reject(new Error('connection closed'));
      this.pending.clear();
      r();
    }));
    socket.on('error', () => {});
    this.reader = new PduReader({
      role: 'host',
      maxData: () => 1 << 30,
      onPdu: (p) => {
        switch (p.ch.type) {
          case PduType.ICResp: {
            const r = decodeICResp(p.header);
            this.icWaiter?.(r);
            return;
          }
          case PduType.C2HTermReq:
            this.termReq = decodeTermReq(p.header, p.data && Buffer.from(p.data));
            return;
          case PduType.CapsuleResp: {
            const cqe = decodeCqe(p.header.subarray(8, 24));
            const w = this.pending.get(cqe.cid);
            if (!w) return;
            this.pending.delete(cqe.cid);
            w.resolve({ cqe, data: w.c2h });
            return;
          }
          case PduType.C2HData: {
            const d = decodeDataHeader(p.header);
            const w = this.pending.get(d.cccid);
            if (!w || !p.data) return;
            if (!w.c2h || w.c2h.length < d.offset + d.length) {
              const n = Buffer.alloc(d.offset + d.length);
              w.c2h?.copy(n);
              w.c2h = n;
            }
            p.data.copy(w.c2h, d.offset);
            if (!p.dataDigestOk) w.reject(new Error('C2HData digest mismatch'));
            return;
          }
          case PduType.R2T: {
            const d = decodeDataHeader(p.header);
            const w = this.pending.get(d.cccid);
            if (!w || !w.h2c) return;
            this.sendH2C(d.cccid, d.ttag, w.h2c, d.offset, d.length);
            return;
          }
        }
      },
      onFatal: (e: FatalPduError) => {
        if (!e.silent) this.socket.destroy(new Error(`host saw a bad PDU: ${e.message}`));
      },
    });
    socket.on('data', (c: Buffer) => this.reader.push(c));
  }

  /** Opens a TCP connection without sending anything (for raw tests). */
  static raw(port: number, host = '127.0.0.1', opts: HostOptions = {}): Promise<TestHost> {
    return new Promise((resolve, reject) => {
      const s = netConnect(port, host, () => {
        s.off('error', reject);
        s.setNoDelay(true);
        resolve(new TestHost(s, opts));
      });
      s.once('error', reject);
    });
  }

  /** Opens a connection and performs ICReq/ICResp. */
  static async open(port: number, host = '127.0.0.1', opts: HostOptions = {}): Promise<TestHost> {
    const h = await TestHost.raw(port, host, opts);
    await h.initialize();
    return h;
  }

  /** Sends ICReq and waits for ICResp (then enables the negotiated digests). */
  async initialize(): Promise<ICResp> {
    const r = await new Promise<ICResp>((resolve, reject) => {
      this.icWaiter = resolve;
      this.closed.then(() => reject(new Error(`closed during initialisation (${JSON.stringify(this.termReq)})`)));
      this.socket.write(encodeICReq({ pfv: 0, hpda: this.opts.hpda ?? 0, hdgst: !!this.opts.hdgst, ddgst: !!this.opts.ddgst, maxr2t: 0 }));
    });
    this.icresp = r;
    this.mode = { hdgst: r.hdgst, ddgst: r.ddgst };
    this.reader.hdgst = r.hdgst;
    this.reader.ddgst = r.ddgst;
    this.reader.rxAlign = ((this.opts.hpda ?? 0) + 1) * 4;
    this.reader.icDone = true;
    return r;
  }

  /** Marks ICReq as done without sending one (for tests that send their own). */
  pretendInitialized(mode: DigestMode = { hdgst: false, ddgst: false }): void {
    this.mode = mode;
    this.reader.hdgst = mode.hdgst;
    this.reader.ddgst = mode.ddgst;
    this.reader.icDone = true;
  }

  /** Writes raw bytes. */
  sendRaw(b: Buffer | Buffer[]): void {
    if (this.isClosed) return;
    for (const x of Array.isArray(b) ? b : [b]) this.socket.write(x);
  }

  /** Digest mode in use. */
  get digestMode(): DigestMode {
    return this.mode;
  }

  private sendH2C(cid: number, ttag: number, data: Buffer, r2to: number, r2tl: number): void {
    const chunk = this.opts.h2cChunk ?? this.icresp.maxh2cdata;
    for (let off = r2to; off < r2to + r2tl; off += chunk) {
      const n = Math.min(chunk, r2to + r2tl - off);
      const last = off + n >= r2to + r2tl;
      const h = dataHeader(PduType.H2CData, { cccid: cid, ttag, offset: off, length: n });
      this.sendRaw(framePdu(h, data.subarray(off, off + n), this.mode, 4, last ? PduFlag.LAST_PDU : 0));
    }
  }

  /** Allocates a command id. */
  cid(): number {
    const c = this.nextCid;
    this.nextCid = (this.nextCid % 0xfffe) + 1;
    return c;
  }

  /**
   * Submits a 64-byte SQE (its CID must be set). With `h2c`, the data goes in-capsule (when
   * `inCapsule`) or on R2T; `c2hLength` sizes the receive buffer.
   */
  submit(sqe: Buffer, o: { h2c?: Buffer; inCapsule?: boolean } = {}): Promise<Result> {
    const cid = sqe.readUInt16LE(2);
    return new Promise((resolve, reject) => {
      if (this.isClosed) return reject(new Error('connection closed'));
      this.pending.set(cid, { resolve, reject, h2c: o.inCapsule ? undefined : o.h2c });
      this.sendRaw(framePdu(capsuleCmdHeader(sqe), o.inCapsule ? o.h2c : undefined, this.mode));
    });
  }

  /** Fabrics Connect on this queue. */
  async connect(subnqn: string, hostnqn: string, o: { qid?: number; cntlid?: number; hostid?: Buffer; sqsize?: number; kato?: number; inCapsule?: boolean } = {}): Promise<Cqe> {
    const data = Buffer.alloc(1024);
    (o.hostid ?? Buffer.alloc(16, 0x11)).copy(data, 0);
    data.writeUInt16LE(o.cntlid ?? 0xffff, 16);
    putNqn(data, 256, 256, subnqn);
    putNqn(data, 512, 256, hostnqn);
    const sqe = buildSqe({ opcode: AdminOpc.FABRICS, fctype: FcType.CONNECT, cid: this.cid(), sglId: o.inCapsule === false ? SglId.TRANSPORT : SglId.IN_CAPSULE, sglLength: 1024 });
    sqe.writeUInt16LE(0, 40);
    sqe.writeUInt16LE(o.qid ?? 0, 42);
    sqe.writeUInt16LE(o.sqsize ?? 31, 44);
    sqe.writeUInt32LE(o.kato ?? 0, 48);
    return (await this.submit(sqe, { h2c: data, inCapsule: o.inCapsule !== false })).cqe;
  }

  /** Property Get (4 or 8 bytes). */
  async propGet(ofst: number, size8 = false): Promise<{ cqe: Cqe; value: bigint }> {
    const sqe = buildSqe({ opcode: AdminOpc.FABRICS, fctype: FcType.PROPERTY_GET, cid: this.cid() });
    sqe[40] = size8 ? 1 : 0;
    sqe.writeUInt32LE(ofst, 44);
    const { cqe } = await this.submit(sqe);
    return { cqe, value: BigInt(cqe.result) | (BigInt(cqe.resultHi) << 32n) };
  }

  /** Property Set (4 bytes). */
  async propSet(ofst: number, value: number): Promise<Cqe> {
    const sqe = buildSqe({ opcode: AdminOpc.FABRICS, fctype: FcType.PROPERTY_SET, cid: this.cid() });
    sqe.writeUInt32LE(ofst, 44);
    sqe.writeUInt32LE(value >>> 0, 48);
    return (await this.submit(sqe)).cqe;
  }

  /** CC.EN=1 with 64/16-byte queue entries; waits for CSTS.RDY. Returns CSTS. */
  async enable(): Promise<number> {
    await this.propSet(0x14, 1 | (6 << 16) | (4 << 20));
    for (let i = 0; i < 100; i++) {
      const { value } = await this.propGet(0x1c);
      if (value & 3n) return Number(value);
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error('CSTS.RDY never set');
  }

  /** Admin command with controller-to-host data. */
  adminIn(opcode: number, len: number, cdw: Partial<Record<10 | 11 | 12 | 13 | 14 | 15, number>> = {}, nsid = 0): Promise<Result> {
    return this.submit(buildSqe({ opcode, cid: this.cid(), nsid, sglLength: len, cdw }));
  }

  /** Identify (4096 bytes). */
  identify(cns: number, nsid = 0, cdw11 = 0): Promise<Result> {
    return this.adminIn(AdminOpc.IDENTIFY, 4096, { 10: cns, 11: cdw11 }, nsid);
  }

  /** Get Log Page of `len` bytes (a multiple of 4). */
  getLogPage(lid: number, len: number, o: { offset?: number; lsp?: number; rae?: boolean; nsid?: number } = {}): Promise<Result> {
    const numd = len / 4 - 1;
    return this.adminIn(AdminOpc.GET_LOG_PAGE, len, {
      10: lid | ((o.lsp ?? 0) << 8) | (o.rae ? 0x8000 : 0) | ((numd & 0xffff) << 16),
      11: numd >>> 16,
      12: (o.offset ?? 0) >>> 0,
    }, o.nsid ?? 0xffffffff);
  }

  /** Set Features. */
  async setFeature(fid: number, value: number): Promise<Cqe> {
    return (await this.submit(buildSqe({ opcode: AdminOpc.SET_FEATURES, cid: this.cid(), cdw: { 10: fid, 11: value } }))).cqe;
  }

  /** Get Features. */
  async getFeature(fid: number, sel = 0): Promise<Cqe> {
    return (await this.submit(buildSqe({ opcode: AdminOpc.GET_FEATURES, cid: this.cid(), cdw: { 10: fid | (sel << 8) } }))).cqe;
  }

  /** Read `nlb` 4 KiB blocks. */
  read(nsid: number, slba: number, nlb: number): Promise<Result> {
    return this.submit(buildSqe({ opcode: IoOpc.READ, cid: this.cid(), nsid, sglLength: nlb * 4096, cdw: { 10: slba % 2 ** 32, 11: Math.floor(slba / 2 ** 32), 12: nlb - 1 } }));
  }

  /** Write `data` (a multiple of 4 KiB) at `slba`. */
  async write(nsid: number, slba: number, data: Buffer, o: { fua?: boolean; inCapsule?: boolean } = {}): Promise<Cqe> {
    const sqe = buildSqe({
      opcode: IoOpc.WRITE,
      cid: this.cid(),
      nsid,
      sglId: o.inCapsule ? SglId.IN_CAPSULE : SglId.TRANSPORT,
      sglLength: data.length,
      cdw: { 10: slba % 2 ** 32, 11: Math.floor(slba / 2 ** 32), 12: (data.length / 4096 - 1) | (o.fua ? 1 << 30 : 0) },
    });
    return (await this.submit(sqe, { h2c: data, inCapsule: o.inCapsule })).cqe;
  }

  /** Closes the socket. */
  close(): void {
    this.socket.destroy();
  }
}

/** An admin + one I/O queue association. */
export interface Session {
  admin: TestHost;
  io: TestHost;
  cntlid: number;
  close(): void;
}

/** Connects admin queue, enables the controller, sets queue count, connects I/O queue 1. */
export async function openSession(port: number, subnqn: string, hostnqn: string, opts: HostOptions & { kato?: number } = {}): Promise<Session> {
  const admin = await TestHost.open(port, '127.0.0.1', opts);
  const c = await admin.connect(subnqn, hostnqn, { kato: opts.kato });
  if (c.status !== 0) throw new Error(`admin Connect failed: status 0x${c.status.toString(16)}`);
  await admin.enable();
  await admin.setFeature(0x07, 0x00000000);
  const io = await TestHost.open(port, '127.0.0.1', opts);
  const c2 = await io.connect(subnqn, hostnqn, { qid: 1, cntlid: c.result & 0xffff, sqsize: 127 });
  if (c2.status !== 0) throw new Error(`I/O Connect failed: status 0x${c2.status.toString(16)}`);
  return { admin, io, cntlid: c.result & 0xffff, close: () => { io.close(); admin.close(); } };
}
