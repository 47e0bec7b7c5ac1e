/**
 * The segment cleaner (Rosenblum & Ousterhout, SOSP 1991, §3.4–§5): picks sealed
 * segments (victim.ts), reads each whole and copies its live pages — found through its
 * record summaries, checked against the page map — into the cold stream, and frees the
 * emptied segments once that is safe (segments.ts: the records that emptied them are
 * durable, their trims are covered by a checkpoint, no read is in flight).
 *
 * Copies are handed to the write path a cold segment at a time: the live pages of one or
 * more victims are pooled and each batch exactly fills what is left of the open cold
 * segment (or a fresh one), so a cold segment normally carries a single record header
 * — one 4 KiB summary per 255 copied pages with 1 MiB segments.
 *
 * It runs in the background (under a byte-rate limit) when free segments drop below a
 * low watermark, up to a high one, and without limit whenever host writes wait for space.
 */
import { NONE, PAGE, parseHeader } from './layout.ts';
import { headersFor, RunTable } from './summary.ts';
import { CLEANING, DYING, SEALED } from './segments.ts';
import { pickVictims, type CleanerPolicy } from './victim.ts';
import { preadFully } from './device-io.ts';
import { RESERVE } from './log-streams.ts';
import type { WritePath } from './write-path.ts';
import type { PartitionState } from './partition-state.ts';
import type { MoveItem } from './ops.ts';

/** Cleaner tuning. */
export interface CleanerOptions {
  policy: CleanerPolicy;
  /** Background copy rate limit in bytes per second (0: none). */
  bytesPerSec: number;
  /** Start background cleaning below this many free segments. */
  lowWater: number;
  /** Stop background cleaning at this many free segments. */
  highWater: number;
  /** Fewest dead blocks a victim must have (cleaning must gain space). */
  minGarbage: number;
}

/** Dead segments that make an idle cleaner reclaim them early (see reclaimEarly). */
const EARLY_DYING = 4;
/** Least time between two fdatasyncs an idle cleaner starts for early reclaim, ms. */
const EARLY_SYNC_MS = 1000;
/** A leftover of the open cold segment smaller than this is abandoned for a fresh one. */
const MIN_CHUNK = 16;

/** Cleaner copies in key, then page order. */
function byKey(a: MoveItem, b: MoveItem): number {
  return a.key - b.key || a.page - b.page;
}

/** What reclaim found: segments freed, and what still holds back the others. */
export interface ReclaimResult {
  freed: number;
  /** An fdatasync would free some. */
  needSync: boolean;
  /** Sealing the host record still being filled (then an fdatasync) would free some. */
  needHotSeal: boolean;
  needCkpt: boolean;
  readers: boolean;
}

/** The cleaner of one partition. See the module comment. */
export class Cleaner {
  private stopped = false;
  private wake: (() => void) | null = null;
  private loopDone: Promise<void> = Promise.resolve();
  private syncing: Promise<void> | null = null;
  /** When reclaimEarly() last started an fdatasync (ms since 1970). */
  private lastEarlySync = 0;
  /** Live pages read from victims, not yet handed to the write path. */
  private pending: MoveItem[] = [];
  /** Victims being cleaned → items of theirs not yet through the write path. */
  private readonly left = new Map<number, number>();
  private readonly liveBefore = new Map<number, number>();
  private readonly runs = new RunTable();

  constructor(
    private readonly st: PartitionState,
    private readonly wp: WritePath,
    private readonly checkpoint: () => Promise<void>,
    private readonly o: CleanerOptions,
  ) {}

  /** Starts the background loop. */
  start(): void {
    this.loopDone = this.loop();
  }

  /** Stops the loop; victims being cleaned go back to sealed. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.poke();
    await this.loopDone;
    if (this.syncing) await this.syncing;
    this.abandon();
  }

  /** Starts an fdatasync unless one is running; dying segments are reclaimed when it completes. */
  private syncInBackground(): Promise<void> {
    if (!this.syncing) {
      this.syncing = this.wp.sync(false).then(
        () => {
          this.syncing = null;
          this.reclaim();
        },
        () => {
          this.syncing = null;
        },
      );
    }
    return this.syncing;
  }

  /**
   * Between cleaning bouts: dead segments go back to the free list soon, not only once space
   * runs low. The writer takes the most recently freed segment first, whose blocks the OS
   * still caches, so the set of device blocks written (and the page cache it churns) stays
   * near the live data instead of sweeping the whole device; an fdatasync (which reclaim
   * needs anyway) runs at most once per EARLY_SYNC_MS per partition, and only with at
   * least EARLY_DYING dead segments waiting.
   */
  private reclaimEarly(): void {
    if (this.st.dying.size < EARLY_DYING || this.syncing) return;
    const r = this.reclaim();
    const now = Date.now();
    if (r.needSync && now - this.lastEarlySync >= EARLY_SYNC_MS) {
      this.lastEarlySync = now;
      void this.syncInBackground();
    }
  }

  /** Wakes the loop if it idles. */
  poke(): void {
    const w = this.wake;
    this.wake = null;
    if (w) w();
  }

  /** Frees dying segments whose conditions hold. Returns what still blocks the others. */
  reclaim(): ReclaimResult {
    const { segs, dying } = this.st;
    let freed = 0;
    let needSync = false;
    let needHotSeal = false;
    let needCkpt = false;
    let readers = false;
    for (const s of dying) {
      if (segs.state[s] !== DYING) {
        dying.delete(s);
        continue;
      }
      const a = segs.killSeq[s] <= this.st.durableSeq && segs.hotKill[s] <= this.st.hotGenDurable;
      const c = segs.trimSeq[s] <= this.st.committedCutSeq;
      const r = segs.readers[s] === 0;
      if (a && c && r) {
        dying.delete(s);
        segs.release(s);
        freed++;
      } else {
        if (!a) {
          if (segs.hotKill[s] > this.st.hotGenSealed) needHotSeal = true;
          else needSync = true;
        }
        if (!c) needCkpt = true;
        if (!r) readers = true;
      }
    }
    if (freed > 0) this.wp.signal();
    return { freed, needSync, needHotSeal, needCkpt, readers };
  }

  private idle(ms: number): Promise<void> {
    // After stop() (whose wake-up may have come while the loop was busy), never wait: stop()
    // awaits the loop, and an unref'd timer would let the event loop empty under it.
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      // Idle waits must not keep the process alive, unless host operations wait on us.
      if (this.wp.queue.length === 0) t.unref();
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private async loop(): Promise<void> {
    const { segs } = this.st;
    const { lowWater, highWater, bytesPerSec } = this.o;
    let active = false;
    while (!this.stopped && !this.wp.failed) {
      try {
        const urgent = this.wp.hotBlocked || segs.freeCount <= RESERVE;
        if (segs.freeCount < lowWater || urgent) active = true;
        else if (segs.freeCount >= highWater) active = false;
        if (!active) {
          this.reclaimEarly();
          await this.idle(100);
          continue;
        }
        let r = this.reclaim();
        // Segments emptied by cleaning wait for an fdatasync; one runs in the background
        // while cleaning goes on, and the cleaner waits for it only when out of room.
        if (r.needSync && (urgent || segs.freeCount < lowWater || this.st.dying.size >= 2)) {
          const p = this.syncInBackground();
          if (segs.freeCount === 0 && this.wp.coldRoom() < MIN_CHUNK) {
            await p;
            r = this.reclaim();
          }
        }
        if (r.needHotSeal && urgent && r.freed === 0 && segs.freeCount <= RESERVE) {
          // Hosts wait for space that only the host record being filled holds back.
          await this.wp.sync(true);
          r = this.reclaim();
        }
        if (r.needCkpt && (urgent || segs.freeCount < lowWater)) {
          await this.checkpoint();
          r = this.reclaim();
        }
        if (segs.freeCount >= highWater && !this.wp.hotBlocked) {
          active = false;
          continue;
        }
        const t0 = Date.now();
        const moved = await this.step();
        if (moved < 0) {
          if (this.syncing) {
            await this.syncing;
            continue;
          }
          if (this.wp.hotBlocked && this.st.dying.size === 0 && this.wp.moveQueue.length === 0) {
            this.wp.spaceStuck = true;
            this.wp.signal();
          }
          await this.idle(r.readers ? 1 : 20);
          continue;
        }
        if (this.wp.hotBlocked || segs.freeCount <= RESERVE) this.syncInBackground();
        else if (bytesPerSec > 0 && moved > 0) {
          const wait = (moved / bytesPerSec) * 1000 - (Date.now() - t0);
          if (wait > 1) await this.idle(wait);
        }
      } catch (e) {
        if (!this.wp.failed) this.wp.fail(e as Error);
      }
    }
  }

  /**
   * Hands one cold segment's worth of live pages to the write path, reading more victims
   * as needed. Returns the bytes handed over, or -1 when there is nothing to clean.
   */
  private async step(): Promise<number> {
    const { segs } = this.st;
    const S = this.st.geo.S;
    let room = this.wp.coldRoom();
    let fresh = false;
    if (room < MIN_CHUNK) {
      fresh = room > 0;
      room = S - 1;
    }
    while (this.pending.length < room && !this.stopped) {
      const vs = pickVictims(segs, this.o.policy, this.st.clock, 1, this.o.minGarbage);
      if (vs.length === 0) break;
      const v = vs[0];
      segs.state[v] = CLEANING;
      this.liveBefore.set(v, segs.live[v]);
      let items: MoveItem[];
      try {
        items = await this.collect(v);
      } catch (e) {
        if (segs.state[v] === CLEANING) segs.state[v] = SEALED;
        this.liveBefore.delete(v);
        throw e;
      }
      this.left.set(v, items.length);
      for (const it of items) this.pending.push(it);
      if (items.length === 0) this.finishVictim(v);
    }
    if (this.pending.length === 0) return -1;
    // Key order packs the summary tighter (small key deltas, page runs). The chunk, headers
    // included, must fit in the `room + 1` blocks left: with segments larger than one header
    // describes, `room` pages need several headers, and the pages past the segment's end
    // would need another segment, which a cleaner out of free segments does not get — their
    // victims would never finish (4 MiB segments at 85–90 % utilisation stalled that way:
    // no free segment, every victim in progress one or two copies short).
    let k = Math.min(room, this.pending.length);
    let chunk: MoveItem[];
    for (;;) {
      chunk = this.pending.slice(0, k).sort(byKey);
      const h = headersFor(chunk);
      if (k + h <= room + 1 || k <= 1) break;
      k = Math.max(1, Math.min(k - 1, room + 1 - h));
    }
    this.pending.splice(0, k);
    try {
      await this.wp.move(chunk, fresh);
    } finally {
      for (const it of chunk) {
        const n = this.left.get(it.victim)! - 1;
        if (n === 0) this.finishVictim(it.victim);
        else this.left.set(it.victim, n);
      }
    }
    return chunk.length * PAGE;
  }

  /** Every item of victim `v` went through the write path: it is dying, or sealed again if something stayed live. */
  private finishVictim(v: number): void {
    const before = this.liveBefore.get(v) ?? 0;
    this.left.delete(v);
    this.liveBefore.delete(v);
    const { segs } = this.st;
    if (segs.state[v] !== CLEANING) return;
    if (segs.live[v] === 0) {
      this.st.markDying(v, this.st.appliedSeq);
      this.st.counters.segmentsCleaned++;
      this.st.counters.cleanedLiveSum += before;
    } else segs.state[v] = SEALED;
  }

  /** Gives up on the victims in progress (on stop or failure). */
  private abandon(): void {
    this.pending = [];
    for (const v of [...this.left.keys()]) {
      this.left.delete(v);
      if (this.st.segs.state[v] !== CLEANING) continue;
      if (this.st.segs.live[v] === 0) this.st.markDying(v, this.st.appliedSeq);
      else this.st.segs.state[v] = SEALED;
    }
    this.liveBefore.clear();
  }

  /** Reads segment `v` and returns its live pages (current or pinned versions). */
  private async collect(v: number): Promise<MoveItem[]> {
    const { segs, geo } = this.st;
    const S = geo.S;
    const buf = Buffer.allocUnsafe(S * PAGE);
    segs.readers[v]++;
    let n: number;
    try {
      n = await preadFully(geo.fd, buf, 0, S * PAGE, geo.offset + (1 + v * S) * PAGE);
    } finally {
      segs.readers[v]--;
    }
    if (n < S * PAGE) buf.fill(0, n);
    const base = 1 + v * S;
    const items: MoveItem[] = [];
    const seen = new Set<number>();
    const runs = this.runs;
    let pos = 0;
    let prev = 0;
    while (pos < S) {
      const hb = buf.subarray(pos * PAGE, (pos + 1) * PAGE);
      const h = parseHeader(hb, geo.uuidTag, v, pos, S, prev);
      if (!h || !runs.decode(hb, h.runs, h.bodyBytes, h.dataBlocks)) break;
      for (let i = 0; i < runs.n; i++) {
        if (runs.trim[i]) continue;
        const key = runs.key[i];
        const first = runs.first[i];
        const version = runs.version[i];
        const b0 = pos + 1 + runs.block[i];
        for (let j = 0, c = runs.count[i]; j < c; j++) {
          const block = base + b0 + j;
          if (this.st.liveCrc(key, first + j, version, block) < 0) continue;
          items.push({ key, page: first + j, version, data: buf.subarray((b0 + j) * PAGE, (b0 + j + 1) * PAGE), from: block, victim: v });
          seen.add(block);
        }
      }
      prev = h.crc;
      pos += 1 + h.dataBlocks;
    }
    if (seen.size < segs.live[v]) {
      // A damaged summary: find the remaining live blocks from the map itself.
      const add = (key: number, page: number, version: number, b: number): void => {
        if (b < base || b >= base + S || seen.has(b)) return;
        items.push({ key, page, version, data: buf.subarray((b - base) * PAGE, (b - base + 1) * PAGE), from: b, victim: v });
        seen.add(b);
      };
      for (const [key, t] of this.st.tables) {
        for (let p = 0; p < t.capacity; p++) {
          const b = t.block(p);
          if (b !== NONE) add(key, p, t.version(p), b);
        }
        for (const r of t.retained ?? []) add(key, r.page, r.version, r.block);
      }
    }
    return items;
  }
}
