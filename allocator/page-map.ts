/**
 * The in-memory page map of one partition: (owner key, logical page) → device block,
 * with each page's version and crc32c.
 *
 * Per key one `KeyTable`: a single Uint32Array with three 32-bit slots per page —
 * block index (NONE when unmapped), version as an offset from a per-key base (NONE when
 * never written), crc32c — i.e. 12 bytes per page slot. A key whose versions spread over
 * more than 2^32 − 2 falls back to a Float64Array of full versions (20 bytes per slot).
 * Per-key overhead (Map entry, object, typed array) is ≈ 250 bytes, ≈ 1 byte per page for
 * 1 MiB extents. Old versions kept for snapshot pins live in a small per-key list.
 */
import { NONE } from './layout.ts';

/** An old page version kept alive because a pinned snapshot still needs it. */
export interface Retained {
  page: number;
  /** The kept version. */
  version: number;
  /** Version that superseded it (the snapshot view at v needs it for version ≤ v < until). */
  until: number;
  /** Log seq of the record that superseded it. */
  seq: number;
  block: number;
  crc: number;
}

/** Page slots of one owner key. See the module comment for the encoding. */
export class KeyTable {
  /** 3 × capacity: [block, version − base (or NONE), crc] per page. */
  slots: Uint32Array;
  /** Base of the 32-bit version offsets (set by the first version stored). */
  base = -1;
  /** Full versions when the key's version spread does not fit 32 bits. */
  wide: Float64Array | null = null;
  /** Pages with a block. */
  mapped = 0;
  /** Old versions kept for pins (rare), or null. */
  retained: Retained[] | null = null;

  constructor(capacity = 16) {
    this.slots = new Uint32Array(capacity * 3).fill(NONE);
  }

  /** Number of page slots. */
  get capacity(): number {
    return this.slots.length / 3;
  }

  /** Makes sure page index `page` has a slot (grows by doubling). */
  ensure(page: number): void {
    let cap = this.capacity;
    if (page < cap) return;
    while (cap <= page) cap *= 2;
    const s = new Uint32Array(cap * 3).fill(NONE);
    s.set(this.slots);
    this.slots = s;
    if (this.wide) {
      const w = new Float64Array(cap);
      w.set(this.wide);
      this.wide = w;
    }
  }

  /** Block of `page`, or NONE. */
  block(page: number): number {
    return page < this.capacity ? this.slots[page * 3] : NONE;
  }

  /** crc32c recorded for `page`'s block. */
  crc(page: number): number {
    return this.slots[page * 3 + 2];
  }

  /** Newest version applied to `page` (write or trim); 0 when never touched. */
  version(page: number): number {
    if (page >= this.capacity) return 0;
    if (this.wide) return this.wide[page];
    const d = this.slots[page * 3 + 1];
    return d === NONE ? 0 : this.base + d;
  }

  /** Stores `version` for `page` (slot must exist). */
  setVersion(page: number, version: number): void {
    if (this.wide) {
      this.wide[page] = version;
      return;
    }
    if (this.base < 0) this.base = version;
    let d = version - this.base;
    if (d < 0) {
      // Rebase downwards if every stored offset still fits, else widen.
      const shift = -d;
      const s = this.slots;
      let ok = true;
      for (let i = 1; i < s.length; i += 3) if (s[i] !== NONE && s[i] + shift >= NONE) { ok = false; break; }
      if (!ok) return this.widen(page, version);
      for (let i = 1; i < s.length; i += 3) if (s[i] !== NONE) s[i] += shift;
      this.base = version;
      d = 0;
    }
    if (d >= NONE) return this.widen(page, version);
    this.slots[page * 3 + 1] = d;
  }

  private widen(page: number, version: number): void {
    const w = new Float64Array(this.capacity);
    for (let p = 0; p < w.length; p++) w[p] = this.version(p);
    w[page] = version;
    this.wide = w;
  }

  /** Sets block and crc of `page` (slot must exist). */
  setBlock(page: number, block: number, crc: number): void {
    this.slots[page * 3] = block;
    this.slots[page * 3 + 2] = crc;
  }

  /** Bytes of memory held by this table (typed arrays + an estimate of object overhead). */
  bytes(): number {
    return this.slots.byteLength + (this.wide ? this.wide.byteLength : 0) + 250 + (this.retained ? this.retained.length * 80 : 0);
  }

  /**
   * Serialises the table for a checkpoint:
   *   u8 flags (1 wide) | u8 0 | u16 0 | u32 capacity | f64 base | u32 retained count | u32 0 |
   *   slots (12 B × cap) | wide versions (8 B × cap, if wide) | retained (40 B each).
   */
  encode(): Buffer {
    const cap = this.capacity;
    const nRet = this.retained ? this.retained.length : 0;
    const b = Buffer.allocUnsafe(24 + cap * 12 + (this.wide ? cap * 8 : 0) + nRet * 40);
    b.writeUInt32LE(this.wide ? 1 : 0, 0);
    b.writeUInt32LE(cap, 4);
    b.writeDoubleLE(this.base, 8);
    b.writeUInt32LE(nRet, 16);
    b.writeUInt32LE(0, 20);
    let o = 24;
    Buffer.from(this.slots.buffer, this.slots.byteOffset, this.slots.byteLength).copy(b, o);
    o += cap * 12;
    if (this.wide) {
      Buffer.from(this.wide.buffer, this.wide.byteOffset, this.wide.byteLength).copy(b, o);
      o += cap * 8;
    }
    for (let i = 0; i < nRet; i++) {
      const r = this.retained![i];
      b.writeDoubleLE(r.version, o);
      b.writeDoubleLE(r.until, o + 8);
      b.writeDoubleLE(r.seq, o + 16);
      b.writeUInt32LE(r.page, o + 24);
      b.writeUInt32LE(r.block, o + 28);
      b.writeUInt32LE(r.crc, o + 32);
      b.writeUInt32LE(0, o + 36);
      o += 40;
    }
    return b;
  }

  /** Inverse of `encode`. Throws on a malformed buffer. */
  static decode(b: Buffer): KeyTable {
    const flags = b.readUInt32LE(0);
    const cap = b.readUInt32LE(4);
    const nRet = b.readUInt32LE(16);
    const want = 24 + cap * 12 + (flags & 1 ? cap * 8 : 0) + nRet * 40;
    if (b.length !== want || cap === 0) throw new Error(`bad key table record (${b.length} bytes, want ${want})`);
    const t = new KeyTable(cap);
    t.base = b.readDoubleLE(8);
    let o = 24;
    new Uint8Array(t.slots.buffer).set(b.subarray(o, o + cap * 12));
    o += cap * 12;
    if (flags & 1) {
      t.wide = new Float64Array(cap);
      new Uint8Array(t.wide.buffer).set(b.subarray(o, o + cap * 8));
      o += cap * 8;
    }
    for (let p = 0; p < cap; p++) if (t.slots[p * 3] !== NONE) t.mapped++;
    if (nRet > 0) {
      t.retained = [];
      for (let i = 0; i < nRet; i++) {
        t.retained.push({
          version: b.readDoubleLE(o), until: b.readDoubleLE(o + 8), seq: b.readDoubleLE(o + 16),
          page: b.readUInt32LE(o + 24), block: b.readUInt32LE(o + 28), crc: b.readUInt32LE(o + 32),
        });
        o += 40;
      }
    }
    return t;
  }
}
