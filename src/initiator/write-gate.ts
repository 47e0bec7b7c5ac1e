/**
 * A shared/exclusive gate for a volume's writes. Page-aligned writes pass shared and never
 * wait unless a read-modify-write is running; a sub-page (unaligned) write takes the gate
 * exclusively so its read-modify-write cannot interleave with another write to the same
 * page. Waiters are served in arrival order.
 */
export class WriteGate {
  private shared = 0;
  private exclusive = false;
  private readonly queue: Array<{ exclusive: boolean; resolve: () => void }> = [];

  /** Enters shared. Resolves immediately in the common case. */
  enterShared(): Promise<void> | undefined {
    if (!this.exclusive && this.queue.length === 0) {
      this.shared++;
      return undefined;
    }
    return new Promise((resolve) => this.queue.push({ exclusive: false, resolve }));
  }

  /** Leaves shared. */
  leaveShared(): void {
    this.shared--;
    this.pump();
  }

  /** Enters exclusive, after every shared holder has left. */
  enterExclusive(): Promise<void> {
    if (!this.exclusive && this.shared === 0 && this.queue.length === 0) {
      this.exclusive = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.queue.push({ exclusive: true, resolve }));
  }

  /** Leaves exclusive. */
  leaveExclusive(): void {
    this.exclusive = false;
    this.pump();
  }

  private pump(): void {
    while (this.queue.length > 0 && !this.exclusive) {
      const next = this.queue[0];
      if (next.exclusive) {
        if (this.shared > 0) return;
        this.queue.shift();
        this.exclusive = true;
        next.resolve();
        return;
      }
      this.queue.shift();
      this.shared++;
      next.resolve();
    }
  }
}
