/**
 * The state one partition's allocator shares between its parts (write path, read path,
 * cleaner, checkpointer, recovery): geometry, the page map, segment table, pins, log
 * positions and traffic counters — and the map-update rule, which is the same at run
 * time and in roll-forward:
 *
 *   A record's page replaces the map entry when its version is ≥ the entry's version
 *   (a later record wins a tie); otherwise it may refresh a pinned old version of exactly
 *   that version (a cleaner copy of it); otherwise it is dead on arrival. A trim run
 *   unmaps every page whose version is ≤ its own and records its version.
 *
 * A superseded version is kept (counted live, listed in the key's `retained`) while a pin
 * needs it: pin.version lies in [old, new) and the superseding record came after the pin.
 */
import { KeyTable, type Retained } from './page-map.ts';
import { NONE } from './layout.ts';
import { DYING, SEALED, SegmentTable } from './segments.ts';
import type { PinRecord } from './checkpoint-store.ts';

/** Where the region lives and what it looks like. */
export interface Geometry {
  /** Open file descriptor of the device file. */
  fd: number;
  /** Byte offset of the region in the file. */
  offset: number;
  /** Region size in bytes. */
  size: number;
  /** Blocks per segment. */
  S: number;
  /** Number of segments. */
  segments: number;
  /** First 4 bytes of the superblock uuid, stamped in every record header. */
  uuidTag: number;
  /** The uuid in hex (checkpoint database identity). */
  uuidHex: string;
}

/** Traffic and cleaning counters (bytes unless named otherwise). */
export interface Counters {
  hostBytes: number;
  logBytes: number;
  summaryBytes: number;
  coldSummaryBytes: number;
  ckptBytes: number;
  movedBytes: number;
  /** Page bytes read relocation copied (relocate.ts); not in movedBytes. */
  relocatedBytes: number;
  /** Never-written segments filled with zeros ahead of the log (prezero.ts). */
  prezeroedSegments: number;
  /** Background fdatasyncs of smoothed writeback (writeback.ts). */
  writebackSyncs: number;
  segmentsCleaned: number;
  cleanedLiveSum: number;
  checkpoints: number;
}

/** Shared state and map-update rule of one partition. See the module comment. */
export class PartitionState {
  readonly tables = new Map<number, KeyTable>();
  readonly segs: SegmentTable;
  readonly pins = new Map<number, PinRecord>();
  nextPinId = 1;
  /** Segments with no live block waiting to be freed (see segments.ts). */
  readonly dying = new Set<number>();
  /** Keys changed since the last checkpoint started. */
  dirty = new Set<number>();
  mappedPages = 0;
  retainedPages = 0;

  /** Last seq assigned to a record. */
  seq = 0;
  /** Every record with seq ≤ appliedSeq is written and applied to the map. */
  appliedSeq = 0;
  /** Every record with seq ≤ durableSeq is durable (an fdatasync completed after it). */
  durableSeq = 0;
  /** Generation of the last host record sealed (host records are numbered as they open). */
  hotGenSealed = 0;
  /** Host records of generation ≤ this are sealed and durable. */
  hotGenDurable = 0;
  /**
   * While applying pages of the host record that is still open: its generation (kills are
   * then recorded per segment in `hotKill`, as the record has no seq yet); else 0.
   */
  killHot = 0;
  /** Cut of the newest committed checkpoint. */
  committedCutSeq = 0;
  /** Host clock: pages written by hosts since format (the cleaner's notion of time). */
  clock = 0;
  /** Host clock at the cut of the newest checkpoint (started): `clock − clockAtCut` host pages were written since. */
  clockAtCut = 0;

  readonly counters: Counters = {
    hostBytes: 0, logBytes: 0, summaryBytes: 0, coldSummaryBytes: 0, ckptBytes: 0, movedBytes: 0, relocatedBytes: 0, prezeroedSegments: 0, writebackSyncs: 0,
    segmentsCleaned: 0, cleanedLiveSum: 0, checkpoints: 0,
  };

  constructor(readonly geo: Geometry) {
    this.segs = new SegmentTable(geo.segments, geo.S);
  }

  /** Segment of absolute block `block`. */
  segOf(block: number): number {
    return ((block - 1) / this.geo.S) | 0;
  }

  /** The key's table, created empty if missing. */
  table(key: number): KeyTable {
    let t = this.tables.get(key);
    if (!t) {
      t = new KeyTable(0);
      this.tables.set(key, t);
    }
    return t;
  }

  incLive(block: number): void {
    this.segs.live[this.segOf(block)]++;
  }

  /** One block of its segment died; `seq` is the record that killed it (see `killHot`). */
  decLive(block: number, seq: number): void {
    const s = this.segOf(block);
    const segs = this.segs;
    if (this.killHot > 0) {
      if (this.killHot > segs.hotKill[s]) segs.hotKill[s] = this.killHot;
    } else if (seq > segs.killSeq[s]) segs.killSeq[s] = seq;
    if (--segs.live[s] === 0 && segs.state[s] === SEALED) this.markDying(s, this.killHot > 0 ? 0 : seq);
  }

  /** Segment `s` has no live block left since record `seq` (0: see its kill marks). */
  markDying(s: number, seq: number): void {
    this.segs.state[s] = DYING;
    if (seq > this.segs.killSeq[s]) this.segs.killSeq[s] = seq;
    this.dying.add(s);
  }

  /** Whether a pin of exactly `version` covers `key`. */
  pinCovers(key: number, version: number): boolean {
    for (const p of this.pins.values()) if (p.version === version && key >= p.firstKey && key <= p.lastKey) return true;
    return false;
  }

  /** Whether a pin needs version `u` of a page of `key` superseded by `w` at record `seq`. */
  retainNeeded(key: number, u: number, w: number, seq: number): boolean {
    if (this.pins.size === 0 || u >= w) return false;
    for (const p of this.pins.values()) {
      if (key >= p.firstKey && key <= p.lastKey && u <= p.version && p.version < w && seq > p.sinceSeq) return true;
    }
    return false;
  }

  /** Keeps (page, version u at block) of `t` as a pinned old version. Returns false if no pin needs it. */
  private retain(t: KeyTable, key: number, page: number, u: number, w: number, block: number, crc: number, seq: number): boolean {
    if (!this.retainNeeded(key, u, w, seq)) return false;
    if (!t.retained) t.retained = [];
    const old = t.retained.find((r) => r.page === page && r.version === u);
    if (old) {
      // Roll-forward over a checkpoint newer than its cut may meet a supersession twice.
      if (old.block !== block) {
        this.decLive(old.block, seq);
        old.block = block;
        old.crc = crc;
        old.until = w;
        return true;
      }
      this.decLive(block, seq);
      return true;
    }
    t.retained.push({ page, version: u, until: w, seq, block, crc });
    this.retainedPages++;
    return true;
  }

  /**
   * Map-update rule for one written page in table `t` of `key` (host write, cleaner copy
   * or roll-forward). The caller marks the key dirty.
   */
  applyPage(t: KeyTable, key: number, page: number, version: number, block: number, crc: number, seq: number): void {
    t.ensure(page);
    const cur = t.version(page);
    if (version < cur) {
      const r = t.retained?.find((x) => x.page === page && x.version === version);
      if (r) {
        this.decLive(r.block, seq);
        r.block = block;
        r.crc = crc;
        this.incLive(block);
      }
      return;
    }
    const old = t.block(page);
    if (old !== NONE) {
      if (!this.retain(t, key, page, cur, version, old, t.crc(page), seq)) this.decLive(old, seq);
    } else {
      t.mapped++;
      this.mappedPages++;
    }
    t.setBlock(page, block, crc);
    t.setVersion(page, version);
    this.incLive(block);
  }

  /** Map-update rule for a trim of [first, first + count) of `key` as `version`. */
  applyTrim(key: number, first: number, count: number, version: number, seq: number): void {
    const t = this.table(key);
    const end = first + count;
    const stop = Math.min(end, t.capacity);
    for (let p = first; p < stop; p++) {
      const cur = t.version(p);
      if (version < cur) continue;
      const old = t.block(p);
      if (old !== NONE) {
        if (!this.retain(t, key, p, cur, version, old, t.crc(p), seq)) this.decLive(old, seq);
        t.setBlock(p, NONE, 0);
        t.mapped--;
        this.mappedPages--;
      }
      t.setVersion(p, version);
    }
    if (end > t.capacity) t.addFloor(Math.max(first, t.capacity), end, version);
    this.dirty.add(key);
  }

  /** Block and crc of the snapshot view at `asOf` of `page` (NONE when unmapped there). */
  lookupAsOf(t: KeyTable, page: number, asOf: number): [number, number] {
    if (t.version(page) <= asOf) {
      const b = t.block(page);
      return [b, b === NONE ? 0 : t.crc(page)];
    }
    let best: Retained | null = null;
    if (t.retained) {
      for (const r of t.retained) {
        if (r.page === page && r.version <= asOf && asOf < r.until && (!best || r.version > best.version)) best = r;
      }
    }
    return best ? [best.block, best.crc] : [NONE, 0];
  }

  /** crc of block `from` if it still holds (key, page, version) as the current or a pinned version, else -1. */
  liveCrc(key: number, page: number, version: number, from: number): number {
    const t = this.tables.get(key);
    if (!t) return -1;
    if (t.block(page) === from && t.version(page) === version) return t.crc(page);
    const r = t.retained?.find((x) => x.page === page && x.version === version && x.block === from);
    return r ? r.crc : -1;
  }

  /** Drops kept versions no pin needs any more (after unpin or recovery). */
  dropUnneededRetained(seq: number): void {
    for (const [key, t] of this.tables) {
      if (!t.retained) continue;
      const keep: Retained[] = [];
      for (const r of t.retained) {
        if (this.retainNeeded(key, r.version, r.until, r.seq)) keep.push(r);
        else {
          this.decLive(r.block, seq);
          this.retainedPages--;
        }
      }
      t.retained = keep.length ? keep : null;
      this.dirty.add(key);
    }
  }
}
