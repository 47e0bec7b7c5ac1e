/**
 * Pre-zeroing of never-written segments when the device is a sparse regular file.
 *
 * A development or `cairn up` device is a sparse file. Appending into a hole costs twice:
 * the write reserves blocks (ext4 delayed allocation, 60–140 µs for 8 KiB here against
 * ~10 µs into allocated blocks), and the next fdatasync must commit the new extent through
 * the journal (fdatasync after 4 KiB into a hole: 230–290 µs here, three processes at once
 * 440–500 µs; into allocated blocks 145 µs and ~250 µs). A log that fsyncs small writes —
 * a synchronous host, FUA — pays that on every write until the log has wrapped once.
 *
 * So the segment the log will open next is filled with zeros in the background (one
 * pwrite of a segment through the thread pool), when its header block reads as zeros (a
 * segment the log has used starts with a record header). The journal then commits its
 * blocks once, at the next fdatasync, not once per write. A batch write into a segment
 * whose zeroing is in flight waits for it, so zeros never land over data.
 *
 * Safe by construction: only a free segment is zeroed (no live page, no read in flight —
 * `SegmentTable.next` skips segments with readers), and a free segment's old records are
 * never needed again (the log overwrites them anyway). Off for block devices (they have no
 * holes, and zeroing would only cost writes) and for files without holes, and with
 * AllocatorOptions.prezero false. Like ext4's own fallocate would, except fallocate leaves
 * "unwritten" extents whose conversion still goes through the journal on every fdatasync.
 */
import { read } from 'node:fs';
import type { PartitionState } from './partition-state.ts';
import { PAGE } from './layout.ts';
import { pwritevFully } from './device-io.ts';

/** One zero buffer per segment size, shared by the partitions of the process. */
const ZEROS = new Map<number, Buffer>();

/** Zeroes the segment the log will open next, ahead of it (see the module comment). */
export class SegmentPrezero {
  /** Segments looked at: 1 once checked (zeroed, or found used). */
  private readonly seen: Uint8Array;
  /** The zeroing in flight: its segment and completion. */
  private inflight: { seg: number; done: Promise<void> } | null = null;
  /** `enabled`: the device is a regular file with holes (Allocator.open decides); `delayMs`: test hook (AllocatorOptions.prezeroDelayMs). */
  constructor(private readonly st: PartitionState, private readonly enabled: boolean, private readonly delayMs = 0) {
    this.seen = new Uint8Array(enabled ? st.geo.segments : 0);
  }

  /** Starts zeroing the segment the log takes next, unless one is in flight or it was looked at. */
  ahead(): void {
    if (!this.enabled || this.inflight) return;
    const seg = this.st.segs.next();
    if (seg < 0 || this.seen[seg]) return;
    this.seen[seg] = 1;
    const done = this.zero(seg).catch(() => undefined).finally(() => {
      if (this.inflight?.seg === seg) this.inflight = null;
    });
    this.inflight = { seg, done };
  }

  /** Resolves when no zeroing is in flight (before the file is closed). */
  async idle(): Promise<void> {
    while (this.inflight) await this.inflight.done;
  }

  /** Resolves when no zeroing of `seg` is in flight (at once, undefined, in the common case). */
  before(seg: number): Promise<void> | undefined {
    return this.inflight?.seg === seg ? this.inflight.done : undefined;
  }

  /** Zeroes `seg` when its first block reads as zeros (never written). Errors are left to the log's own writes. */
  private async zero(seg: number): Promise<void> {
    const { fd, offset, S } = this.st.geo;
    const at = offset + (1 + seg * S) * PAGE;
    // Read through the thread pool, never on the event loop: a hole is never cached, so its
    // read maps blocks (ext4_map_blocks under i_data_sem) and waits behind the file's delayed
    // allocation writeback — 13–21 ms for 1 read in 10 under random writes here (strace),
    // the whole node's loop stalled with it. The hand-off (~40 µs) is paid once per segment
    // the log takes. Not device-io's counted pread (the tests count host reads).
    const head = Buffer.alloc(PAGE);
    const bytesRead = await new Promise<number>((resolve, reject) => read(fd, head, 0, PAGE, at, (err, n) => (err ? reject(err) : resolve(n))));
    if (bytesRead === PAGE && !isZero(head)) return;
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    let zeros = ZEROS.get(S);
    if (!zeros) ZEROS.set(S, (zeros = Buffer.alloc(S * PAGE)));
    await pwritevFully(fd, [zeros], at);
    this.st.counters.prezeroedSegments++;
  }
}

/** Whether every byte of `b` is 0. */
function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i += 8) if (b.readBigUInt64LE(i) !== 0n) return false;
  return true;
}
