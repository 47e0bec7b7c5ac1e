/**
 * The recovery rate limit of one node: a token bucket over the bytes recovery reads
 * (resync, backfill and rebalance pulls, scrub reads) that yields to the foreground. While
 * host I/O has arrived within the last `foregroundWindowMs`, recovery gets only
 * `foregroundShare` of the configured rate (and the node pulls one extent at a time) — the role of Ceph's osd_recovery_sleep and
 * osd_recovery_max_active, and of mClock's recovery reservation: recovery always moves, but
 * hosts come first. The rate can be changed at any time (it comes from the cluster map's
 * settings, so an operator changes it for every node at once).
 */

/** Options of RecoveryThrottle. */
export interface RecoveryThrottleOptions {
  /** Bytes per second; 0 = unlimited. */
  bytesPerSec: number;
  /** Fraction (0..1] of the rate recovery keeps while the foreground is active (default 0.05). */
  foregroundShare?: number;
  /** How long after the last host request the foreground counts as active (ms, default 250). */
  foregroundWindowMs?: number;
  /** Largest burst (ms of the rate) a bucket left idle may spend at once (default 100 ms). */
  burstMs?: number;
}

/**
 * Share of the rate recovery keeps while hosts do I/O. Small: on a few cores, a recovery
 * byte costs far more CPU than a byte of 4 KiB host writes, and `npm run bench -- recovery`
 * holds foreground IOPS during a backfill to ≥ 70% of idle with it.
 */
export const DEFAULT_FOREGROUND_SHARE = 0.05;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A token bucket in virtual time: `take(bytes)` resolves when those bytes may be moved. */
export class RecoveryThrottle {
  private rate: number;
  private readonly share: number;
  private readonly windowMs: number;
  private readonly burstMs: number;
  /** Virtual time (performance.now ms) up to which the bucket's budget is spent. */
  private spentUntil = 0;
  private lastForeground = -Infinity;
  /** Milliseconds recovery waited for the limit since start. */
  waitedMs = 0;

  constructor(opts: RecoveryThrottleOptions) {
    this.rate = Math.max(0, opts.bytesPerSec);
    this.share = Math.min(1, Math.max(0.01, opts.foregroundShare ?? DEFAULT_FOREGROUND_SHARE));
    this.windowMs = opts.foregroundWindowMs ?? 250;
    this.burstMs = opts.burstMs ?? 100;
  }

  /** The configured rate (bytes/s; 0 = unlimited). */
  get bytesPerSec(): number {
    return this.rate;
  }

  /** Changes the rate (bytes/s; 0 = unlimited); applies to the next take(). */
  setRate(bytesPerSec: number): void {
    this.rate = Math.max(0, bytesPerSec);
  }

  /** Notes a host request (call it on every foreground read or write; O(1)). */
  foreground(): void {
    this.lastForeground = performance.now();
  }

  /** Whether host I/O arrived within the foreground window. */
  get foregroundActive(): boolean {
    return performance.now() - this.lastForeground < this.windowMs;
  }

  /** The rate in force now (bytes/s; 0 = unlimited). */
  effectiveRate(): number {
    if (this.rate === 0) return 0;
    return this.foregroundActive ? this.rate * this.share : this.rate;
  }

  /**
   * Waits until `bytes` more may be moved under the rate in force, then charges them.
   * Resolves at once when unlimited.
   */
  async take(bytes: number): Promise<void> {
    const rate = this.effectiveRate();
    if (rate <= 0 || bytes <= 0) return;
    const now = performance.now();
    this.spentUntil = Math.max(this.spentUntil, now - this.burstMs) + (bytes / rate) * 1000;
    const wait = this.spentUntil - now;
    if (wait > 1) {
      this.waitedMs += wait;
      await sleep(wait);
    }
  }
}
