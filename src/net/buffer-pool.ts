/**
 * Reuse of large reply buffers. A fresh multi-hundred-KiB Buffer costs page faults to touch
 * and adds external memory that drives V8's full collections; a frontend that answers reads
 * of the same few sizes (a host's fio or file system issues 4 KiB–1 MiB) keeps the buffers it
 * has sent and reads the next request into one of them (DESIGN "Performance principles").
 */

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

  /** Bytes currently kept for reuse. */
  get keptBytes(): number {
    return this.kept;
  }
}
