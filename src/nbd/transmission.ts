/**
 * The NBD transmission phase (NBD protocol, "Transmission"): parses pipelined requests,
 * runs them against the export's BlockDevice concurrently, and sends simple or (when
 * negotiated) structured replies in completion order. Replies are batched per event-loop
 * tick. With structured replies, reads are always answered with one
 * NBD_REPLY_TYPE_OFFSET_DATA chunk (so NBD_CMD_FLAG_DF holds) and errors with an
 * NBD_REPLY_TYPE_ERROR chunk carrying the message; other successes stay simple replies (the
 * spec allows them for replies without payload). NBD_CMD_BLOCK_STATUS answers one
 * NBD_REPLY_TYPE_BLOCK_STATUS chunk for `base:allocation` ("Metadata querying").
 * Out-of-range requests get EINVAL (ENOSPC for writes), unknown commands EINVAL, changes to a
 * read-only export EPERM; NBD_CMD_FLAG_FUA is accepted on every command (the spec requires
 * it once NBD_FLAG_SEND_FUA is advertised). A bad request magic or an oversized payload ends
 * the connection (the stream cannot be resynchronised).
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { BufferPool, CopySlab, TickCork } from '../net/index.ts';
import { BlockDeviceError, type BlockDevice } from '../volume/index.ts';
import { CHUNK_HEADER, MAX_STATUS_BYTES, deviceStatus, encodeStatus } from './block-status.ts';
import * as C from './constants.ts';
import { MAX_BLOCK } from './handshake.ts';

/** Requests in flight per connection before we stop reading the socket. */
const HIGH_WATER = 256;
const LOW_WATER = 64;
/** Write payloads up to this size are read (and refused with EOVERFLOW when > MAX_BLOCK); larger ones end the connection. */
const MAX_DISCARD = 2 * MAX_BLOCK;
/** Reads of at least this many bytes go into reused buffers (BlockDevice.readInto); writes into lent ones. */
const POOLED_IO = 64 * 1024;

interface Request {
  flags: number;
  type: number;
  handle: Buffer;
  offset: bigint;
  length: number;
}

/**
 * Where a session logs: a pino logger (usually the server's child for one connection, with
 * `conn` and `peer` bound). Each failed request is logged once, at warn, with its command,
 * offset, length, the NBD error sent and the device's cause.
 */
export type SessionLog = Logger;

/** NBD command names by type (NBD protocol, "Request types"), for log lines. */
const COMMAND_NAMES: Record<number, string> = {
  [C.CMD_READ]: 'read', [C.CMD_WRITE]: 'write', [C.CMD_DISC]: 'disc', [C.CMD_FLUSH]: 'flush', [C.CMD_TRIM]: 'trim',
  [C.CMD_CACHE]: 'cache', [C.CMD_WRITE_ZEROES]: 'write_zeroes', [C.CMD_BLOCK_STATUS]: 'block_status',
};

/** A request longer than the maximum block size: answered with EOVERFLOW. */
class OverflowError extends BlockDeviceError {
  constructor(message: string) {
    super('EINVAL', message);
  }
}

/** A write, trim or write-zeroes on a read-only export: answered with EPERM. */
class ReadOnlyError extends BlockDeviceError {
  constructor(message: string) {
    super('EINVAL', message);
  }
}

/** What a session serves, as the handshake negotiated it. */
export interface SessionOptions {
  device: BlockDevice;
  /** Structured replies negotiated (NBD_OPT_STRUCTURED_REPLY). */
  structured: boolean;
  /** Context id of `base:allocation` when selected for this export, else 0 (no block status). */
  allocationContext: number;
  log: SessionLog;
  /**
   * The caller feeds the socket's bytes through push() as transient chunks (a socket read
   * into a reused buffer, net/adoptWithReadBuffer) instead of the session listening to
   * 'data' events; whatever the session keeps of a chunk is then copied.
   */
  manual?: boolean;
}

/** Maps a BlockDevice failure to the NBD error value sent to the client. */
function nbdErrno(e: unknown): number {
  if (e instanceof OverflowError) return C.EOVERFLOW;
  if (e instanceof ReadOnlyError) return C.EPERM;
  if (e instanceof BlockDeviceError) {
    switch (e.code) {
      case 'EINVAL': return C.EINVAL;
      case 'ENOSPC': return C.ENOSPC;
      case 'EFENCED': return C.EPERM;
      case 'EROFS': return C.EPERM;
      case 'ESHUTDOWN': return C.ESHUTDOWN;
      default: return C.EIO;
    }
  }
  return C.EIO;
}

/** One client connection in the transmission phase. */
export class NbdSession {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private pendingHeader: Request | null = null;
  private inflight = 0;
  private paused = false;
  private readonly cork: TickCork;
  /**
   * Reply buffers of large reads and payload buffers of large writes, reused. A write's
   * buffer is lent (BufferPool.lend): released when the write succeeded, and back in the pool
   * once every socket that sent it to a member has written it out. A failed read's or
   * write's buffer is dropped, not reused (retries of it may still be in flight).
   */
  private readonly buffers = new BufferPool();
  /** The large write payload being received: its lent buffer and the bytes in so far. */
  private filling: { buf: Buffer; have: number } | null = null;
  private disconnecting = false;
  private shuttingDown = false;
  private idleWaiters: Array<() => void> = [];
  private readonly device: BlockDevice;
  private readonly structured: boolean;
  private readonly allocationContext: number;
  private readonly readOnly: boolean;
  private readonly log: SessionLog;
  /** Chunks are transient (see SessionOptions.manual): keep copies only. */
  private readonly transient: boolean;
  /** Where small write payloads are copied out of transient chunks. */
  private readonly copies = new CopySlab();

  /** Serves `o.device` on `socket`; `initial` = bytes that arrived after the handshake. */
  constructor(private readonly socket: Socket, o: SessionOptions, initial: Buffer) {
    this.device = o.device;
    this.structured = o.structured;
    this.allocationContext = o.allocationContext;
    this.readOnly = o.device.readOnly === true;
    this.log = o.log;
    this.cork = new TickCork(socket);
    this.transient = o.manual === true;
    if (!this.transient) socket.on('data', (c: Buffer) => this.onData(c));
    if (initial.length) this.onData(initial);
  }

  /**
   * Bytes read from the socket (manual mode): parsed at once; requests and the unparsed rest
   * keep copies, never views of `chunk`, which the caller reuses after this returns.
   */
  push(chunk: Buffer): void {
    this.onData(chunk);
    if (this.transient && this.buffered > 0) {
      // Unparsed bytes (a partial header or small payload) must outlive the read buffer.
      const rest = Buffer.concat(this.chunks, this.buffered);
      this.chunks = [rest];
    }
  }

  /** Resolves when no request is in flight. */
  idle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Server shutdown: later requests get ESHUTDOWN; closes once in-flight ones finish. */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    await this.idle();
    this.socket.end();
  }

  private onData(chunk: Buffer): void {
    if (this.disconnecting) return;
    if (chunk.length) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    try {
      this.parse();
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'closing NBD connection: protocol error');
      this.socket.destroy();
    }
  }

  /** Moves up to `dest.length - at` buffered bytes into `dest` at `at`; returns how many. */
  private takeInto(dest: Buffer, at: number): number {
    let n = 0;
    while (this.chunks.length && at + n < dest.length) {
      const c = this.chunks[0];
      const k = Math.min(c.length, dest.length - at - n);
      c.copy(dest, at + n, 0, k);
      n += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= n;
    return n;
  }

  private take(n: number): Buffer {
    let all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.buffered);
    const out = all.subarray(0, n);
    all = all.subarray(n);
    this.chunks = all.length ? [all] : [];
    this.buffered = all.length;
    return out;
  }

  private parse(): void {
    for (;;) {
      if (!this.pendingHeader) {
        if (this.buffered < C.REQUEST_SIZE) return;
        const h = this.take(C.REQUEST_SIZE);
        const magic = h.readUInt32BE(0);
        if (magic !== C.REQUEST_MAGIC) throw new Error(`bad request magic 0x${magic.toString(16)}`);
        this.pendingHeader = {
          flags: h.readUInt16BE(4),
          type: h.readUInt16BE(6),
          handle: Buffer.from(h.subarray(8, 16)),
          offset: h.readBigUInt64BE(16),
          length: h.readUInt32BE(24),
        };
        if (this.pendingHeader.type === C.CMD_WRITE && this.pendingHeader.length > MAX_DISCARD) {
          throw new Error(`write payload of ${this.pendingHeader.length} bytes exceeds ${MAX_DISCARD}`);
        }
      }
      const req = this.pendingHeader;
      let payload: Buffer | null = null;
      if (req.type === C.CMD_WRITE && req.length >= POOLED_IO && req.length <= MAX_BLOCK) {
        // Copied straight from the socket's chunks into a lent buffer, as they arrive.
        const f = (this.filling ??= { buf: this.buffers.lend(req.length), have: 0 });
        f.have += this.takeInto(f.buf, f.have);
        if (f.have < req.length) return;
        payload = f.buf;
        this.filling = null;
      } else if (req.type === C.CMD_WRITE) {
        if (this.buffered < req.length) return;
        payload = this.take(req.length);
        if (this.transient) payload = this.copies.copy(payload); // the write outlives the read buffer
      }
      this.pendingHeader = null;
      if (req.type === C.CMD_DISC) {
        this.disconnecting = true;
        void this.idle().then(() => this.socket.end());
        return;
      }
      this.dispatch(req, payload);
    }
  }

  private dispatch(req: Request, payload: Buffer | null): void {
    this.inflight++;
    if (this.inflight >= HIGH_WATER && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    // then(ok, fail) with the bookkeeping in both, not .finally(): two promises fewer per request.
    this.execute(req, payload).then(
      (data) => {
        try {
          this.reply(req, 0, data);
        } finally {
          this.done();
        }
      },
      (e: unknown) => {
        const errno = nbdErrno(e);
        this.log.warn({ cmd: COMMAND_NAMES[req.type] ?? req.type, offset: Number(req.offset), length: req.length, errno, code: e instanceof BlockDeviceError ? e.code : undefined, err: (e as Error).message }, 'NBD request failed');
        try {
          this.reply(req, errno, undefined, (e as Error).message);
        } finally {
          this.done();
        }
      },
    );
  }

  /** A request has been answered: resume reading below the low-water mark, wake idle waiters. */
  private done(): void {
    this.inflight--;
    if (this.paused && this.inflight <= LOW_WATER) {
      this.paused = false;
      this.socket.resume();
    }
    if (this.inflight === 0) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const r of w) r();
    }
  }

  private async execute(req: Request, payload: Buffer | null): Promise<Buffer | undefined> {
    if (this.shuttingDown) throw new BlockDeviceError('ESHUTDOWN', 'server is shutting down');
    const dev = this.device;
    const end = req.offset + BigInt(req.length);
    const outside = end > BigInt(dev.size);
    const offset = Number(req.offset);
    const fua = (req.flags & C.CMD_FLAG_FUA) !== 0;
    const allowed = (mask: number): void => {
      if (req.flags & ~(mask | C.CMD_FLAG_FUA)) throw new BlockDeviceError('EINVAL', `unsupported command flags 0x${req.flags.toString(16)}`);
    };
    if (this.readOnly && (req.type === C.CMD_WRITE || req.type === C.CMD_TRIM || req.type === C.CMD_WRITE_ZEROES)) {
      throw new ReadOnlyError('the export is read-only');
    }
    switch (req.type) {
      case C.CMD_READ:
        allowed(C.CMD_FLAG_DF);
        if (outside) throw new BlockDeviceError('EINVAL', `read of ${req.length} bytes at ${req.offset} is beyond the end (${dev.size})`);
        if (req.length > MAX_BLOCK) throw new OverflowError(`read of ${req.length} bytes exceeds the maximum block size ${MAX_BLOCK}`);
        if (dev.readInto && req.length >= POOLED_IO) {
          // Into a reused buffer, given back once the socket has written it (reply()).
          const b = this.buffers.take(req.length);
          await dev.readInto(offset, b);
          return b;
        }
        return dev.read(offset, req.length);
      case C.CMD_WRITE:
        allowed(C.CMD_FLAG_FUA);
        if (outside) throw new BlockDeviceError('ENOSPC', `write of ${req.length} bytes at ${req.offset} is beyond the end (${dev.size})`);
        if (req.length > MAX_BLOCK) throw new OverflowError(`write of ${req.length} bytes exceeds the maximum block size ${MAX_BLOCK}`);
        await dev.write(offset, payload!, fua);
        // Done: no retry will send it again (a failed write's buffer is never released).
        if (req.length >= POOLED_IO) this.buffers.release(payload!);
        return undefined;
      case C.CMD_FLUSH:
        allowed(0);
        if (!this.readOnly) await dev.flush(); // nothing to make durable on a read-only export
        return undefined;
      case C.CMD_TRIM:
        allowed(C.CMD_FLAG_FUA);
        if (outside) throw new BlockDeviceError('EINVAL', `trim of ${req.length} bytes at ${req.offset} is beyond the end (${dev.size})`);
        await dev.trim(offset, req.length);
        if (fua) await dev.flush();
        return undefined;
      case C.CMD_WRITE_ZEROES:
        allowed(C.CMD_FLAG_FUA | C.CMD_FLAG_NO_HOLE);
        if (outside) throw new BlockDeviceError('ENOSPC', `write-zeroes of ${req.length} bytes at ${req.offset} is beyond the end (${dev.size})`);
        await dev.writeZeroes(offset, req.length, fua);
        return undefined;
      case C.CMD_BLOCK_STATUS:
        return this.blockStatus(req, outside);
      default:
        throw new BlockDeviceError('EINVAL', `command type ${req.type} is not supported`);
    }
  }

  /**
   * NBD_CMD_BLOCK_STATUS: the `base:allocation` chunk's payload (after CHUNK_HEADER spare
   * bytes), for at most MAX_STATUS_BYTES from the request's offset.
   */
  private async blockStatus(req: Request, outside: boolean): Promise<Buffer> {
    if (req.flags & ~(C.CMD_FLAG_REQ_ONE | C.CMD_FLAG_FUA)) throw new BlockDeviceError('EINVAL', `unsupported command flags 0x${req.flags.toString(16)}`);
    if (!this.allocationContext) throw new BlockDeviceError('EINVAL', 'block status needs the base:allocation context (NBD_OPT_SET_META_CONTEXT)');
    if (req.length === 0) throw new BlockDeviceError('EINVAL', 'block status of 0 bytes');
    if (outside) throw new BlockDeviceError('EINVAL', `block status of ${req.length} bytes at ${req.offset} is beyond the end (${this.device.size})`);
    const runs = await deviceStatus(this.device, Number(req.offset), Math.min(req.length, MAX_STATUS_BYTES));
    return encodeStatus(this.allocationContext, runs, (req.flags & C.CMD_FLAG_REQ_ONE) !== 0);
  }

  private write(b: Buffer, done?: () => void): void {
    const s = this.socket;
    if (s.destroyed) return;
    this.cork.hold();
    s.write(b, done);
  }

  /** The write-done callback that gives a pooled read buffer back (undefined for others). */
  private giveBack(req: Request, data: Buffer): (() => void) | undefined {
    if (req.type !== C.CMD_READ || req.length < POOLED_IO || !this.device.readInto) return undefined;
    return () => this.buffers.give(data);
  }

  private reply(req: Request, errno: number, data?: Buffer, message = ''): void {
    if (errno === 0 && req.type === C.CMD_BLOCK_STATUS) {
      // The payload was built with CHUNK_HEADER spare bytes in front (one buffer, one write).
      const b = data!;
      b.writeUInt32BE(C.STRUCTURED_REPLY_MAGIC, 0);
      b.writeUInt16BE(C.REPLY_FLAG_DONE, 4);
      b.writeUInt16BE(C.REPLY_TYPE_BLOCK_STATUS, 6);
      req.handle.copy(b, 8);
      b.writeUInt32BE(b.length - CHUNK_HEADER, 16);
      this.write(b);
      return;
    }
    if (errno === 0 && req.type === C.CMD_READ && this.structured) {
      const h = Buffer.allocUnsafe(28);
      h.writeUInt32BE(C.STRUCTURED_REPLY_MAGIC, 0);
      h.writeUInt16BE(C.REPLY_FLAG_DONE, 4);
      h.writeUInt16BE(req.length ? C.REPLY_TYPE_OFFSET_DATA : C.REPLY_TYPE_NONE, 6);
      req.handle.copy(h, 8);
      if (req.length) {
        h.writeUInt32BE(8 + req.length, 16);
        h.writeBigUInt64BE(req.offset, 20);
        this.write(h);
        this.write(data!, this.giveBack(req, data!));
      } else {
        h.writeUInt32BE(0, 16);
        this.write(h.subarray(0, 20));
      }
      return;
    }
    if (errno !== 0 && this.structured) {
      const msg = Buffer.from(message.slice(0, 1024), 'utf8');
      const h = Buffer.allocUnsafe(26);
      h.writeUInt32BE(C.STRUCTURED_REPLY_MAGIC, 0);
      h.writeUInt16BE(C.REPLY_FLAG_DONE, 4);
      h.writeUInt16BE(C.REPLY_TYPE_ERROR, 6);
      req.handle.copy(h, 8);
      h.writeUInt32BE(6 + msg.length, 16);
      h.writeUInt32BE(errno, 20);
      h.writeUInt16BE(msg.length, 24);
      this.write(Buffer.concat([h, msg]));
      return;
    }
    // Simple reply. On a read error no data follows (as libnbd, qemu and the kernel expect).
    const h = Buffer.allocUnsafe(16);
    h.writeUInt32BE(C.SIMPLE_REPLY_MAGIC, 0);
    h.writeUInt32BE(errno, 4);
    req.handle.copy(h, 8);
    this.write(h);
    if (errno === 0 && req.type === C.CMD_READ && req.length) this.write(data!, this.giveBack(req, data!));
  }
}
