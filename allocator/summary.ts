/**
 * The body of a record header: the segment summary as a list of runs, packed with
 * unsigned LEB128 varints so that one header block describes a whole 1 MiB segment of
 * pages (≈ 10–12 bytes per page for scattered pages, ≈ 4 bytes per page for sequential
 * ones, against 24 bytes in format 2).
 *
 * Run encoding (runs follow each other from byte 48 of the header):
 *   varint tag = count × 8 + flags      flags: 1 trim run, 2 key absolute, 4 version below
 *                                        the previous run's
 *   varint key                          absolute (flag 2) or minus the previous run's key
 *   varint first page
 *   varint |version − previous run's version|  (the first run counts from 0)
 *   data run only: count × u32 crc32c, one per data page
 * A data run covers pages [first, first + count) of `key` at `version`, stored in the next
 * `count` data blocks of the record, in order; a trim run unmaps that page range as of
 * `version` and has no data blocks. Runs apply in order (a later run wins a version tie).
 * Every field is bounded (keys and versions safe integers, pages < 2^31) and the data
 * counts must add up to the header's data-block count, else the record is refused.
 */
import { BODY_MAX, HEADER_FIXED, PAGE } from './layout.ts';

/** Run flag: the run is a trimmed page range (no data blocks). */
export const RUN_TRIM = 1;
/** Run flag: the key is stored absolute (else as a non-negative delta). */
export const RUN_KEY_ABS = 2;
/** Run flag: the version is below the previous run's. */
export const RUN_VER_NEG = 4;
/** Largest page count of one run (trims may cover up to 2^31 pages). */
const MAX_RUN = 0x80000000;
/** Worst-case bytes of a one-page data run (for space estimates). */
export const WORST_PAGE_RUN = 1 + 8 + 5 + 8 + 4;
/** Fewest data pages one header can describe (every page its own worst-case run). */
export const MIN_PAGES_PER_HEADER = Math.floor(BODY_MAX / WORST_PAGE_RUN);

/** Bytes of `v` (a non-negative safe integer) as an unsigned LEB128 varint. */
export function varintLen(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  let n = 4;
  v = Math.floor(v / 0x10000000);
  while (v > 0) {
    n++;
    v = Math.floor(v / 128);
  }
  return n;
}

/** Writes `v` at `o`; returns the offset after it. */
function putVarint(b: Buffer, o: number, v: number): number {
  while (v >= 0x80) {
    b[o++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  b[o++] = v;
  return o;
}

/** Bytes of a run with the given fields, relative to the previous run's key and version. */
function runBytes(trim: boolean, key: number, first: number, count: number, version: number, prevKey: number, prevVer: number): number {
  const k = key >= prevKey ? key - prevKey : key;
  const d = version >= prevVer ? version - prevVer : prevVer - version;
  return varintLen(count * 8 + 7) + varintLen(k) + varintLen(first) + varintLen(d) + (trim ? 0 : 4 * count);
}

/**
 * Builds the runs of one record header in place. Consecutive pages of one key and
 * version written in order extend the pending run. `add*` return false, changing
 * nothing, when the run would not fit in the header.
 */
export class RunWriter {
  /** Runs written (including the pending one). */
  runs = 0;
  /** Data pages described so far. */
  dataPages = 0;
  private o = HEADER_FIXED;
  private prevKey = 0;
  private prevVer = 0;
  private pend = false;
  private pTrim = false;
  private pKey = 0;
  private pFirst = 0;
  private pCount = 0;
  private pVer = 0;
  private pSize = 0;
  private readonly pCrcs: number[] = [];

  constructor(readonly h: Buffer) {}

  /** Body bytes used, the pending run included. */
  get bytes(): number {
    return this.o - HEADER_FIXED + this.pSize;
  }

  /** Adds one data page (key, page, version) with its crc32c. */
  addPage(key: number, page: number, version: number, crc: number): boolean {
    if (this.pend && !this.pTrim && key === this.pKey && version === this.pVer && page === this.pFirst + this.pCount) {
      const grow = 4 + varintLen((this.pCount + 1) * 8 + 7) - varintLen(this.pCount * 8 + 7);
      if (this.bytes + grow > BODY_MAX) return false;
      this.pCount++;
      this.pCrcs.push(crc);
      this.pSize += grow;
      this.dataPages++;
      return true;
    }
    const pk = this.pend ? this.pKey : this.prevKey;
    const pv = this.pend ? this.pVer : this.prevVer;
    const size = runBytes(false, key, page, 1, version, pk, pv);
    if (this.bytes + size > BODY_MAX) return false;
    this.flushPending();
    this.start(false, key, page, 1, version, size);
    this.pCrcs.push(crc);
    this.dataPages++;
    return true;
  }

  /** Adds a trim run of `count` pages from `first`. */
  addTrim(key: number, first: number, count: number, version: number): boolean {
    const pk = this.pend ? this.pKey : this.prevKey;
    const pv = this.pend ? this.pVer : this.prevVer;
    const size = runBytes(true, key, first, count, version, pk, pv);
    if (this.bytes + size > BODY_MAX) return false;
    this.flushPending();
    this.start(true, key, first, count, version, size);
    return true;
  }

  /** Writes the pending run; returns the body byte count. */
  finish(): number {
    this.flushPending();
    return this.o - HEADER_FIXED;
  }

  private start(trim: boolean, key: number, first: number, count: number, version: number, size: number): void {
    this.pend = true;
    this.pTrim = trim;
    this.pKey = key;
    this.pFirst = first;
    this.pCount = count;
    this.pVer = version;
    this.pSize = size;
    this.runs++;
  }

  private flushPending(): void {
    if (!this.pend) return;
    const h = this.h;
    let flags = this.pTrim ? RUN_TRIM : 0;
    let k = this.pKey - this.prevKey;
    if (this.pKey < this.prevKey) {
      flags |= RUN_KEY_ABS;
      k = this.pKey;
    }
    let d = this.pVer - this.prevVer;
    if (d < 0) {
      flags |= RUN_VER_NEG;
      d = -d;
    }
    let o = putVarint(h, this.o, this.pCount * 8 + flags);
    o = putVarint(h, o, k);
    o = putVarint(h, o, this.pFirst);
    o = putVarint(h, o, d);
    if (!this.pTrim) {
      for (const c of this.pCrcs) {
        h.writeUInt32LE(c, o);
        o += 4;
      }
    }
    this.o = o;
    this.prevKey = this.pKey;
    this.prevVer = this.pVer;
    this.pend = false;
    this.pSize = 0;
    this.pCrcs.length = 0;
  }
}

/** Scratch header for headersFor (its content is never written anywhere). */
const SCRATCH = Buffer.alloc(PAGE);

/**
 * Record headers `pages`, added in this order, take when each header is filled before the
 * next one starts (as the write path packs a cleaner chunk). Costs one RunWriter pass; crcs
 * do not change a run's size.
 */
export function headersFor(pages: ReadonlyArray<{ key: number; page: number; version: number }>): number {
  if (pages.length === 0) return 0;
  let w = new RunWriter(SCRATCH);
  let headers = 1;
  for (const p of pages) {
    if (w.addPage(p.key, p.page, p.version, 0)) continue;
    w = new RunWriter(SCRATCH);
    headers++;
    w.addPage(p.key, p.page, p.version, 0);
  }
  return headers;
}

/**
 * Decoded runs of one header, in parallel arrays (reused between headers). `crcAt[i]` is
 * the byte offset in the header of run i's first crc32c; `block[i]` is the index of its
 * first data block within the record (0-based, after the header).
 */
export class RunTable {
  n = 0;
  readonly trim = new Uint8Array(BODY_MAX);
  readonly key = new Float64Array(BODY_MAX);
  readonly first = new Float64Array(BODY_MAX);
  readonly count = new Float64Array(BODY_MAX);
  readonly version = new Float64Array(BODY_MAX);
  readonly crcAt = new Int32Array(BODY_MAX);
  readonly block = new Int32Array(BODY_MAX);

  /**
   * Decodes `runs` runs from the body of header `h` (`bodyBytes` long) and checks that
   * their data pages add up to `dataBlocks`. Returns false on any malformed field.
   */
  decode(h: Buffer, runs: number, bodyBytes: number, dataBlocks: number): boolean {
    const end = HEADER_FIXED + bodyBytes;
    if (end > PAGE - 4) return false;
    let o = HEADER_FIXED;
    let prevKey = 0;
    let prevVer = 0;
    let blocks = 0;
    const read = (): number => {
      let v = 0;
      let mul = 1;
      for (;;) {
        if (o >= end || mul > 2 ** 56) return -1;
        const b = h[o++];
        v += (b & 0x7f) * mul;
        if (b < 0x80) return v > Number.MAX_SAFE_INTEGER ? -1 : v;
        mul *= 128;
      }
    };
    for (let i = 0; i < runs; i++) {
      const tag = read();
      const k = read();
      const first = read();
      const d = read();
      if (tag < 8 || k < 0 || first < 0 || d < 0) return false;
      const flags = tag % 8;
      const count = (tag - flags) / 8;
      const key = flags & RUN_KEY_ABS ? k : prevKey + k;
      const version = flags & RUN_VER_NEG ? prevVer - d : prevVer + d;
      if (!Number.isSafeInteger(key) || !Number.isSafeInteger(version) || version < 0) return false;
      if (count > MAX_RUN || first + count > MAX_RUN) return false;
      const trim = (flags & RUN_TRIM) !== 0;
      this.trim[i] = trim ? 1 : 0;
      this.key[i] = key;
      this.first[i] = first;
      this.count[i] = count;
      this.version[i] = version;
      this.block[i] = blocks;
      this.crcAt[i] = o;
      if (!trim) {
        o += 4 * count;
        if (o > end) return false;
        blocks += count;
      }
      prevKey = key;
      prevVer = version;
    }
    this.n = runs;
    return o === end && blocks === dataBlocks;
  }
}
