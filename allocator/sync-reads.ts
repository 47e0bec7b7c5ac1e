/**
 * When a host read skips libuv's thread pool. A read handed to the pool costs two thread
 * wake-ups on top of the system call (the worker, then the event loop through its eventfd);
 * for a page in the page cache those wake-ups are most of the time, and on a machine with few
 * cores each is a context switch away from the process that should be running. Profiles of a
 * node serving 4 KiB random reads at queue depth 32 put 40 % of its busy time in the pool
 * hand-off of fs.read, against 3 µs (median) for the pread(2) itself.
 *
 * So small host reads are made synchronously on the event loop while they are fast, under
 * two bounds:
 * - **per turn**: at most TURN_MAX_READS reads and TURN_BUDGET_US of measured read time per
 *   turn of the event loop (setImmediate ends a turn), so one batch of parsed requests cannot
 *   hold the loop for long; the rest of the batch goes to the pool as before;
 * - **back-off**: each synchronous read is timed, and an exponentially weighted mean of the
 *   times (each sample clamped to SAMPLE_CLAMP_US, so one preempted read does not count as a
 *   slow device) above SLOW_MEAN_US means the pages are coming from the device rather than the
 *   page cache; then every host read goes to the pool for BACKOFF_MS, after which a fresh
 *   mean starts. A cold device thus costs the loop a handful of device reads per back-off
 *   period (≈ 1 % of its time), not one per request.
 * Cleaner and recovery reads always use the pool.
 */

/** Largest host read made synchronously, bytes. */
export const SYNC_READ_MAX_BYTES = 128 * 1024;
/** Synchronous reads per turn of the event loop, at most. */
export const TURN_MAX_READS = 64;
/** Measured synchronous read time per turn after which the turn's remaining reads use the pool, µs. */
export const TURN_BUDGET_US = 1000;
/**
 * Mean synchronous read time above which reads back off to the pool, µs. Measured on the
 * project's 2-core VM: from the page cache a 4 KiB pread takes 3 µs (median; p99 7–12 under
 * load) and a 128 KiB one 12 µs; from the virtio disk a 4 KiB pread takes 58 µs (median).
 */
export const SLOW_MEAN_US = 25;
/** A single read's time counts for at most this much in the mean, µs (preemption makes ~1 in 10⁴ cached reads take ≥ 1 ms on a loaded 2-core machine; one such read moves the mean by (100 − 5) / 8 ≈ 12 µs). */
export const SAMPLE_CLAMP_US = 100;
/** How long reads stay on the pool after the mean went above SLOW_MEAN_US, ms. */
export const BACKOFF_MS = 100;
/** Weight of the newest sample in the mean. */
const ALPHA = 1 / 8;

/** Counters of one SyncReadPolicy. */
export interface SyncReadFigures {
  /** Host reads made synchronously. */
  reads: number;
  /** Times the mean read time went above SLOW_MEAN_US and reads went back to the pool. */
  backoffs: number;
}

/**
 * The policy above, with its clock and its end-of-turn hook injectable for tests. One
 * instance serves the whole process (`syncReads`).
 */
export class SyncReadPolicy {
  enabled = true;
  private turnReads = 0;
  private turnUs = 0;
  private meanUs = 0;
  private backoffUntil = 0;
  readonly figures: SyncReadFigures = { reads: 0, backoffs: 0 };
  private readonly endTurn = (): void => {
    this.turnReads = 0;
    this.turnUs = 0;
  };

  /**
   * @param now clock in ms (performance.now by default)
   * @param onTurnEnd schedules a callback at the end of this event-loop turn (setImmediate by default)
   */
  constructor(
    private readonly now: () => number = () => performance.now(),
    private readonly onTurnEnd: (f: () => void) => void = (f) => void setImmediate(f),
  ) {}

  /** Whether a host read of `bytes` is to be made synchronously now; counts it if so. */
  take(bytes: number): boolean {
    if (!this.enabled || bytes > SYNC_READ_MAX_BYTES) return false;
    if (this.backoffUntil !== 0) {
      if (this.now() < this.backoffUntil) return false;
      this.backoffUntil = 0;
      this.meanUs = 0;
    }
    if (this.turnReads >= TURN_MAX_READS || this.turnUs >= TURN_BUDGET_US) return false;
    if (this.turnReads++ === 0) this.onTurnEnd(this.endTurn);
    this.figures.reads++;
    return true;
  }

  /** Records one synchronous read system call that took `us` µs. */
  record(us: number): void {
    this.turnUs += us;
    this.meanUs += (Math.min(us, SAMPLE_CLAMP_US) - this.meanUs) * ALPHA;
    if (this.meanUs > SLOW_MEAN_US && this.backoffUntil === 0) {
      this.backoffUntil = this.now() + BACKOFF_MS;
      this.figures.backoffs++;
    }
  }

  /** Whether reads are on the pool because of a back-off now. */
  backingOff(): boolean {
    return this.backoffUntil !== 0 && this.now() < this.backoffUntil;
  }
}

/** The process's policy, used by hostPreadFully / hostPreadvFully (device-io.ts). */
export const syncReads = new SyncReadPolicy();

/** Turns synchronous host reads on or off for this process (default on). */
export function setSyncReads(on: boolean): void {
  syncReads.enabled = on;
}

/** Host reads this process made synchronously, and its back-offs to the pool. */
export function syncReadFigures(): SyncReadFigures {
  return { ...syncReads.figures };
}
