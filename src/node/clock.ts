/**
 * Version numbers for writes, assigned by a primary: a hybrid logical clock
 * (Kulkarni et al., "Logical Physical Clocks", OPODIS 2014) packed in a safe integer as
 * milliseconds × 1024 + counter, so versions grow monotonically on a node and roughly
 * follow real time across nodes (a new primary continues above the old one's versions
 * as long as clocks are within a few ms).
 */
export class VersionClock {
  private last = 0;

  /** Next version: strictly greater than every earlier one from this clock and than `seen`. */
  next(seen = 0): number {
    const v = Math.max(this.last + 1, Date.now() * 1024, seen + 1);
    this.last = v;
    return v;
  }
}
