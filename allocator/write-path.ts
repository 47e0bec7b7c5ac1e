/**
 * The allocator's write path: group commit of host writes, trims and cleaner copies.
 *
 * Every operation queued while the previous group commit is on its way goes into the next
 * one. A group commit ("batch") is built in memory — cleaner copies first, into records of
 * the cold stream, then host operations in arrival order, into records of the hot stream —
 * written with one pwritev per segment touched, and only then applied to the page map.
 * Each record is one header block (its segment summary, see layout.ts and summary.ts)
 * followed by its data pages, so a host write needs no separate metadata write. A 1 MiB
 * host write costs one crc32c per page, one run in the header and one iovec.
 *
 * The host stream's record may stay open across batches: its pages are written (and
 * readable) at once, its header slot is reserved, and the header is written when the
 * record is sealed — when it is full, at the next flush or sync, before a pin, or at the
 * latest `holdMs` after it was opened. One summary block then describes up to a segment of
 * pages instead of one batch; the price is that a process crash loses the open record's
 * pages like any unflushed write. Records get their seq when sealed, and the cold records
 * of a batch are sealed before its host pages are added, so seq order is the order in
 * which the map saw each page — except that pages of the open host record applied before
 * a later cold record replay after it, which changes nothing: a cleaner copy only carries
 * a version that was live when it was built (after every earlier batch was applied), hence
 * not one those earlier pages superseded or tied, and pins cannot change while a host
 * record is open. Blocks killed by the open record are marked per
 * segment (`hotKill`, by record generation) and only count as durable once that record is
 * sealed and an fdatasync has completed.
 *
 * Space: the hot stream leaves RESERVE free segments to the cleaner. A host write that
 * would map more pages than the capacity fails with AllocatorFullError before anything is
 * written; one that merely has to wait for the cleaner stays queued (`hotBlocked`).
 */
import { crc32c } from '@node-rs/crc32';
import { AllocatorFullError, AllocatorStateError } from './errors.ts';
import { NONE, PAGE } from './layout.ts';
import { Batch, flushExt } from './batch.ts';
import { COLD, HOT, LogStreams, RESERVE } from './log-streams.ts';
import { SEALED } from './segments.ts';
import { datasync, hostPwritevFully } from './device-io.ts';
import type { SegmentPrezero } from './prezero.ts';
import type { SmoothedWriteback } from './writeback.ts';
import type { PartitionState } from './partition-state.ts';
import type { HostOp, MoveItem, MoveOp } from './ops.ts';

/** Most pages of host writes in one group commit. */
const MAX_BATCH_PAGES = 1024;

/** What the write path needs from the rest of the allocator. */
export interface WritePathHooks {
  /** After every applied batch (checkpoint trigger, cleaner wake-up). */
  applied(): void;
  /** Host operations wait for free segments. */
  needSpace(): void;
  /** The allocator failed (I/O error): wake everything up. */
  failed(): void;
  /** Frees dying segments whose conditions hold (the cleaner's reclaim). */
  reclaim(): void;
  /** An fdatasync completed: every record with seq ≤ `seq` is durable. */
  synced(seq: number): void;
}

/** Queues, batches, writes and applies appends. See the module comment. */
export class WritePath {
  queue: HostOp[] = [];
  moveQueue: MoveOp[] = [];
  /** First I/O error; the allocator refuses further work after it. */
  failed: Error | null = null;
  /** Host operations wait for the cleaner. */
  hotBlocked = false;
  /** The cleaner found nothing to clean while hosts wait: fail their writes with ENOSPC. */
  spaceStuck = false;
  submitted = 0;
  completed = 0;
  /** The hot and cold streams' append positions and the records being built. */
  readonly log: LogStreams;
  /** New pages admitted by batches in flight (not yet in mappedPages). */
  private pendingNew = 0;
  /** Batches built and being written, oldest first (at most two). */
  private inflight: Batch[] = [];
  private draining = false;
  private hotTimer: NodeJS.Timeout | null = null;
  private sealRequested = false;
  private sealWaiters: Array<() => void> = [];
  private eventWaiters: Array<() => void> = [];
  private flushWaiters: Array<{ target: number; resolve: () => void }> = [];
  private syncTail: Promise<void> = Promise.resolve();
  private pendingSync: Promise<void> | null = null;
  private readonly S: number;

  /**
   * `maxLive`: capacity in pages; `holdMs`: longest a host record stays open (0: seal
   * every record with its batch).
   */
  constructor(private readonly st: PartitionState, private readonly maxLive: number, private readonly holdMs: number, private readonly prezero: SegmentPrezero, private readonly writeback: SmoothedWriteback, private readonly hooks: WritePathHooks) {
    this.S = st.geo.S;
    this.log = new LogStreams(st, () => hooks.reclaim());
  }

  /** Queues a host write or trim. */
  enqueue(op: HostOp): void {
    this.queue.push(op);
    this.submitted++;
    this.kick();
  }

  /**
   * Queues cleaner copies (or, with `relocate`, pages a read found scattered) for the cold
   * stream; resolves when they are written and applied. Items no longer live by then are
   * skipped, and so are the last ones when no free segment is left for them (the cleaner
   * sees them still live in their victim).
   */
  move(items: MoveItem[], fresh: boolean, relocate = false): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.moveQueue.push({ items, fresh, relocate, resolve, reject });
      this.signal();
      this.kick();
    });
  }

  /** Resolves when every operation submitted before the call is applied (or failed). */
  flushQueued(): Promise<void> {
    const target = this.submitted;
    if (this.completed >= target) return Promise.resolve();
    return new Promise<void>((resolve) => this.flushWaiters.push({ target, resolve }));
  }

  /**
   * Makes every applied record durable: seals the open host record first when `sealHost`
   * (flush, checkpoint, close), then one fdatasync, shared by every caller that arrives
   * before it starts.
   */
  async sync(sealHost: boolean): Promise<void> {
    if (sealHost) await this.sealHot();
    if (this.pendingSync) return this.pendingSync;
    const p = this.syncTail.then(async () => {
      this.pendingSync = null;
      const s = this.st.appliedSeq;
      const g = this.st.hotGenSealed;
      try {
        await datasync(this.st.geo.fd);
      } catch (e) {
        this.fail(e as Error);
        throw e;
      }
      if (s > this.st.durableSeq) this.st.durableSeq = s;
      if (g > this.st.hotGenDurable) this.st.hotGenDurable = g;
      this.hooks.synced(s);
    });
    this.pendingSync = p;
    this.syncTail = p.catch(() => undefined);
    return p;
  }

  /** Seals the open host record (writes its header); resolves once that is applied. */
  sealHot(): Promise<void> {
    if (this.failed) return Promise.reject(new AllocatorStateError(`allocator failed: ${this.failed.message}`));
    if (!this.log.hot && this.inflight.length === 0 && !this.draining) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.sealWaiters.push(resolve);
      this.kick();
      this.signal();
    });
  }

  /** Whether a host record is open (its pages are not yet described on the device). */
  get hotOpen(): boolean {
    return this.log.hot !== null;
  }

  /** Wakes everything waiting for a space or failure event. */
  signal(): void {
    const w = this.eventWaiters;
    this.eventWaiters = [];
    for (const f of w) f();
  }

  /** Resolves at the next `signal()`. */
  waitEvent(): Promise<void> {
    return new Promise((resolve) => this.eventWaiters.push(resolve));
  }

  /** Segments appended to now or by the batch in flight (they may hold records after a cut). */
  openSegments(): number[] {
    const open = new Set<number>();
    for (const s of this.log.streams) if (s.seg >= 0) open.add(s.seg);
    for (const b of this.inflight) for (const e of b.exts) open.add(e.seg);
    return [...open];
  }

  /** Data blocks left after one header in the cold stream's open segment (0 when none). */
  coldRoom(): number {
    return this.log.coldRoom();
  }

  /** Records the first failure and wakes waiters. */
  fail(e: Error): void {
    if (!this.failed) this.failed = e;
    this.signal();
    this.hooks.failed();
  }

  private kick(): void {
    if (!this.draining) {
      this.draining = true;
      setImmediate(() => void this.drain());
    }
  }

  /**
   * Writes a built batch; resolves with the I/O error, or null. An extent in a segment
   * still being zeroed waits for that (prezero.ts); the next segment's zeroing starts here.
   */
  private write(b: Batch): Promise<Error | null> {
    const { fd, offset } = this.st.geo;
    const S = this.S;
    this.prezero.ahead();
    this.writeback.wrote(b.blocks * PAGE);
    return Promise.all(b.exts.filter((e) => e.bufs.length > 0).map((e) => {
      const at = offset + (1 + e.seg * S + e.start) * PAGE;
      const zeroing = this.prezero.before(e.seg);
      return zeroing ? zeroing.then(() => hostPwritevFully(fd, e.bufs, at)) : hostPwritevFully(fd, e.bufs, at);
    })).then(() => null, (e: Error) => e);
  }

  /**
   * The group-commit loop. Two batches may be in flight: the next one is built (crc32c of
   * its pages, summaries) while the previous one is being written, and batches are applied
   * strictly in order once written.
   */
  private async drain(): Promise<void> {
    let error: Error | null = null;
    try {
      for (;;) {
        if (this.failed) break;
        const b = this.inflight.length < 2 ? this.build() : null;
        if (b) {
          b.written = this.write(b);
          this.inflight.push(b);
          if (this.inflight.length < 2) continue;
        }
        if (this.inflight.length > 0) {
          const o = this.inflight[0];
          const e = await o.written;
          if (e) throw e;
          this.inflight.shift();
          this.apply(o);
          continue;
        }
        // Nothing open, nothing to write: a seal request is served as it stands.
        const w = this.sealWaiters;
        this.sealWaiters = [];
        this.sealRequested = false;
        for (const f of w) f();
        if (this.queue.length > 0 && this.hotBlocked) {
          if (this.spaceStuck) {
            this.spaceStuck = false;
            this.rejectBlocked();
            continue;
          }
          this.hooks.needSpace();
          await this.waitEvent();
          continue;
        }
        break;
      }
    } catch (e) {
      error = e as Error;
    } finally {
      this.draining = false;
    }
    if (error) {
      this.fail(error);
      for (const b of this.inflight) {
        for (const op of b.done) op.reject(error);
        for (const m of b.moves) m.reject(error);
        for (const f of b.sealWaiters) f();
        this.completed += b.done.length;
      }
      this.inflight = [];
    }
    if (this.failed) {
      const err = new AllocatorStateError(`allocator failed: ${this.failed.message}`);
      for (const op of this.queue) op.reject(err);
      for (const m of this.moveQueue) m.reject(err);
      this.completed += this.queue.length;
      this.queue = [];
      this.moveQueue = [];
      this.wakeFlushers();
      const w = this.sealWaiters;
      this.sealWaiters = [];
      for (const f of w) f();
    } else if (this.queue.length > 0 || this.moveQueue.length > 0 || this.sealWaiters.length > 0 || this.sealRequested) this.kick();
  }

  private rejectBlocked(): void {
    const err = new AllocatorFullError(`partition full: no space can be cleaned (${this.st.mappedPages} pages mapped, ${this.st.segs.freeCount} free segments)`);
    const keep: HostOp[] = [];
    for (const op of this.queue) {
      if (op.kind === 1) {
        op.reject(err);
        this.completed++;
      } else keep.push(op);
    }
    this.queue = keep;
    this.wakeFlushers();
  }

  /** Builds the next group commit from queued cleaner copies and host operations, or null. */
  private build(): Batch | null {
    const b = new Batch();
    const st = this.st;
    let progress = false;
    // Cleaner copies first: they may use the reserve. Their records are sealed before any
    // host page joins the batch (see the module comment on seq order), and they are taken
    // only when no batch is in flight, so that the liveness they were checked for has seen
    // every host write built before them (a copy built against a map that misses an
    // in-flight rewrite of the same page and version would win a tie at run time that it
    // loses in replay).
    while (this.moveQueue.length > 0 && this.inflight.length === 0) {
      const m = this.moveQueue.shift()!;
      progress = true;
      const live: number[] = [];
      const crcs: number[] = [];
      for (let i = 0; i < m.items.length; i++) {
        const it = m.items[i];
        // No copy of a page of the open host record (only a read relocation can meet one:
        // cleaner victims are sealed). That record is sealed after this one, so in replay its
        // same-version page would win the tie and map a block the run-time map let go.
        const c = this.log.inOpenHost(it.from) ? -1 : st.liveCrc(it.key, it.page, it.version, it.from);
        if (c >= 0) {
          live.push(i);
          crcs.push(c);
        }
      }
      b.moves.push(m);
      if (m.fresh && live.length > 0 && st.segs.freeCount > 0) this.log.leaveSegment(b, COLD);
      for (let j = 0; j < live.length; j++) {
        const it = m.items[live[j]];
        if (!this.log.addPage(b, COLD, it.key, it.page, it.version, crcs[j], it.data, 0)) break;
        if (m.relocate) b.relocatedPages++;
        else b.movedPages++;
      }
    }
    this.log.closeRecord(b, COLD);
    b.cur[HOT] = this.log.hot;
    this.hotBlocked = false;
    let hostPages = 0;
    while (this.queue.length > 0 && hostPages < MAX_BATCH_PAGES) {
      const op = this.queue[0];
      if (op.kind === 1) {
        const n = op.data.length / PAGE;
        const t = st.tables.get(op.key);
        let write = 0;
        let fresh = 0;
        for (let i = 0; i < n; i++) {
          const p = op.firstPage + i;
          const cur = t ? t.version(p) : 0;
          if (op.version < cur) continue;
          write++;
          const blk = t ? t.block(p) : NONE;
          if (blk === NONE || st.retainNeeded(op.key, cur, op.version, st.seq + 1)) fresh++;
        }
        if (fresh > 0 && st.mappedPages + st.retainedPages + this.pendingNew + b.newPages + fresh > this.maxLive) {
          this.queue.shift();
          progress = true;
          op.reject(new AllocatorFullError(`partition full: ${st.mappedPages + st.retainedPages} of ${this.maxLive} pages in use, write needs ${fresh} more`));
          this.completed++;
          continue;
        }
        if (write > 0 && this.log.roomFor(HOT) < this.log.hostNeed(b, write)) {
          this.hotBlocked = true;
          break;
        }
        this.queue.shift();
        progress = true;
        b.done.push(op);
        b.newPages += fresh;
        for (let i = 0; i < n; i++) {
          const p = op.firstPage + i;
          if (t && op.version < t.version(p)) continue;
          const off = i * PAGE;
          const crc = crc32c(op.data.subarray(off, off + PAGE));
          if (!this.log.addPage(b, HOT, op.key, p, op.version, crc, op.data, off)) throw new Error('host stream lost its space');
          hostPages++;
        }
        b.hostPages += n;
      } else {
        let r = b.cur[HOT];
        if (!r || !r.w.addTrim(op.key, op.firstPage, op.count, op.version)) {
          if (this.log.roomFor(HOT) < 3) {
            this.hotBlocked = true;
            break;
          }
          r = this.log.openRecord(b, HOT, 1);
          if (!r) throw new Error('host stream lost its space');
          r.w.addTrim(op.key, op.firstPage, op.count, op.version);
        }
        r.hasTrim = true;
        this.queue.shift();
        progress = true;
        b.done.push(op);
        b.kind.push(1);
        b.key.push(op.key);
        b.first.push(op.firstPage);
        b.count.push(op.count);
        b.version.push(op.version);
        b.block.push(0);
        b.crc0.push(0);
        b.rec.push(r);
      }
    }
    // The host record stays open unless a seal was asked for (or holding is off).
    if (b.cur[HOT] && (this.sealRequested || this.sealWaiters.length > 0 || this.holdMs <= 0)) {
      this.log.closeRecord(b, HOT);
      progress = true;
    }
    if (this.sealRequested || this.sealWaiters.length > 0) {
      this.sealRequested = false;
      b.sealWaiters = this.sealWaiters;
      this.sealWaiters = [];
    }
    for (const e of b.exts) flushExt(e);
    this.pendingNew += b.newPages;
    if (!progress) {
      // Nothing built: hand any seal waiters back to the caller (drain resolves them).
      this.sealWaiters = b.sealWaiters.concat(this.sealWaiters);
      return null;
    }
    return b;
  }

  /** Applies a written batch to the map, in build order, and completes its operations. */
  private apply(b: Batch): void {
    const st = this.st;
    this.pendingNew -= b.newPages;
    for (let i = 0; i < b.kind.length; i++) {
      const r = b.rec[i];
      // Pages of the still-open host record: kills are marked by its generation, and its
      // eventual seq (> every seq so far) stands in for pin decisions.
      const seq = r.seq > 0 ? r.seq : st.seq + 1;
      st.killHot = r.seq > 0 ? 0 : r.gen;
      const key = b.key[i];
      if (b.kind[i] === 1) {
        st.applyTrim(key, b.first[i], b.count[i], b.version[i], seq);
        continue;
      }
      const t = st.table(key);
      const first = b.first[i];
      const version = b.version[i];
      const block = b.block[i];
      const c0 = b.crc0[i];
      for (let j = 0, n = b.count[i]; j < n; j++) st.applyPage(t, key, first + j, version, block + j, b.crcs[c0 + j], seq);
      st.dirty.add(key);
    }
    st.killHot = 0;
    st.appliedSeq = st.seq;
    if (b.sealedHot > st.hotGenSealed) st.hotGenSealed = b.sealedHot;
    st.clock += b.hostPages;
    for (const s of b.sealedSegs) {
      st.segs.state[s] = SEALED;
      st.segs.sealedAt[s] = st.clock;
      if (st.segs.live[s] === 0) st.markDying(s, st.appliedSeq);
    }
    const c = st.counters;
    c.hostBytes += b.hostPages * PAGE;
    c.movedBytes += b.movedPages * PAGE;
    c.relocatedBytes += b.relocatedPages * PAGE;
    c.logBytes += b.blocks * PAGE;
    c.summaryBytes += b.headers * PAGE;
    c.coldSummaryBytes += b.coldHeaders * PAGE;
    for (const op of b.done) op.resolve();
    for (const m of b.moves) m.resolve();
    for (const f of b.sealWaiters) f();
    this.completed += b.done.length;
    this.wakeFlushers();
    if (this.log.hot && !this.hotTimer) this.armHoldTimer();
    else if (!this.log.hot && this.hotTimer) {
      clearTimeout(this.hotTimer);
      this.hotTimer = null;
    }
    this.hooks.applied();
  }

  /** Seals the open host record at the latest `holdMs` after this call. */
  private armHoldTimer(): void {
    const r = this.log.hot;
    this.hotTimer = setTimeout(() => {
      this.hotTimer = null;
      if (!this.log.hot || this.failed) return;
      if (this.log.hot !== r) return this.armHoldTimer();
      this.sealRequested = true;
      this.kick();
      this.signal();
    }, this.holdMs);
    this.hotTimer.unref();
  }

  private wakeFlushers(): void {
    if (this.flushWaiters.length === 0) return;
    const still: typeof this.flushWaiters = [];
    for (const w of this.flushWaiters) (w.target <= this.completed ? w.resolve() : still.push(w));
    this.flushWaiters = still;
  }
}
