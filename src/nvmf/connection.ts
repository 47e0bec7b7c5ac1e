/**
 * One NVMe/TCP connection = one queue (NVMe/TCP 1.0 §3.3): connection initialisation
 * (ICReq/ICResp), command capsules with in-capsule data, R2T + H2CData for host-to-controller
 * data, C2HData + CapsuleResp for results, digests, and C2HTermReq on fatal transport errors
 * (§3.6.2.9, §7.4.7). Commands are dispatched to the fabrics, admin and I/O handlers.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { TickCork } from '../net/index.ts';
import { adminCommand, type AdminContext } from './admin.ts';
import { FcType, SglId, Sqe, Xfer, encodeCqe } from './command.ts';
import { MAX_ICD, MAX_TRANSFER, type Controller } from './controller.ts';
import { fabricsCommand, type ConnectableQueue, type FabricsContext } from './fabrics.ts';
import { executeIo, prepareIo, slbaOf, type IoContext } from './io.ts';
import {
  ChOffset,
  Fes,
  H2COffset,
  PduFlag,
  PduType,
  capsuleRespHeader,
  dataHeader,
  decodeDataHeader,
  decodeICReq,
  encodeICResp,
  encodeTermReq,
  framePdu,
  type CommonHeader,
  type DigestMode,
} from './pdu.ts';
import { FatalPduError, PduReader, type DataTarget, type ReceivedPdu } from './pdu-reader.ts';
import { Request, type Completion } from './request.ts';
import { S, SUCCESS } from './status.ts';

/** MAXH2CDATA we announce: the largest command transfer, so one H2CData PDU can answer any R2T. */
export const MAXH2CDATA = MAX_TRANSFER;
/** Close a connection that sends no ICReq within this many ms. */
export const IC_TIMEOUT_MS = 30_000;
/** Stop reading from a host that does not read its responses once this many bytes are queued. */
const TX_HIGH_WATER = 8 << 20;

/** Everything a connection needs from its target. */
export interface ConnectionContext extends FabricsContext, AdminContext, IoContext {
  /** Where connections log (each through a child with `peer` and `qid`). */
  readonly logger: Logger;
  connectionClosed(c: Connection): void;
}

interface R2tState {
  req: Request;
  buf: Buffer;
  got: number;
  digestError: boolean;
}

/** An NVMe/TCP queue on one TCP connection; see the module comment. */
export class Connection implements ConnectableQueue {
  qid = -1;
  controller: Controller | undefined;
  sqsize = 0;
  private sqhd = 0;
  private mode: DigestMode = { hdgst: false, ddgst: false };
  private txAlign = 4;
  private readonly inflight = new Map<number, Request>();
  private readonly r2t = new Map<number, R2tState>();
  private nextTtag = 0;
  private closing = false;
  private readonly cork: TickCork;
  private closed = false;
  private readonly reader: PduReader;
  private icTimer: NodeJS.Timeout | undefined;
  /** Remote address, for logs. */
  readonly peer: string;
  private logQid = -1;
  private logChild: Logger | null = null;

  constructor(
    readonly socket: Socket,
    readonly portId: number,
    private readonly ctx: ConnectionContext,
  ) {
    this.peer = `${socket.remoteAddress}:${socket.remotePort}`;
    this.cork = new TickCork(socket, 'immediate');
    socket.setNoDelay(true);
    this.reader = new PduReader({
      role: 'controller',
      maxData: (t) => (t === PduType.H2CData ? MAXH2CDATA : t === PduType.CapsuleCmd ? MAX_ICD : 128),
      onHeader: (ch, h, n) => this.onHeader(ch, h, n),
      onPdu: (p) => this.onPdu(p),
      onFatal: (e) => this.fatal(e),
    });
    socket.on('data', (c: Buffer) => this.reader.push(c));
    socket.on('error', () => {});
    socket.on('close', () => this.onClosed());
    socket.on('drain', () => socket.resume());
    this.icTimer = setTimeout(() => this.close('no ICReq'), IC_TIMEOUT_MS);
    this.icTimer.unref();
  }

  /** Commands in flight on this queue. */
  get inflightCount(): number {
    return this.inflight.size;
  }

  /** Binds the queue to a controller after a successful Connect. */
  bind(qid: number, sqsize: number, ctrl: Controller): void {
    this.qid = qid;
    this.sqsize = sqsize;
    this.controller = ctrl;
    ctrl.queues.set(qid, this);
  }

  /** This connection's logger: the target's, with `peer` and the queue id bound. */
  private log(): Logger {
    if (!this.logChild || this.logQid !== this.qid) {
      this.logQid = this.qid;
      this.logChild = this.ctx.logger.child({ peer: this.peer, qid: this.qid });
    }
    return this.logChild;
  }

  /** Closes the connection gracefully (pending writes go out first). */
  close(reason: string): void {
    if (this.closing) return;
    this.closing = true;
    this.log().info({ reason }, 'closing connection');
    this.reader.kill();
    // An I/O queue id is free again at once (a host may reconnect it before our socket closes).
    const ctrl = this.controller;
    if (ctrl && this.qid > 0 && ctrl.queues.get(this.qid) === this) ctrl.queues.delete(this.qid);
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  private onClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.closing = true;
    if (this.icTimer) clearTimeout(this.icTimer);
    this.reader.kill();
    for (const r of this.inflight.values()) r.dropped = true;
    this.inflight.clear();
    this.r2t.clear();
    const ctrl = this.controller;
    if (ctrl && ctrl.queues.get(this.qid) === this) {
      ctrl.queues.delete(this.qid);
      if (this.qid === 0) ctrl.destroy('admin queue connection closed');
    }
    this.ctx.connectionClosed(this);
  }

  /** Sends a C2HTermReq for a fatal transport error and closes the connection. */
  private fatal(e: FatalPduError): void {
    this.log().warn({ fes: e.fes, fei: e.fei, err: e.message }, 'fatal transport error: sending C2HTermReq');
    if (!e.silent) this.write([encodeTermReq(PduType.C2HTermReq, e.fes, e.fei, e.header)]);
    this.close(`fatal: ${e.message}`);
  }

  /**
   * Queues PDUs for the socket. Everything written in one turn of the event loop goes out in
   * one writev (cork now, uncork in the check phase): many completions per system call.
   */
  private write(bufs: Buffer[]): void {
    if (this.closing || this.socket.destroyed) return;
    this.cork.hold();
    for (const b of bufs) this.socket.write(b);
    if (this.socket.writableLength > TX_HIGH_WATER) this.socket.pause();
  }


  private onHeader(ch: CommonHeader, header: Buffer, dataLength: number): DataTarget | undefined {
    if (ch.type !== PduType.H2CData) return undefined;
    const d = decodeDataHeader(header);
    const st = this.r2t.get(d.ttag);
    if (!st) throw new FatalPduError(Fes.INVALID_HEADER_FIELD, H2COffset.ttag, `H2CData for unknown TTAG ${d.ttag}`);
    if (st.req.cid !== d.cccid) throw new FatalPduError(Fes.INVALID_HEADER_FIELD, H2COffset.cccid, `H2CData CCCID ${d.cccid} does not match TTAG ${d.ttag}`);
    if (d.length !== dataLength) throw new FatalPduError(Fes.INVALID_HEADER_FIELD, H2COffset.datal, `DATAL ${d.length} != PDU data ${dataLength}`);
    if (d.offset + d.length > st.buf.length) throw new FatalPduError(Fes.DATA_OUT_OF_RANGE, 0, `H2CData ${d.offset}+${d.length} beyond the R2T (${st.buf.length})`);
    if (d.offset !== st.got) throw new FatalPduError(Fes.INVALID_HEADER_FIELD, H2COffset.datao, `H2CData DATAO ${d.offset}, expected ${st.got}`);
    return { buf: st.buf, off: d.offset };
  }

  private onPdu(p: ReceivedPdu): void {
    switch (p.ch.type) {
      case PduType.ICReq:
        return this.onICReq(p.header);
      case PduType.H2CTermReq:
        this.log().info({ fes: p.header.readUInt16LE(8) }, 'host terminated the connection (H2CTermReq)');
        this.socket.destroy();
        return;
      case PduType.CapsuleCmd:
        return this.onCapsule(p);
      case PduType.H2CData:
        return this.onH2CData(p);
    }
  }

  private onICReq(h: Buffer): void {
    const r = decodeICReq(h);
    if (r.pfv !== 0) throw new FatalPduError(Fes.UNSUPPORTED_PARAMETER, 8, `unsupported PFV ${r.pfv}`);
    if (r.hpda > 31) throw new FatalPduError(Fes.INVALID_HEADER_FIELD, 10, `invalid HPDA ${r.hpda}`);
    if (this.icTimer) clearTimeout(this.icTimer);
    this.icTimer = undefined;
    this.write([encodeICResp({ pfv: 0, cpda: 0, hdgst: r.hdgst, ddgst: r.ddgst, maxh2cdata: MAXH2CDATA })]);
    this.mode = { hdgst: r.hdgst, ddgst: r.ddgst };
    this.txAlign = (r.hpda + 1) * 4;
    this.reader.hdgst = r.hdgst;
    this.reader.ddgst = r.ddgst;
    this.reader.rxAlign = 4; // CPDA 0
    this.reader.icDone = true;
    this.log().info({ hdgst: r.hdgst, ddgst: r.ddgst, hpda: r.hpda }, 'connection initialised (ICReq)');
  }

  private onCapsule(p: ReceivedPdu): void {
    const sqe = new Sqe(p.header.subarray(8, 72));
    const cid = sqe.cid;
    if (this.sqsize) this.sqhd = (this.sqhd + 1) % (this.sqsize + 1);
    if (this.inflight.has(cid)) {
      this.respond(cid, { status: S.CID_CONFLICT });
      return;
    }
    const limit = this.qid < 0 ? 1 : this.sqsize + 1;
    if (this.inflight.size >= limit) throw new FatalPduError(Fes.PDU_SEQUENCE_ERROR, 0, `more than ${limit} commands outstanding`);
    const req = new Request(sqe, this);
    this.inflight.set(cid, req);
    this.controller?.touch();
    if (!p.dataDigestOk) return this.complete(req, { status: S.TRANSIENT_TRANSPORT_ERROR });
    try {
      this.start(req, p.data);
    } catch (e) {
      this.log().error({ err: (e as Error).stack }, 'internal error starting a command');
      this.complete(req, { status: S.INTERNAL_ERROR });
    }
  }

  private start(req: Request, icd: Buffer | undefined): void {
    const sqe = req.sqe;
    const fabrics = sqe.opcode === 0x7f;
    if (this.qid < 0 && !(fabrics && sqe.fctype === FcType.CONNECT)) {
      this.complete(req, { status: S.CMD_SEQUENCE_ERROR });
      this.close('command before Connect');
      return;
    }
    if (!fabrics) {
      if (sqe.psdt !== 1 && sqe.psdt !== 2) return this.complete(req, { status: S.INVALID_FIELD });
      const ctrl = this.controller!;
      if (!ctrl.ready) return this.complete(req, { status: S.CMD_SEQUENCE_ERROR });
      if (this.qid > 0) {
        const st = prepareIo(req, ctrl);
        if (st !== SUCCESS) return this.complete(req, { status: st });
      }
    }
    const len = sqe.sglLength;
    const xfer = sqe.xfer;
    if ((xfer === Xfer.H2C || xfer === Xfer.BIDI) && len > 0) {
      if (len > MAX_TRANSFER) return this.complete(req, { status: S.DATA_SGL_LENGTH_INVALID });
      if (sqe.sglId === SglId.IN_CAPSULE) {
        const off = sqe.sglAddress;
        if (!icd || off >= icd.length) return this.complete(req, { status: S.SGL_OFFSET_INVALID });
        if (off + len > icd.length) return this.complete(req, { status: S.DATA_SGL_LENGTH_INVALID });
        req.data = icd.subarray(off, off + len);
        return this.execute(req);
      }
      if (sqe.sglId !== SglId.TRANSPORT) return this.complete(req, { status: S.SGL_TYPE_INVALID });
      if (icd) return this.complete(req, { status: S.INVALID_FIELD });
      return this.sendR2T(req, len);
    }
    if (icd) return this.complete(req, { status: S.INVALID_FIELD });
    if (xfer === Xfer.C2H && len > 0) {
      if (sqe.sglId !== SglId.TRANSPORT) return this.complete(req, { status: S.SGL_TYPE_INVALID });
      if (len > MAX_TRANSFER) return this.complete(req, { status: S.DATA_SGL_LENGTH_INVALID });
    }
    this.execute(req);
  }

  private sendR2T(req: Request, len: number): void {
    let ttag = this.nextTtag;
    do ttag = (ttag + 1) & 0xffff;
    while (ttag === 0xffff || this.r2t.has(ttag));
    this.nextTtag = ttag;
    this.r2t.set(ttag, { req, buf: Buffer.allocUnsafe(len), got: 0, digestError: false });
    this.write(framePdu(dataHeader(PduType.R2T, { cccid: req.cid, ttag, offset: 0, length: len }), undefined, this.mode));
  }

  private onH2CData(p: ReceivedPdu): void {
    if (p.dataLength === 0) throw new FatalPduError(Fes.INVALID_HEADER_FIELD, ChOffset.plen, 'H2CData without data');
    const d = decodeDataHeader(p.header);
    const st = this.r2t.get(d.ttag)!;
    if (!p.dataDigestOk) st.digestError = true;
    st.got += d.length;
    if (st.got < st.buf.length) {
      if (p.ch.flags & PduFlag.LAST_PDU) throw new FatalPduError(Fes.INVALID_HEADER_FIELD, ChOffset.flags, 'LAST_PDU before the R2T data is complete');
      return;
    }
    this.r2t.delete(d.ttag);
    if (st.digestError) return this.complete(st.req, { status: S.TRANSIENT_TRANSPORT_ERROR });
    st.req.data = st.buf;
    this.execute(st.req);
  }

  private execute(req: Request): void {
    let r: Completion | Promise<Completion>;
    try {
      if (req.sqe.opcode === 0x7f) r = fabricsCommand(req, this.ctx, this);
      else if (this.qid === 0) r = adminCommand(req, this.controller!, this.ctx);
      else r = executeIo(req, this.controller!, this.ctx);
    } catch (e) {
      this.log().error({ opcode: req.sqe.opcode, err: (e as Error).stack }, 'internal error');
      r = { status: S.INTERNAL_ERROR };
    }
    if (r instanceof Promise) {
      r.then(
        (c) => this.complete(req, c),
        (e) => {
          this.log().error({ opcode: req.sqe.opcode, err: (e as Error).stack }, 'internal error');
          this.complete(req, { status: S.INTERNAL_ERROR });
        },
      );
    } else this.complete(req, r);
  }

  private complete(req: Request, c: Completion): void {
    if (req.dropped || this.inflight.get(req.cid) !== req) return;
    this.inflight.delete(req.cid);
    const ctrl = this.controller;
    if (c.status !== SUCCESS && ctrl) {
      const io = this.qid > 0;
      ctrl.recordError({ sqid: Math.max(this.qid, 0), cid: req.cid, status: c.status, paramOffset: 0xffff, lba: io ? slbaOf(req) : 0, nsid: req.sqe.opcode === 0x7f ? 0 : req.sqe.nsid });
    }
    let out: Buffer[] = [];
    if (c.data && c.status === SUCCESS) {
      const n = Math.min(c.data.length, req.sqe.sglLength);
      if (n > 0) {
        const hdr = dataHeader(PduType.C2HData, { cccid: req.cid, ttag: 0, offset: 0, length: n });
        out = framePdu(hdr, c.data.length === n ? c.data : c.data.subarray(0, n), this.mode, this.txAlign, PduFlag.LAST_PDU);
      }
    }
    this.respond(req.cid, c, out);
  }

  private respond(cid: number, c: Completion, before: Buffer[] = []): void {
    const cqe = encodeCqe({ result: c.result ?? 0, resultHi: c.resultHi, sqhd: this.sqhd, sqid: Math.max(this.qid, 0), cid, status: c.status });
    const resp = framePdu(capsuleRespHeader(cqe), undefined, this.mode);
    this.write(before.length ? [...before, ...resp] : resp);
  }
}
