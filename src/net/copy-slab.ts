/**
 * Copies of small byte ranges carved out of shared slabs. A frame read into a reused socket
 * buffer must be copied before it outlives the read callback; `Buffer.from` gives every
 * copy of more than half of Node's 8 KiB pool (a 4 KiB write frame is one) its own
 * ArrayBuffer: a malloc, a backing-store record, and work for V8's ArrayBuffer sweeper
 * when it dies, per frame. Here consecutive copies share one slab, so a node taking 4 KiB
 * writes allocates one ArrayBuffer per ~15 frames instead of one per frame (DESIGN
 * "Performance principles": no allocation per request on the hot path).
 *
 * A slab lives as long as any copy cut from it, so one copy kept for long keeps its whole
 * slab: slabs are small (64 KiB by default), and copies larger than a quarter of a slab get
 * their own buffer.
 */

/** Default slab size in bytes. */
export const SLAB_BYTES = 64 * 1024;

/** Hands out copies of byte ranges, packed into shared slabs. Not for copies that live long. */
export class CopySlab {
  private slab: Buffer;
  private used = 0;

  /** @param slabBytes bytes per slab (≥ 4096). */
  constructor(private readonly slabBytes = SLAB_BYTES) {
    if (!(slabBytes >= 4096)) throw new RangeError(`slab of ${slabBytes} bytes is smaller than 4096`);
    this.slab = Buffer.allocUnsafeSlow(slabBytes);
  }

  /** A copy of `src` (its own memory, safe to keep after `src` is reused). */
  copy(src: Uint8Array): Buffer {
    const n = src.length;
    if (n > this.slabBytes >>> 2) return Buffer.from(src);
    if (this.used + n > this.slabBytes) {
      this.slab = Buffer.allocUnsafeSlow(this.slabBytes);
      this.used = 0;
    }
    const at = this.used;
    this.slab.set(src, at);
    this.used = (at + n + 7) & ~7; // 8-byte aligned starts, for readDoubleLE and friends
    return this.slab.subarray(at, at + n);
  }
}
