/**
 * Smoothed writeback: an fdatasync in the background after every `bytes` the log wrote.
 *
 * The log's writes go through the page cache, and without a host flush nothing makes them
 * go to the device until the kernel's writeback finds them — dirty_expire_centisecs (30 s)
 * later, or once dirty pages pass dirty_background_ratio. After a burst of small random
 * writes a node then holds gigabytes of dirty pages, and the kernel writes them back all at
 * once, long after the burst, taking CPU and the device from whatever runs then. Measured
 * here (vmstat, cairn up + fio nbd): 15 s of 4 KiB random writes at QD32 followed by 1 MiB
 * reads — the reads' first seconds ran at 120–190 MB/s while 0.5–0.7 GB/s of writeback
 * went on, against ~1 GB/s once it was over. RocksDB's bytes_per_sync answers the same
 * problem with sync_file_range(2); Node has no binding for that, so this uses fdatasync(2),
 * which also flushes the device's cache — one at a time, on the thread pool, so the log
 * never waits for it.
 *
 * An fdatasync error here fails the write path (the allocator refuses further work), as the
 * write path's own fdatasync does: Linux reports a writeback error to a file once, so
 * swallowing it here would let the next flush's fdatasync succeed over lost pages.
 */
import { datasync } from './device-io.ts';

/** Starts a background fdatasync each `bytes` written, one at a time. */
export class SmoothedWriteback {
  private since = 0;
  private running: Promise<void> | null = null;

  /**
   * @param fd the device file
   * @param bytes bytes written between two fdatasyncs; 0 turns it off
   * @param onSync called after each completed fdatasync (a counter)
   * @param fail called with the error of a failed fdatasync
   */
  constructor(private readonly fd: number, private readonly bytes: number, private readonly onSync: () => void, private readonly fail: (e: Error) => void) {}

  /** Counts `n` bytes written by the log; starts an fdatasync when `bytes` were written since the last and none runs. */
  wrote(n: number): void {
    if (this.bytes === 0) return;
    this.since += n;
    if (this.since < this.bytes || this.running) return;
    this.since = 0;
    this.running = datasync(this.fd).then(this.onSync, this.fail).finally(() => {
      this.running = null;
    });
  }

  /** Resolves when no fdatasync of this writeback is running (before the file is closed). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }
}
