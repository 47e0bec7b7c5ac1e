/**
 * Write-lease generations the catalog takes for itself, and the writers it fenced by doing
 * so. A snapshot is a writer change by a writer that writes nothing: the catalog takes the
 * volume's next generation (fencing the attached writer everywhere), makes the members agree
 * on every unsettled extent, pins, and lets go. The fenced writer then asks to resume: it
 * gets a new generation when every generation granted since its own was one of the
 * catalog's (no other attachment took over), after the catalog's work on the volume ended.
 * Runs beside the map authority (its ledger issues the generations). The record of which
 * generations were the catalog's is in memory: after an authority restart a fenced writer
 * is refused and reattaches (the safe side).
 */

/** A writer that may not resume: another attachment took the lease since it was fenced. */
export class LeaseTakenError extends Error {
  override name = 'LeaseTakenError';
}

/** The ledger operations the coordinator needs (the authority's). */
export interface LeaseLedgerAccess {
  /** Grants the next generation of `volume`, durably. */
  acquire(volume: number): Promise<number>;
  /** The last generation granted for `volume` (0: none). */
  last(volume: number): number;
}

/** See the module comment. */
export class LeaseCoordinator {
  private readonly own = new Map<number, Set<number>>();
  private readonly busy = new Map<number, Promise<unknown>>();

  constructor(private readonly ledger: LeaseLedgerAccess) {}

  /**
   * Runs `fn` under a new generation of `volume` taken for the catalog; work on one volume
   * runs one at a time, and writers resuming wait for it.
   * @throws whatever the ledger or `fn` throws.
   */
  withLease<T>(volume: number, fn: (generation: number) => Promise<T>): Promise<T> {
    const prev = this.busy.get(volume) ?? Promise.resolve();
    const run = prev.then(async () => {
      const gen = await this.ledger.acquire(volume);
      let set = this.own.get(volume);
      if (!set) this.own.set(volume, (set = new Set()));
      set.add(gen);
      return fn(gen);
    });
    const tail = run.catch(() => undefined);
    this.busy.set(volume, tail);
    void tail.then(() => {
      if (this.busy.get(volume) === tail) this.busy.delete(volume);
    });
    return run;
  }

  /**
   * Resolves when no catalog work holds `volume`'s lease: every other grant of a generation
   * (an attachment, a takeover) waits for it, so no writer of a newer generation writes
   * while a snapshot is being pinned or a job copies.
   */
  async idle(volume: number): Promise<void> {
    for (let p = this.busy.get(volume); p; p = this.busy.get(volume)) await p;
  }

  /**
   * A writer fenced at generation `from` asks to go on: once the catalog's work on the
   * volume is done, grants it a new generation if every generation after `from` was the
   * catalog's.
   * @throws LeaseTakenError when another attachment took the lease since `from`.
   */
  async resume(volume: number, from: number): Promise<number> {
    await this.idle(volume);
    const last = this.ledger.last(volume);
    const own = this.own.get(volume) ?? new Set<number>();
    for (let g = from + 1; g <= last; g++) {
      if (!own.has(g)) throw new LeaseTakenError(`volume ${volume}: generation ${g} was granted to another attachment after ${from}`);
    }
    return this.ledger.acquire(volume);
  }
}
