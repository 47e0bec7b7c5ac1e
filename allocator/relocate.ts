/**
 * Read relocation: a host read that found its pages scattered over the log hands them,
 * already read and checked, to the cold stream, which writes them side by side. The next
 * read of the same pages is then one contiguous device read instead of many.
 *
 * A log-structured allocator places each overwrite at the log head, so an extent written
 * sequentially and then overwritten by small random writes ends up spread over as many
 * segments as it had writes. Sequential reads of it then cost several device reads (or
 * reads through the gaps) per extent. NetApp WAFL's read reallocation rewrites such blocks
 * when reads find them fragmented; this is that idea on Cairn's cleaner path.
 *
 * The copies go through WritePath.move, the cleaner's own path: each page is re-checked at
 * build time (same block, same version), so a page written, trimmed or moved since the
 * read is simply skipped, and recovery treats a relocated copy as it treats a cleaner copy.
 * Unlike the cleaner, a read can meet pages of the host record still open; the write path
 * skips those (LogStreams.inOpenHost): that record is sealed after the copy's, so replay
 * would let it win the same-version tie and point at the block the run-time map gave up.
 * The cost is one extra append of the pages (no device read: the data is the read's own,
 * verified against its crc32c). Bounded: one relocation in flight per partition, only for
 * reads of at least MIN_PAGES pages, and only while at least a quarter of the segments are
 * free, so it never competes with the cleaner for space.
 */
import { PAGE } from './layout.ts';
import type { MoveItem } from './ops.ts';
import type { PartitionState } from './partition-state.ts';

/** Reads shorter than this many pages are never relocated. */
export const MIN_PAGES = 16;
/** A read is scattered when it needed at least this many device reads (spans)… */
const MIN_SPANS = 4;
/** …or read at least this many blocks (gaps included) per page it returned. */
const MAX_READ_PER_PAGE = 2;
/** At least this fraction of the segments must be free. */
const MIN_FREE_FRACTION = 0.25;

/** Queues moves for the cold stream (WritePath.move with the relocation mark). */
export type QueueMoves = (items: MoveItem[]) => Promise<void>;

/** Decides which reads are relocated and queues their pages. One per partition. */
export class ReadRelocator {
  private inFlight: Promise<void> | null = null;
  private stopped = false;
  /**
   * Where the pages of the relocation in flight are copied; reused by the next one (only one
   * is in flight, and the write path lets go of the pages when the move succeeds). A buffer
   * allocated per relocation was fresh memory, faulted in page by page at each copy.
   */
  private buf: Buffer | null = null;

  constructor(private readonly st: PartitionState, private readonly queue: QueueMoves) {}

  /**
   * Whether a read of `pages` mapped pages that took `spans` device reads over `readBlocks`
   * blocks (gaps included) should be relocated now.
   */
  wants(pages: number, spans: number, readBlocks: number): boolean {
    if (this.inFlight || this.stopped || pages < MIN_PAGES) return false;
    if (spans < MIN_SPANS && readBlocks < MAX_READ_PER_PAGE * pages) return false;
    return this.st.segs.freeCount >= this.st.segs.count * MIN_FREE_FRACTION;
  }

  /**
   * Queues the pages of a verified read of `key` from `firstPage` for the cold stream: page
   * `firstPage + idx[i]`, at byte `idx[i] × 4096` of `data`, read from absolute block
   * `blocks[i]` at version `versions[i]`. The data is copied, so the caller may reuse it at
   * once. Errors of the move are dropped: the pages then simply stay where they are (a
   * failed write path fails every other operation too).
   */
  relocate(key: number, firstPage: number, idx: number[], blocks: number[], versions: number[], data: Buffer): void {
    if (this.inFlight || this.stopped) return; // another read of this partition got there first, or closing
    if (!this.buf || this.buf.length < idx.length * PAGE) this.buf = Buffer.allocUnsafe(idx.length * PAGE);
    const copy = this.buf;
    const S = this.st.geo.S;
    const items: MoveItem[] = new Array(idx.length);
    for (let i = 0; i < idx.length; i++) {
      data.copy(copy, i * PAGE, idx[i] * PAGE, (idx[i] + 1) * PAGE);
      items[i] = { key, page: firstPage + idx[i], version: versions[i], data: copy.subarray(i * PAGE, (i + 1) * PAGE), from: blocks[i], victim: ((blocks[i] - 1) / S) | 0 };
    }
    this.inFlight = this.queue(items).then(
      () => {
        this.inFlight = null;
      },
      () => {
        // A failed move may be rejected while a batch holding its pages is still being
        // written: that buffer is never handed out again (as a failed host write's is not).
        this.buf = null;
        this.inFlight = null;
      },
    );
  }

  /** Takes no more reads, and resolves once the one in flight is applied or failed (before the allocator closes its file). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.inFlight;
  }
}
