/**
 * A deliberately low-level NBD client for protocol tests: it can do everything a real
 * client does and also what a real client never would (bad magic, unknown commands,
 * half-sent requests). Replies are decoded per the NBD protocol (simple and structured).
 */
import { connect, type Socket } from 'node:net';

export const OPT = { EXPORT_NAME: 1, ABORT: 2, LIST: 3, STARTTLS: 5, INFO: 6, GO: 7, STRUCTURED_REPLY: 8 };
export const CMD = { READ: 0, WRITE: 1, DISC: 2, FLUSH: 3, TRIM: 4, CACHE: 5, WRITE_ZEROES: 6, BLOCK_STATUS: 7 };
export const ERR = { EPERM: 1, EIO: 5, EINVAL: 22, ENOSPC: 28, EOVERFLOW: 75, ESHUTDOWN: 108 };

/** One option reply. */
export interface OptReply {
  option: number;
  type: number;
  data: Buffer;
}

/** One command reply. */
export interface CmdReply {
  error: number;
  data?: Buffer;
  message?: string;
}

/** A raw NBD connection. */
export class RawNbd {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  private closed = false;
  private nextHandle = 1n;
  private readonly pending = new Map<bigint, { type: number; length: number; resolve: (r: CmdReply) => void; reject: (e: Error) => void }>();
  private transmission = false;
  structured = false;
  size = 0n;
  flags = 0;
  /** Set when the server closed the connection. */
  readonly closedPromise: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      if (this.transmission) this.pump();
      for (const w of this.waiters.splice(0)) w();
    });
    this.closedPromise = new Promise((r) =>
      socket.on('close', () => {
        this.closed = true;
        for (const w of this.waiters.splice(0)) w();
        for (const p of this.pending.values()) p.reject(new Error('connection closed'));
        this.pending.clear();
        r();
      }),
    );
    socket.on('error', () => undefined);
  }

  /** Connects and reads the server greeting; sends client flags (fixed newstyle, no zeroes). */
  static async open(port: number, host = '127.0.0.1'): Promise<RawNbd> {
    const s = await new Promise<Socket>((res, rej) => {
      const c = connect({ port, host }, () => res(c));
      c.once('error', rej);
    });
    const n = new RawNbd(s);
    const greet = await n.read(18);
    if (greet.toString('latin1', 0, 8) !== 'NBDMAGIC') throw new Error('no NBDMAGIC');
    const cf = Buffer.alloc(4);
    cf.writeUInt32BE(3);
    s.write(cf);
    return n;
  }

  /** Reads exactly n bytes of handshake data. */
  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n) {
      if (this.closed) throw new Error('connection closed');
      await new Promise<void>((r) => this.waiters.push(r));
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Sends an option request. */
  sendOption(option: number, data: Buffer = Buffer.alloc(0)): void {
    const h = Buffer.alloc(16);
    h.write('IHAVEOPT', 0, 'latin1');
    h.writeUInt32BE(option, 8);
    h.writeUInt32BE(data.length, 12);
    this.socket.write(Buffer.concat([h, data]));
  }

  /** Reads one option reply. */
  async optionReply(): Promise<OptReply> {
    const h = await this.read(20);
    const len = h.readUInt32BE(16);
    return { option: h.readUInt32BE(8), type: h.readUInt32BE(12), data: len ? Buffer.from(await this.read(len)) : Buffer.alloc(0) };
  }

  /** Sends an option and collects replies up to the final one (ACK or an error). */
  async option(option: number, data?: Buffer): Promise<OptReply[]> {
    this.sendOption(option, data);
    const out: OptReply[] = [];
    for (;;) {
      const r = await this.optionReply();
      out.push(r);
      if (r.type === 1 || r.type >= 0x80000000) return out;
    }
  }

  /** NBD_OPT_GO (with a block-size info request); enters transmission on success. */
  async go(name: string, structured = true): Promise<OptReply[]> {
    if (structured) {
      const r = await this.option(OPT.STRUCTURED_REPLY);
      this.structured = r[0].type === 1;
    }
    const nm = Buffer.from(name);
    const d = Buffer.alloc(4 + nm.length + 4);
    d.writeUInt32BE(nm.length, 0);
    nm.copy(d, 4);
    d.writeUInt16BE(1, 4 + nm.length);
    d.writeUInt16BE(3, 6 + nm.length);
    const replies = await this.option(OPT.GO, d);
    const last = replies[replies.length - 1];
    if (last.type === 1) {
      for (const r of replies) {
        if (r.type === 3 && r.data.readUInt16BE(0) === 0) {
          this.size = r.data.readBigUInt64BE(2);
          this.flags = r.data.readUInt16BE(10);
        }
      }
      this.transmission = true;
      this.pump();
    }
    return replies;
  }

  /** Sends a command and resolves with its reply. */
  cmd(type: number, offset: bigint | number, length: number, flags = 0, payload?: Buffer): Promise<CmdReply> {
    const handle = this.nextHandle++;
    const h = Buffer.alloc(28);
    h.writeUInt32BE(0x25609513, 0);
    h.writeUInt16BE(flags, 4);
    h.writeUInt16BE(type, 6);
    h.writeBigUInt64BE(handle, 8);
    h.writeBigUInt64BE(BigInt(offset), 16);
    h.writeUInt32BE(length, 24);
    this.socket.write(payload ? Buffer.concat([h, payload]) : h);
    return new Promise((resolve, reject) => this.pending.set(handle, { type, length, resolve, reject }));
  }

  private pump(): void {
    for (;;) {
      if (this.buf.length < 4) return;
      const magic = this.buf.readUInt32BE(0);
      if (magic === 0x67446698) {
        if (this.buf.length < 16) return;
        const error = this.buf.readUInt32BE(4);
        const handle = this.buf.readBigUInt64BE(8);
        const p = this.pending.get(handle);
        if (!p) throw new Error(`reply for unknown handle ${handle}`);
        const dataLen = error === 0 && p.type === CMD.READ ? p.length : 0;
        if (this.buf.length < 16 + dataLen) return;
        const data = Buffer.from(this.buf.subarray(16, 16 + dataLen));
        this.buf = this.buf.subarray(16 + dataLen);
        this.pending.delete(handle);
        p.resolve({ error, data: p.type === CMD.READ ? data : undefined });
      } else if (magic === 0x668e33ef) {
        if (this.buf.length < 20) return;
        const flags = this.buf.readUInt16BE(4);
        const type = this.buf.readUInt16BE(6);
        const handle = this.buf.readBigUInt64BE(8);
        const len = this.buf.readUInt32BE(16);
        if (this.buf.length < 20 + len) return;
        const payload = Buffer.from(this.buf.subarray(20, 20 + len));
        this.buf = this.buf.subarray(20 + len);
        const p = this.pending.get(handle);
        if (!p) throw new Error(`chunk for unknown handle ${handle}`);
        if (!(flags & 1)) throw new Error('multi-chunk replies not expected from this server');
        this.pending.delete(handle);
        if (type === 1) p.resolve({ error: 0, data: payload.subarray(8) });
        else if (type === 0) p.resolve({ error: 0, data: Buffer.alloc(0) });
        else if (type & 0x8000) p.resolve({ error: payload.readUInt32BE(0), message: payload.toString('utf8', 6, 6 + payload.readUInt16BE(4)) });
        else throw new Error(`unexpected chunk type ${type}`);
      } else {
        throw new Error(`bad reply magic 0x${magic.toString(16)}`);
      }
    }
  }

  /** Writes raw bytes (for malformed-input tests). */
  raw(b: Buffer): void {
    this.socket.write(b);
  }

  /** True once the server has closed the connection. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Closes the connection abruptly. */
  destroy(): void {
    this.socket.destroy();
  }
}
