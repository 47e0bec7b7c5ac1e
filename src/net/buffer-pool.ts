/**
 * Reuse of large reply buffers. A fresh multi-hundred-KiB Buffer costs page faults to touch
 * and adds external memory that drives V8's full collections; a frontend that answers reads
 * of the same few sizes (a host's fio or file system issues 4 KiB–1 MiB) keeps the buffers it
 * has sent and reads the next request into one of them (DESIGN "Performance principles").
 *
 * Write payloads are lent (lend/release): their memory goes on to sockets — to every member
 * of an extent — and a socket that cannot send at once (a stopped peer, full kernel buffers)
 * keeps a reference to it, not a copy. Such a buffer comes back only when its owner released
 * it and every socket write of it made through writeHeld() has called back (sent to the
 * kernel, or failed with its socket); reusing it earlier would put the next request's bytes
 * under this request's header on the wire.
 */
import type { Writable } from 'node:stream';

/** A lent buffer: its pool, the writes still holding its memory, and whether its owner is done. */
interface Loan {
  pool: BufferPool;
  buf: Buffer;
  writes: number;
  released: boolean;
}

/** Lent buffers by their memory (a subarray of a lent buffer finds its loan through `.buffer`). */
const loans = new WeakMap<ArrayBufferLike, Loan>();

/** Released loans that socket writes still hold, over all pools. */
let heldLoans = 0;

/** Returns a loan's buffer to its pool once released and written out. */
function settle(l: Loan): void {
  if (!l.released || l.writes > 0) return;
  loans.delete(l.buf.buffer);
  l.pool.give(l.buf);
}

/**
 * Writes `b` (a buffer or a view of one) to `stream`. When its memory is lent from a
 * BufferPool, the loan is held until this write's callback — after the bytes reached the
 * kernel, or after the stream was destroyed with the write still queued (Node calls every
 * pending write's callback then).
 */
export function writeHeld(stream: Writable, b: Buffer): void {
  const l = loans.get(b.buffer);
  if (!l) {
    stream.write(b);
    return;
  }
  l.writes++;
  stream.write(b, () => {
    if (--l.writes === 0 && l.released) heldLoans--;
    settle(l);
  });
}

/** Options of a BufferPool. */
export interface BufferPoolOptions {
  /** Smallest size pooled, bytes (default 64 KiB: smaller buffers come cheaply from Node's own pool). */
  minBytes?: number;
  /** Buffers kept per size (default 16). */
  perSize?: number;
  /** Bytes kept over all sizes (default 64 MiB). */
  maxBytes?: number;
}

/**
 * Free lists of buffers by exact size. take() gives a buffer of `size` bytes with arbitrary
 * contents; give() returns one whose bytes nobody will read or write any more (after the
 * socket has written it). Buffers under `minBytes` are plain allocations and never kept.
 */
export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private kept = 0;
  private readonly minBytes: number;
  private readonly perSize: number;
  private readonly maxBytes: number;

  constructor(o: BufferPoolOptions = {}) {
    this.minBytes = o.minBytes ?? 64 * 1024;
    this.perSize = o.perSize ?? 16;
    this.maxBytes = o.maxBytes ?? 64 * 1024 * 1024;
  }

  /** A buffer of exactly `size` bytes, contents undefined. */
  take(size: number): Buffer {
    if (size >= this.minBytes) {
      const b = this.free.get(size)?.pop();
      if (b) {
        this.kept -= size;
        return b;
      }
    }
    return Buffer.allocUnsafe(size);
  }

  /** Returns `b` for reuse (kept only within the limits). Its owner must not touch it again. */
  give(b: Buffer): void {
    const size = b.length;
    if (size < this.minBytes || this.kept + size > this.maxBytes || b.byteOffset !== 0 || b.buffer.byteLength !== size) return;
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    if (list.length >= this.perSize) return;
    list.push(b);
    this.kept += size;
  }

  /**
   * A buffer of exactly `size` bytes lent for a payload that may go to sockets (see the
   * module comment); contents undefined. Give it back with release(), only once nothing will
   * send or read it again; a lent buffer that is never released is simply garbage-collected
   * (what to do after a failed or timed-out request, whose retries may still be queued).
   */
  lend(size: number): Buffer {
    const b = this.take(size);
    if (size >= this.minBytes) loans.set(b.buffer, { pool: this, buf: b, writes: 0, released: false });
    return b;
  }

  /**
   * The owner of lent `b` is done with it: it returns to the pool now, or when the last
   * socket write still holding it calls back. A buffer not lent by this pool is ignored.
   */
  release(b: Buffer): void {
    const l = loans.get(b.buffer);
    if (!l || l.buf !== b || l.pool !== this || l.released) return;
    l.released = true;
    if (l.writes > 0) heldLoans++;
    settle(l);
  }

  /** True when lent `b` was released but a socket write still holds it. */
  static held(b: Buffer): boolean {
    const l = loans.get(b.buffer);
    return l !== undefined && l.released && l.writes > 0;
  }

  /** Released lent buffers that socket writes still hold, over every pool of this process. */
  static get heldLoans(): number {
    return heldLoans;
  }

  /** Bytes currently kept for reuse. */
  get keptBytes(): number {
    return this.kept;
  }
}
