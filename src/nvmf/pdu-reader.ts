/**
 * Incremental NVMe/TCP PDU receiver: turns a TCP byte stream into PDUs, validating the common
 * header before any data is buffered, checking header and data digests, and placing PDU data
 * straight into a destination buffer chosen by the receiver (so H2CData lands in the command's
 * buffer without an extra copy).
 *
 * Validation follows NVMe/TCP 1.0 section 3.6.2 (common header rules) and 7.4.7 (termination
 * requests with bad lengths end the connection without a reply); errors are reported for the
 * lowest-offset incorrect field first.
 */
import {
  ChOffset,
  DIGEST_LEN,
  Fes,
  HLEN,
  PduFlag,
  PduType,
  TERM_REQ_MAX_PLEN,
  crcOf,
  readCommonHeader,
  type CommonHeader,
} from './pdu.ts';

/**
 * A fatal transport error: the receiver must send a termination request with `fes`/`fei`
 * (unless `silent`) and close the connection. `header` holds the offending PDU header bytes
 * received so far (used as the termination request's error data).
 */
export class FatalPduError extends Error {
  override name = 'FatalPduError';
  constructor(
    readonly fes: number,
    readonly fei: number,
    message: string,
    public header?: Buffer,
    /** Close without sending a termination request (e.g. a malformed termination request). */
    readonly silent = false,
  ) {
    super(message);
  }
}

/** Where the data of a PDU should be written: `buf[off .. off+len)`. */
export interface DataTarget {
  buf: Buffer;
  off: number;
}

/** A fully received PDU. */
export interface ReceivedPdu {
  ch: CommonHeader;
  /** The HLEN header bytes (common header + PDU-specific header), digest already checked. */
  header: Buffer;
  /** PDU data when no DataTarget was supplied (a view, valid until the next PDU is parsed). */
  data?: Buffer;
  /** Length of the PDU data in bytes (0 when none). */
  dataLength: number;
  /** False when a data digest was present and did not match. */
  dataDigestOk: boolean;
}

/** Callbacks and limits for a PduReader. */
export interface PduReaderOptions {
  /** 'controller' receives host-to-controller PDUs (even types); 'host' the odd ones. */
  role: 'controller' | 'host';
  /**
   * Called once the header (and its digest) of a PDU carrying data has been received and
   * validated; returns where the data goes, or undefined to have it handed over in `pdu`.
   * May throw FatalPduError.
   */
  onHeader?: (ch: CommonHeader, header: Buffer, dataLength: number) => DataTarget | undefined;
  /** Called for every complete PDU. May throw FatalPduError. */
  onPdu: (pdu: ReceivedPdu) => void;
  /** Called once when the stream is unusable; no further callbacks follow. */
  onFatal: (err: FatalPduError) => void;
  /** Largest data length accepted for a PDU type (bytes), checked before buffering. */
  maxData: (type: number) => number;
}

const enum State {
  CH,
  HEADER,
  PAD,
  DATA,
  DDGST,
  DEAD,
}

/** Incremental PDU parser for one connection; see the module comment. */
export class PduReader {
  /** Header digests negotiated (set after ICReq/ICResp). */
  hdgst = false;
  /** Data digests negotiated. */
  ddgst = false;
  /** Alignment (bytes) required for PDU data we receive: (CPDA+1)*4 for a controller. */
  rxAlign = 4;
  /** True once the connection initialisation exchange (ICReq/ICResp) is complete. */
  icDone = false;

  private chunks: Buffer[] = [];
  private avail = 0;
  private state = State.CH;
  private ch!: CommonHeader;
  private chBytes!: Buffer;
  private header!: Buffer;
  private fullHlen = 0;
  private padLeft = 0;
  private dataLen = 0;
  private dataGot = 0;
  private target: DataTarget | undefined;
  private dataBuf: Buffer | undefined;
  private dataParts: Buffer[] | undefined;
  private hasDdgst = false;

  constructor(private readonly opts: PduReaderOptions) {}

  /** True after a fatal error: further input is ignored. */
  get dead(): boolean {
    return this.state === State.DEAD;
  }

  /** Feeds bytes received from the socket. */
  push(chunk: Buffer): void {
    if (this.state === State.DEAD) return;
    this.chunks.push(chunk);
    this.avail += chunk.length;
    try {
      this.drain();
    } catch (e) {
      this.state = State.DEAD;
      this.chunks = [];
      this.avail = 0;
      if (e instanceof FatalPduError) {
        if (!e.header) e.header = this.header ?? this.chBytes;
        this.opts.onFatal(e);
      } else {
        this.opts.onFatal(new FatalPduError(Fes.INVALID_HEADER_FIELD, 0, `internal error: ${(e as Error).message}`, this.chBytes));
      }
    }
  }

  /** Stops parsing; no more callbacks. */
  kill(): void {
    this.state = State.DEAD;
    this.chunks = [];
    this.avail = 0;
  }

  private take(n: number): Buffer {
    const head = this.chunks[0];
    if (head.length >= n) {
      const out = head.subarray(0, n);
      if (head.length === n) this.chunks.shift();
      else this.chunks[0] = head.subarray(n);
      this.avail -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    this.copyOut(out, 0, n);
    return out;
  }

  private copyOut(dst: Buffer, off: number, n: number): void {
    let done = 0;
    while (done < n) {
      const head = this.chunks[0];
      const k = Math.min(head.length, n - done);
      head.copy(dst, off + done, 0, k);
      done += k;
      if (k === head.length) this.chunks.shift();
      else this.chunks[0] = head.subarray(k);
    }
    this.avail -= n;
  }

  private skip(n: number): void {
    while (n > 0) {
      const head = this.chunks[0];
      const k = Math.min(head.length, n);
      if (k === head.length) this.chunks.shift();
      else this.chunks[0] = head.subarray(k);
      this.avail -= k;
      n -= k;
    }
  }

  private drain(): void {
    for (;;) {
      switch (this.state) {
        case State.CH: {
          if (this.avail < 8) return;
          this.chBytes = Buffer.from(this.take(8));
          this.ch = readCommonHeader(this.chBytes);
          this.header = this.chBytes;
          this.checkCommonHeader();
          this.state = State.HEADER;
          break;
        }
        case State.HEADER: {
          const need = this.fullHlen - 8;
          if (this.avail < need) return;
          const rest = this.take(need);
          const header = Buffer.allocUnsafe(this.ch.hlen);
          this.chBytes.copy(header, 0);
          rest.copy(header, 8, 0, this.ch.hlen - 8);
          this.header = header;
          if (this.fullHlen > this.ch.hlen) {
            const got = rest.readUInt32LE(this.ch.hlen - 8);
            if (got !== crcOf(header)) throw new FatalPduError(Fes.HEADER_DIGEST_ERROR, 0, 'header digest mismatch');
          }
          this.target = undefined;
          this.dataBuf = undefined;
          this.dataParts = undefined;
          this.dataGot = 0;
          if (this.dataLen > 0 && this.opts.onHeader) this.target = this.opts.onHeader(this.ch, header, this.dataLen);
          this.state = this.padLeft > 0 ? State.PAD : this.dataLen > 0 ? State.DATA : State.CH;
          if (this.state === State.CH) this.deliver(true);
          break;
        }
        case State.PAD: {
          if (this.avail === 0) return;
          const k = Math.min(this.avail, this.padLeft);
          this.skip(k);
          this.padLeft -= k;
          if (this.padLeft > 0) return;
          this.state = this.dataLen > 0 ? State.DATA : State.CH;
          if (this.state === State.CH) this.deliver(true);
          break;
        }
        case State.DATA: {
          if (this.avail === 0) return;
          const left = this.dataLen - this.dataGot;
          const k = Math.min(this.avail, left);
          if (this.target) {
            this.copyOut(this.target.buf, this.target.off + this.dataGot, k);
          } else if (this.dataGot === 0 && k === this.dataLen) {
            this.dataBuf = this.take(k);
          } else {
            if (!this.dataBuf) this.dataBuf = Buffer.allocUnsafe(this.dataLen);
            this.copyOut(this.dataBuf, this.dataGot, k);
          }
          this.dataGot += k;
          if (this.dataGot < this.dataLen) return;
          if (this.hasDdgst) this.state = State.DDGST;
          else {
            this.state = State.CH;
            this.deliver(true);
          }
          break;
        }
        case State.DDGST: {
          if (this.avail < DIGEST_LEN) return;
          const got = this.take(DIGEST_LEN).readUInt32LE(0);
          const data = this.target ? this.target.buf.subarray(this.target.off, this.target.off + this.dataLen) : this.dataBuf!;
          this.state = State.CH;
          this.deliver(got === crcOf(data));
          break;
        }
        case State.DEAD:
          return;
      }
    }
  }

  private deliver(dataDigestOk: boolean): void {
    const pdu: ReceivedPdu = {
      ch: this.ch,
      header: this.header,
      data: this.target ? undefined : this.dataBuf,
      dataLength: this.dataLen,
      dataDigestOk,
    };
    this.opts.onPdu(pdu);
  }

  /** Validates the common header (NVMe/TCP 1.0 §3.6.2), lowest offending field first. */
  private checkCommonHeader(): void {
    const { type, flags, hlen, pdo, plen } = this.ch;
    const controller = this.opts.role === 'controller';
    const bad = (off: number, msg: string): never => {
      throw new FatalPduError(Fes.INVALID_HEADER_FIELD, off, msg);
    };
    // PDU-Type: known, and flowing in our direction.
    const expectedHlen = HLEN[type];
    if (expectedHlen === undefined || type === 0x08 || ((type & 1) === 0) !== controller) bad(ChOffset.type, `invalid PDU type ${type}`);
    const isTerm = type === PduType.H2CTermReq || type === PduType.C2HTermReq;
    const isIc = type === PduType.ICReq || type === PduType.ICResp;
    if (isTerm) {
      // §7.4.7: a termination request with an invalid length ends the connection without a reply.
      if (plen < 24 || plen > TERM_REQ_MAX_PLEN || hlen !== 24) throw new FatalPduError(0, 0, 'malformed termination request', undefined, true);
      this.fullHlen = 24;
      this.padLeft = 0;
      this.dataLen = plen - 24;
      this.hasDdgst = false;
      return;
    }
    if (isIc && this.icDone) throw new FatalPduError(Fes.PDU_SEQUENCE_ERROR, 0, 'second connection initialisation PDU');
    if (!isIc && !this.icDone) throw new FatalPduError(Fes.PDU_SEQUENCE_ERROR, 0, `PDU type ${type} before connection initialisation`);
    // FLAGS
    let valid = 0;
    let hasHd = false;
    let mayHaveData = false;
    switch (type) {
      case PduType.CapsuleCmd:
        valid = PduFlag.HDGSTF | PduFlag.DDGSTF;
        hasHd = mayHaveData = true;
        break;
      case PduType.CapsuleResp:
      case PduType.R2T:
        valid = PduFlag.HDGSTF;
        hasHd = true;
        break;
      case PduType.H2CData:
        valid = PduFlag.HDGSTF | PduFlag.DDGSTF | PduFlag.LAST_PDU;
        hasHd = mayHaveData = true;
        break;
      case PduType.C2HData:
        valid = PduFlag.HDGSTF | PduFlag.DDGSTF | PduFlag.LAST_PDU | PduFlag.SUCCESS;
        hasHd = mayHaveData = true;
        break;
      default:
        valid = 0; // ICReq / ICResp
    }
    if ((flags & ~valid) !== 0) bad(ChOffset.flags, `invalid flags 0x${flags.toString(16)}`);
    const hd = hasHd && this.hdgst;
    if (((flags & PduFlag.HDGSTF) !== 0) !== hd) bad(ChOffset.flags, 'header digest flag does not match negotiation');
    const fullHlen = hlen + (hd ? DIGEST_LEN : 0);
    const dataish = plen > fullHlen && mayHaveData;
    const dd = dataish && this.ddgst;
    if (((flags & PduFlag.DDGSTF) !== 0) !== dd) bad(ChOffset.flags, 'data digest flag does not match negotiation');
    if (type === PduType.C2HData && (flags & (PduFlag.SUCCESS | PduFlag.LAST_PDU)) === PduFlag.SUCCESS) bad(ChOffset.flags, 'SUCCESS without LAST_PDU');
    // HLEN
    if (hlen !== expectedHlen) bad(ChOffset.hlen, `invalid HLEN ${hlen} for PDU type ${type}`);
    // PDO
    if (!mayHaveData || (plen <= fullHlen && pdo === 0)) {
      if (pdo !== 0) bad(ChOffset.pdo, `invalid PDO ${pdo}`);
    } else if (pdo < fullHlen || pdo > plen || pdo % this.rxAlign !== 0) bad(ChOffset.pdo, `invalid PDO ${pdo}`);
    // PLEN
    if (plen < fullHlen) bad(ChOffset.plen, `PLEN ${plen} shorter than the header`);
    if (!mayHaveData && plen !== fullHlen) bad(ChOffset.plen, `PLEN ${plen} for a PDU without data`);
    let dataLen = 0;
    if (dataish) {
      dataLen = plen - pdo - (dd ? DIGEST_LEN : 0);
      if (dataLen <= 0) bad(ChOffset.plen, `PLEN ${plen} leaves no room for data`);
      if (dataLen > this.opts.maxData(type)) {
        if (type === PduType.H2CData) throw new FatalPduError(Fes.DATA_LIMIT_EXCEEDED, 0, `H2CData of ${dataLen} bytes exceeds MAXH2CDATA`);
        bad(ChOffset.plen, `PDU data of ${dataLen} bytes exceeds the limit ${this.opts.maxData(type)}`);
      }
    }
    this.fullHlen = fullHlen;
    this.padLeft = dataish ? pdo - fullHlen : 0;
    this.dataLen = dataLen;
    this.hasDdgst = dd;
  }
}
