/**
 * Per-segment state of one partition, in flat typed arrays (≈ 37 bytes per segment).
 *
 * Life cycle: FREE → OPEN (a stream appends to it) → SEALED (full, or left by a restart)
 * → CLEANING (the cleaner is copying its live blocks) → back to SEALED, or DYING once no
 * live block is left → FREE when (a) the records that killed its blocks are durable (an
 * fdatasync completed after they were written — for kills by the host record still being
 * filled, after it was sealed), (b) every trim record it holds is covered by a committed
 * checkpoint, and (c) no read that looked up one of its blocks is still in flight. (a) and
 * (b) keep roll-forward recovery correct; (c) keeps a read from returning data of a reused
 * segment.
 */

/** Segment state: on the free list. */
export const FREE = 0;
/** Segment state: a stream appends to it. */
export const OPEN = 1;
/** Segment state: no longer appended to; may be cleaned. */
export const SEALED = 2;
/** Segment state: the cleaner is copying its live pages out. */
export const CLEANING = 3;
/** Segment state: no live block left; waiting for the conditions to be freed. */
export const DYING = 4;

/** Flat arrays indexed by segment number, plus the free list. */
export class SegmentTable {
  readonly state: Uint8Array;
  /** Live blocks: mapped pages plus pinned old versions. */
  readonly live: Int32Array;
  /** Reads in flight on blocks of this segment. */
  readonly readers: Int32Array;
  /** Host clock when the segment was sealed (its data's age for cost-benefit cleaning). */
  readonly sealedAt: Float64Array;
  /** Highest seq of a sealed record that killed one of its blocks (or emptied it). */
  readonly killSeq: Float64Array;
  /** Highest generation of an open (unsealed) host record that killed one of its blocks. */
  readonly hotKill: Float64Array;
  /** Highest seq of a trim record in the segment (0: none). */
  readonly trimSeq: Float64Array;
  /** Free segments (a stack). */
  private readonly free: number[] = [];

  constructor(readonly count: number, readonly blocks: number) {
    this.state = new Uint8Array(count);
    this.live = new Int32Array(count);
    this.readers = new Int32Array(count);
    this.sealedAt = new Float64Array(count);
    this.killSeq = new Float64Array(count);
    this.hotKill = new Float64Array(count);
    this.trimSeq = new Float64Array(count);
  }

  /** Number of free segments. */
  get freeCount(): number {
    return this.free.length;
  }

  /** Rebuilds the free list from `state` (FREE entries), highest index at the bottom. */
  rebuildFree(): void {
    this.free.length = 0;
    for (let s = this.count - 1; s >= 0; s--) if (this.state[s] === FREE) this.free.push(s);
  }

  /** Marks `s` free and pushes it on the free list. */
  release(s: number): void {
    this.state[s] = FREE;
    this.live[s] = 0;
    this.killSeq[s] = 0;
    this.hotKill[s] = 0;
    this.trimSeq[s] = 0;
    this.free.push(s);
  }

  /** The segment take() would hand out now (keep aside), or -1: the newest free one with no reads in flight. */
  next(): number {
    for (let i = this.free.length - 1; i >= 0; i--) if (this.readers[this.free[i]] === 0) return this.free[i];
    return -1;
  }

  /**
   * Takes a free segment with no reads in flight, or returns -1. The segment becomes OPEN.
   * `keep` free segments are left in place (the cleaner's reserve).
   */
  take(keep: number): number {
    if (this.free.length <= keep) return -1;
    for (let i = this.free.length - 1; i >= 0; i--) {
      const s = this.free[i];
      if (this.readers[s] !== 0) continue;
      this.free.splice(i, 1);
      this.state[s] = OPEN;
      this.live[s] = 0;
      this.killSeq[s] = 0;
      this.hotKill[s] = 0;
      this.trimSeq[s] = 0;
      return s;
    }
    return -1;
  }

  /** Counts of segments per state. */
  counts(): { free: number; open: number; sealed: number; cleaning: number; dying: number } {
    const c = [0, 0, 0, 0, 0];
    for (let s = 0; s < this.count; s++) c[this.state[s]]++;
    return { free: c[FREE], open: c[OPEN], sealed: c[SEALED], cleaning: c[CLEANING], dying: c[DYING] };
  }
}
