/**
 * The single writer's write versions (DESIGN "Data path": versions never come from a wall
 * clock): generation × 2^32 + sequence under the write lease the attachment holds, with the
 * bookkeeping behind the settle watermark a Flush carries — every version below it has
 * completed on every acting member.
 */
import { VERSION_SEQ_SPAN, writeVersion } from '../wire/index.ts';

/** Versions issued under one lease generation at a time. */
export class WriteVersions {
  private gen: number;
  private seq = 0;
  /** Issued and not yet completed. */
  private readonly pending = new Set<number>();
  /** Failed: never settled (their extents stay suspect until the next writer reconciles them). */
  private readonly failed = new Set<number>();

  /** @param generation the lease generation (0 before the first lease: no versions yet). */
  constructor(generation: number) {
    this.gen = generation;
  }

  /** The lease generation versions are issued under. */
  get generation(): number {
    return this.gen;
  }

  /** True when this generation's 2^32 − 1 sequence numbers are used up (take a new lease). */
  get exhausted(): boolean {
    return this.seq + 1 >= VERSION_SEQ_SPAN;
  }

  /**
   * Switches to generation `gen`: the sequence restarts and earlier failures are forgotten
   * (the new writer reconciles what the old one left unsettled).
   */
  adopt(gen: number): void {
    this.gen = gen;
    this.seq = 0;
    this.failed.clear();
  }

  /**
   * The next version, marked in flight until complete() or fail().
   * @throws RangeError when exhausted or without a generation (see writeVersion).
   */
  issue(): number {
    const v = writeVersion(this.gen, this.seq + 1);
    this.seq++;
    this.pending.add(v);
    return v;
  }

  /** Version `v` is on every acting member. */
  complete(v: number): void {
    this.pending.delete(v);
  }

  /** Version `v` failed: it may be on some members only. */
  fail(v: number): void {
    this.pending.delete(v);
    this.failed.add(v);
  }

  /**
   * The settle watermark: the lowest version still in flight or failed, else the next one to
   * be issued (0 without a generation).
   */
  watermark(): number {
    if (this.gen === 0) return 0;
    let w = this.exhausted ? Number.MAX_SAFE_INTEGER : writeVersion(this.gen, this.seq + 1);
    for (const v of this.pending) if (v < w) w = v;
    for (const v of this.failed) if (v < w) w = v;
    return w;
  }
}
