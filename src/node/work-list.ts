/**
 * A node's recovery work list: the extents it knows it lacks ("stale": it does not serve
 * reads of them), why (resync, backfill, rebalance), roughly how big, where copies were
 * found, and which a host asked for (pulled first). Keeps the per-kind progress counters in
 * step with the list, and turns it into the form recovery-store.ts keeps on disk.
 */
import { ProgressTracker, type RecoveryKind } from '../recovery/index.ts';
import { extentKey } from '../wire/index.ts';
import type { SavedStale } from './recovery-store.ts';

/** One extent still to pull. */
export interface StaleExtent {
  volume: number;
  extent: number;
  kind: RecoveryKind;
  /** Estimated bytes to copy (the largest copy found; 0 when unknown). */
  bytes: number;
  /** Nodes that recorded the miss (log-guided resync), with their record stamps. */
  reporters: Map<number, number>;
  /** Partitions (of any node) that held the extent when it was found (backfill sources). */
  holders: number[];
  /** When its last pull failed (ms since 1970; 0: never). */
  failedAt: number;
}

/** The stale extents of one node, keyed by extentKey(volume, extent). */
export class WorkList {
  private readonly stale = new Map<number, StaleExtent>();
  private readonly urgent = new Set<number>();
  private readonly inFlight = new Set<number>();
  /** Set whenever the list changes (cleared by whoever stores it). */
  changed = false;

  constructor(readonly progress: ProgressTracker) {}

  /** Extents on the list. */
  get size(): number {
    return this.stale.size;
  }

  /** Whether `extent` of `volume` is on the list. */
  has(volume: number, extent: number): boolean {
    return this.stale.size > 0 && this.stale.has(extentKey(volume, extent));
  }

  /** Every entry, in insertion order. */
  values(): IterableIterator<StaleExtent> {
    return this.stale.values();
  }

  /**
   * Adds an extent (kept with its first kind when already listed; `holders` and a larger
   * `bytes` update it). `counted` false: its progress came back with restored counters.
   */
  mark(volume: number, extent: number, kind: RecoveryKind, bytes: number, holders: number[], counted = true): StaleExtent {
    const k = extentKey(volume, extent);
    let s = this.stale.get(k);
    if (s) {
      if (holders.length) s.holders = holders;
      if (bytes > s.bytes && s.kind === kind) {
        this.progress.add(kind, 0, bytes - s.bytes);
        s.bytes = bytes;
      }
      return s;
    }
    s = { volume, extent, kind, bytes, reporters: new Map(), holders, failedAt: 0 };
    this.stale.set(k, s);
    if (counted || !this.progress.active(kind)) this.progress.add(kind, 1, bytes);
    this.changed = true;
    return s;
  }

  /** Takes `s` off the list: done with `bytes` copied, or no longer needed (null). */
  unmark(s: StaleExtent, bytes: number | null): void {
    const k = extentKey(s.volume, s.extent);
    if (this.stale.get(k) !== s) return;
    this.stale.delete(k);
    this.urgent.delete(k);
    if (bytes === null) this.progress.drop(s.kind, 1, s.bytes);
    else this.progress.done(s.kind, 1, Math.max(bytes, s.bytes));
    this.changed = true;
  }

  /** A host asked for it: pull it before the rest. Returns false when it is not listed. */
  prioritize(volume: number, extent: number): boolean {
    const k = extentKey(volume, extent);
    if (!this.stale.has(k)) return false;
    this.urgent.add(k);
    return true;
  }

  /**
   * The next extent to pull — one a host asked for first, then any whose last failure is
   * older than `retryMs` — marked in flight; null when none is ready.
   */
  take(retryMs: number): StaleExtent | null {
    for (const k of this.urgent) {
      const s = this.stale.get(k);
      if (!s) this.urgent.delete(k);
      else if (!this.inFlight.has(k)) return this.claim(k, s);
    }
    const now = Date.now();
    for (const [k, s] of this.stale) if (!this.inFlight.has(k) && now - s.failedAt > retryMs) return this.claim(k, s);
    return null;
  }

  private claim(k: number, s: StaleExtent): StaleExtent {
    this.inFlight.add(k);
    return s;
  }

  /** The pull of `s` ended (failed: retried after the retry delay). */
  release(s: StaleExtent, failed: boolean): void {
    this.inFlight.delete(extentKey(s.volume, s.extent));
    if (failed) s.failedAt = Date.now();
  }

  /** Whether every listed extent is being pulled right now. */
  get allInFlight(): boolean {
    return this.inFlight.size >= this.stale.size;
  }

  /** The list as recovery-store.ts keeps it. */
  saved(): SavedStale[] {
    return [...this.stale.values()].map((s) => ({ volume: s.volume, extent: s.extent, kind: s.kind, bytes: s.bytes, holders: s.holders }));
  }

  /** [volume, extent] of every entry (the report's `stale`). */
  pairs(): Array<[number, number]> {
    return [...this.stale.values()].map((s) => [s.volume, s.extent]);
  }
}
