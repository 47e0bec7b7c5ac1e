/**
 * When host I/O skips libuv's thread pool. A read or write handed to the pool costs two
 * thread wake-ups on top of the system call (the worker, then the event loop through its
 * eventfd); for a page in the page cache those wake-ups are most of the time, and on a
 * machine with few cores each is a context switch away from the process that should be
 * running. Profiles of a node serving 4 KiB random reads at queue depth 32 put 40 % of its
 * busy time in the pool hand-off of fs.read, against 3 µs (median) for the pread(2) itself;
 * under 4 KiB random writes, 40 % in the hand-off of fs.writev.
 *
 * So small host reads, and the write path's small batch writes into the page cache, are made
 * synchronously on the event loop while they are fast, under two bounds:
 * - **per turn**: at most `turnMaxCalls` calls and `turnBudgetUs` of measured time per turn
 *   of the event loop (setImmediate ends a turn), so one batch of parsed requests cannot
 *   hold the loop for long; the rest goes to the pool as before;
 * - **back-off**: each synchronous call is timed, and an exponentially weighted mean of the
 *   times (each sample clamped to `sampleClampUs`, so one preempted call does not count as a
 *   slow device) above `slowMeanUs` means the calls wait on the device (page-cache misses,
 *   dirty-page throttling) rather than copy memory; then every such call goes to the pool for
 *   `backoffMs`, after which a fresh mean starts. A slow device thus costs the loop a handful
 *   of slow calls per back-off period (≈ 1 % of its time), not one per request.
 * fdatasync, and the cleaner's and recovery's reads, always use the pool. The cleaner's
 * copies are written by the write path, so its batches follow the write policy like host
 * batches.
 */

/** The bounds of one SyncIoPolicy (see above). */
export interface SyncIoLimits {
  /** Largest call made synchronously, bytes. */
  maxBytes: number;
  /** Synchronous calls per turn of the event loop, at most. */
  turnMaxCalls: number;
  /** Measured synchronous time per turn after which the turn's remaining calls use the pool, µs. */
  turnBudgetUs: number;
  /** Mean call time above which calls back off to the pool, µs. */
  slowMeanUs: number;
  /** A single call's time counts for at most this much in the mean, µs. */
  sampleClampUs: number;
  /** How long calls stay on the pool after the mean went above slowMeanUs, ms. */
  backoffMs: number;
}

/**
 * Host reads. Measured on the project's 2-core VM: from the page cache a 4 KiB pread takes
 * 3 µs (median; p99 7–12 under load) and a 128 KiB one 12 µs; from the virtio disk a 4 KiB
 * pread takes 58 µs (median). Preemption makes ~1 in 10⁴ cached reads take ≥ 1 ms on a loaded
 * machine; clamped to 100 µs, one such read moves the mean by (100 − 5) / 8 ≈ 12 µs.
 */
export const READ_LIMITS: Readonly<SyncIoLimits> = { maxBytes: 128 * 1024, turnMaxCalls: 64, turnBudgetUs: 1000, slowMeanUs: 25, sampleClampUs: 100, backoffMs: 100 };

/**
 * Write-path batch writes (pwritev of a batch's pages and record headers). Measured the same
 * way under 4 KiB random writes at queue depth 32: 12 µs median, 21 µs p90, 90 µs p99; a
 * first touch of page-cache memory the VM's balloon returned to the host costs ~12 µs per
 * 4 KiB, and dirty-page throttling stalls for milliseconds.
 */
export const WRITE_LIMITS: Readonly<SyncIoLimits> = { maxBytes: 128 * 1024, turnMaxCalls: 32, turnBudgetUs: 1000, slowMeanUs: 60, sampleClampUs: 250, backoffMs: 100 };

/** Weight of the newest sample in the mean. */
const ALPHA = 1 / 8;

/** Counters of one SyncIoPolicy. */
export interface SyncIoFigures {
  /** Calls made synchronously. */
  calls: number;
  /** Times the mean call time went above slowMeanUs and calls went back to the pool. */
  backoffs: number;
}

/**
 * The policy above for one kind of call, with its clock and its end-of-turn hook injectable
 * for tests. One instance per kind serves the whole process (`syncReads`, `syncWrites`).
 */
export class SyncIoPolicy {
  /** Off: every call goes to the pool (setSyncIo, CAIRN_SYNC_IO). */
  enabled = true;
  private turnCalls = 0;
  private turnUs = 0;
  private meanUs = 0;
  private backoffUntil = 0;
  /** What this policy let through and how often it backed off, since the process started. */
  readonly figures: SyncIoFigures = { calls: 0, backoffs: 0 };
  private readonly endTurn = (): void => {
    this.turnCalls = 0;
    this.turnUs = 0;
  };

  /**
   * @param limits the bounds (READ_LIMITS, WRITE_LIMITS)
   * @param now clock in ms (performance.now by default)
   * @param onTurnEnd schedules a callback at the end of this event-loop turn (setImmediate by default)
   */
  constructor(
    readonly limits: Readonly<SyncIoLimits>,
    private readonly now: () => number = () => performance.now(),
    private readonly onTurnEnd: (f: () => void) => void = (f) => void setImmediate(f),
  ) {}

  /** Whether a call of `bytes` is to be made synchronously now; counts it if so. */
  take(bytes: number): boolean {
    const l = this.limits;
    if (!this.enabled || bytes > l.maxBytes) return false;
    if (this.backoffUntil !== 0) {
      if (this.now() < this.backoffUntil) return false;
      this.backoffUntil = 0;
      this.meanUs = 0;
    }
    if (this.turnCalls >= l.turnMaxCalls || this.turnUs >= l.turnBudgetUs) return false;
    if (this.turnCalls++ === 0) this.onTurnEnd(this.endTurn);
    this.figures.calls++;
    return true;
  }

  /** Records one synchronous system call that took `us` µs. */
  record(us: number): void {
    const l = this.limits;
    this.turnUs += us;
    this.meanUs += (Math.min(us, l.sampleClampUs) - this.meanUs) * ALPHA;
    if (this.meanUs > l.slowMeanUs && this.backoffUntil === 0) {
      this.backoffUntil = this.now() + l.backoffMs;
      this.figures.backoffs++;
    }
  }

  /** Whether calls are on the pool because of a back-off now. */
  backingOff(): boolean {
    return this.backoffUntil !== 0 && this.now() < this.backoffUntil;
  }
}

/** The process's policy for host reads (device-io.ts hostPreadFully / hostPreadvFully). */
export const syncReads = new SyncIoPolicy(READ_LIMITS);
/** The process's policy for write-path batch writes (device-io.ts hostPwritevFully). */
export const syncWrites = new SyncIoPolicy(WRITE_LIMITS);
{
  // CAIRN_SYNC_IO=on (default) | reads | writes | off: which kinds may skip the pool.
  const mode = process.env.CAIRN_SYNC_IO || 'on';
  if (!['on', 'reads', 'writes', 'off'].includes(mode)) throw new Error(`CAIRN_SYNC_IO must be on, reads, writes or off (got "${mode}")`);
  syncReads.enabled = mode === 'on' || mode === 'reads';
  syncWrites.enabled = mode === 'on' || mode === 'writes';
}

/** Turns synchronous host I/O on or off for this process (default on), reads and writes separately. */
export function setSyncIo(on: { reads?: boolean; writes?: boolean }): void {
  if (on.reads !== undefined) syncReads.enabled = on.reads;
  if (on.writes !== undefined) syncWrites.enabled = on.writes;
}

/** This process's synchronous host I/O so far: reads, writes and their back-offs to the pool. */
export function syncIoFigures(): { reads: SyncIoFigures; writes: SyncIoFigures } {
  return { reads: { ...syncReads.figures }, writes: { ...syncWrites.figures } };
}
