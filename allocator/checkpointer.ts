/**
 * Periodic checkpoints of one partition's page map into its `level` database, off the hot
 * path: the tables of keys changed since the previous checkpoint (encoded a few hundred at
 * a time between event-loop turns), the host clock and the segments' seal clocks, under a
 * log position (cut seq) — so that recovery reads the map and rolls forward only over the
 * records after the cut.
 *
 * Interval: after `factor` × the live pages (at least `minBlocks`) have been appended since
 * the previous cut. Roll-forward reads only record headers (recovery.ts), so a long interval
 * is cheap to recover from, and the checkpoints' metadata bytes stay a small fraction of
 * host bytes (≈ 12 B per mapped page per checkpoint).
 */
import type { CheckpointStore } from './checkpoint-store.ts';
import type { PartitionState } from './partition-state.ts';
import type { WritePath } from './write-path.ts';

/** When to checkpoint. */
export interface CheckpointPolicy {
  /** Checkpoint once hosts wrote this many × the live pages since the last cut. */
  factor: number;
  /** ... but not before hosts wrote this many pages. */
  minBlocks: number;
}

/** Writes checkpoints; at most one runs at a time. */
export class Checkpointer {
  /** Error of the newest background checkpoint that failed, if any. */
  lastError: Error | null = null;
  private running: Promise<void> | null = null;
  private again: Promise<void> | null = null;

  constructor(
    private readonly st: PartitionState,
    private readonly wp: WritePath,
    private readonly store: CheckpointStore,
    private readonly policy: CheckpointPolicy,
    private readonly committed: () => void,
  ) {}

  /** Whether a checkpoint is in progress. */
  get busy(): boolean {
    return this.running !== null;
  }

  /** Resolves when no checkpoint is running (whatever its outcome). */
  async settled(): Promise<void> {
    while (this.running) await this.running.catch(() => undefined);
  }

  /** Starts a background checkpoint when the interval has passed. */
  maybe(): void {
    const st = this.st;
    if (this.running) return;
    // Counted in host pages, not appended blocks: the cleaner's copies (WA − 1 blocks per host
    // page) would otherwise trigger checkpoints WA times as often for no gain — roll-forward
    // can never cover more than the region's own records, whatever the interval.
    if (st.clock - st.clockAtCut < Math.max(this.policy.minBlocks, this.policy.factor * (st.mappedPages + st.retainedPages))) return;
    this.checkpoint().catch((e: Error) => {
      this.lastError = e;
    });
  }

  /** Writes a checkpoint now (after the one in progress, if any); resolves when committed. */
  checkpoint(): Promise<void> {
    if (this.running) {
      if (!this.again) {
        this.again = this.running.catch(() => undefined).then(() => {
          this.again = null;
          return this.checkpoint();
        });
      }
      return this.again;
    }
    const p = this.run().finally(() => {
      this.running = null;
    });
    this.running = p;
    return p;
  }

  private async run(): Promise<void> {
    const st = this.st;
    const cutSeq = st.appliedSeq;
    const openSegments = this.wp.openSegments();
    const sealedAt = st.segs.sealedAt.slice();
    const clock = st.clock;
    const dirty = st.dirty;
    st.dirty = new Set();
    st.clockAtCut = clock;
    try {
      const records: Array<[number, Buffer | null]> = [];
      let n = 0;
      for (const k of dirty) {
        const t = st.tables.get(k);
        records.push([k, t ? t.encode() : null]);
        if (++n % 512 === 0) await new Promise((r) => setImmediate(r));
      }
      // The serialized tables reference only applied records; make them durable first.
      await this.wp.sync(true);
      const bytes = await this.store.save(records, { uuid: st.geo.uuidHex, cutSeq, clock, openSegments }, sealedAt);
      st.counters.ckptBytes += bytes;
      st.counters.checkpoints++;
      if (cutSeq > st.committedCutSeq) st.committedCutSeq = cutSeq;
      this.committed();
    } catch (e) {
      for (const k of dirty) st.dirty.add(k);
      throw e;
    }
  }
}
