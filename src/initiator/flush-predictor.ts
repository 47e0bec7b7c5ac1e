/**
 * Write-through for synchronous writers. A host that makes every write durable before the
 * next one (a database's log, `fio --fsync=1`, `dd oflag=dsync`) sends write, waits, sends
 * flush, waits. Served as asked, the flush costs a second round trip to every member on top
 * of the members' fdatasync. When the volume sees that pattern, it sends the lone write
 * with FUA instead: each member makes it durable before replying, and the flush that
 * follows finds no node dirty and completes without leaving the gateway. The write costs
 * what write + flush cost on the members, minus one round trip through the host, the
 * gateway and the network.
 *
 * The prediction is deliberately narrow, so that a writer that does not flush never pays
 * for an fdatasync per write: only a write with nothing else of the volume in flight, and
 * only after STREAK flushes in a row that each followed at most one write. One flush after
 * two or more writes ends the streak.
 */

/** Flushes in a row, each after at most one write, before lone writes go through with FUA. */
export const STREAK = 4;

/** Tracks whether this volume's host writes synchronously (see the module comment). */
export class FlushPredictor {
  /** Flushes in a row that each followed at most one write (capped at STREAK). */
  private streak = 0;
  /** Writes and trims started since the last flush. */
  private writes = 0;

  /**
   * Notes a write (or trim) about to start and says whether to send it with FUA: true when
   * the streak holds and nothing else is in flight (`busy`: the volume's requests in flight).
   */
  write(busy: number): boolean {
    return this.writes++ === 0 && busy === 0 && this.streak >= STREAK;
  }

  /** Notes a flush: it extends the streak when at most one write came since the last one. */
  flush(): void {
    this.streak = this.writes <= 1 ? Math.min(this.streak + 1, STREAK) : 0;
    this.writes = 0;
  }
}
