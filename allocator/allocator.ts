/**
 * One partition's log-structured allocator over a region of a device file.
 *
 * Host writes become sequential appends: every write and trim queued while the previous
 * group commit is on its way goes into the next one, as records (one header block = the
 * segment summary of up to 168 pages, then the pages) written with one pwritev per
 * segment touched. The page map (key, page) → block lives in memory (see page-map.ts,
 * 12 bytes per page slot) and is checkpointed to a `level` database in the background,
 * each checkpoint recording its log position (a record seq). Recovery loads the newest
 * checkpoint and rolls forward over every record after it, in seq order, found by
 * reading the first block of every segment; a record is accepted only if its header,
 * its per-segment header chain and every page crc32c check out, so torn appends drop out.
 *
 * Space comes back through a cleaner (Rosenblum & Ousterhout, SOSP 1991): it picks
 * sealed segments by cost-benefit (or greedily), copies their live pages into a separate
 * "cold" log stream (host writes go to the "hot" stream: hot/cold separation), and frees
 * them. It runs in the background under a byte-rate limit and in the foreground when
 * host appends would otherwise wait; two free segments are always kept back for it so it
 * can make progress. Host writes that would map more pages than the partition's capacity
 * fail with AllocatorFullError before anything is written.
 *
 * Map-update rule, identical at run time and in roll-forward: a record's page replaces
 * the map entry when its version is ≥ the entry's version (later records win ties);
 * otherwise it may refresh a pinned old version of exactly that version; otherwise it is
 * dead on arrival. Segment reuse rule (segments.ts): a segment is reused only when the
 * records that emptied it are durable, its trim records are covered by a checkpoint and
 * no read of it is in flight; so roll-forward over the segments still present always
 * rebuilds the map as it was, and no read sees a reused block.
 */
import { open as openFile, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { crc32c } from '@node-rs/crc32';
import { AllocatorFullError, AllocatorStateError, ChecksumError, FormatError } from './errors.ts';
import {
  decodeSuperblock, encodeSuperblock, ENTRY_SIZE, HEADER_FIXED, initHeader, MAX_ENTRIES, NONE, PAGE, parseHeader,
  REC_MOVE, REC_TRIM, REC_WRITE, sealHeader, type RecordHeader,
} from './layout.ts';
import { KeyTable, type Retained } from './page-map.ts';
import { CLEANING, DYING, FREE, SEALED, SegmentTable } from './segments.ts';
import { pickVictims, type CleanerPolicy } from './victim.ts';
import { CheckpointStore, type PinRecord } from './checkpoint-store.ts';
import { datasync, pread, preadFully, pwritevFully } from './device-io.ts';
import type { BuiltRecord, Extent, HostOp, MoveItem, MoveOp, TrimOp, WriteOp } from './ops.ts';

/** Where the partition lives and how it behaves. */
export interface AllocatorOptions {
  /** Path of the device file (created if missing unless `create` is false). */
  path: string;
  /** Byte offset of the region in the file; a multiple of 4096. */
  offset: number;
  /** Region size in bytes; a multiple of 4096, at least 256 KiB. */
  size: number;
  /** Format the region if block 0 is all zeros. Default true. */
  create?: boolean;
  /** Directory of the checkpoint database. Default `${path}.meta/${offset}`. */
  metaDir?: string;
  /**
   * Segment size in bytes, used only when formatting: a multiple of 4096, 8 KiB..64 MiB.
   * Default: the power of two giving ≥ 64 segments, clamped to 32 KiB..1 MiB.
   */
  segmentBytes?: number;
  /** Most live pages allowed, as a fraction of all segment blocks. Default 0.9. */
  maxUtilization?: number;
  /** Cleaner victim policy. Default 'cost-benefit'. */
  cleaner?: CleanerPolicy;
  /** Background cleaning rate limit in bytes copied per second (0: none). Default 256 MiB/s. */
  cleanerBytesPerSec?: number;
  /** Checkpoint after appending this many × the live bytes (at least `checkpointMinBytes`). Default 2. */
  checkpointFactor?: number;
  /** Lower bound of the checkpoint interval in appended bytes. Default 64 MiB. */
  checkpointMinBytes?: number;
  /**
   * Test hook: milliseconds to wait between a host read's map lookup and its device
   * read, to widen the window in which the cleaner could reuse the segment. Default 0.
   */
  readDelayMs?: number;
}

/** Space, traffic and memory figures. Sizes in bytes. */
export interface AllocatorStats {
  /** Bytes of pages the partition can hold (the live-page limit × 4096). */
  capacityBytes: number;
  /** Region size. */
  rawBytes: number;
  segmentBytes: number;
  segments: number;
  freeSegments: number;
  /** Bytes of segments holding log data (not free), plus the superblock. */
  usedBytes: number;
  /** capacityBytes − liveBytes − retainedBytes: room for new pages. */
  freeBytes: number;
  /** Mapped pages × 4096. */
  liveBytes: number;
  /** Old page versions kept for snapshot pins × 4096. */
  retainedBytes: number;
  mappedPages: number;
  keys: number;
  /** Page bytes written by write(). */
  hostBytesWritten: number;
  /** Bytes appended to the log: host pages, cleaner copies, record headers. */
  deviceBytesWritten: number;
  /** Record headers (segment summaries) plus checkpoint bytes handed to the database. */
  metadataBytesWritten: number;
  summaryBytesWritten: number;
  /** Part of summaryBytesWritten that describes cleaner copies. */
  cleanerSummaryBytesWritten: number;
  checkpointBytesWritten: number;
  /** Page bytes copied by the cleaner. */
  cleanerBytesMoved: number;
  /** deviceBytesWritten / hostBytesWritten (1 when nothing was written). */
  writeAmplification: number;
  segmentsCleaned: number;
  /** Mean live fraction of the segments the cleaner emptied (0 when none). */
  cleanedUtilization: number;
  checkpoints: number;
  /** Estimated bytes of memory held by the page map (tables and per-key overhead). */
  mapBytes: number;
}

/** Stream of host appends. */
const HOT = 0;
/** Stream of cleaner copies. */
const COLD = 1;
/** Free segments only the cleaner may take. */
const RESERVE = 2;
/** Most pages of host writes in one group commit. */
const MAX_BATCH_PAGES = 4096;
/** Trims create page slots for never-written pages only up to this page index. */
const TRIM_GROW_LIMIT = 1024;

function checkKey(key: number): void {
  if (!Number.isSafeInteger(key) || key < 0) throw new AllocatorStateError(`key ${key} must be a non-negative safe integer`);
}
function checkRange(page: number, count: number): void {
  if (!Number.isInteger(page) || page < 0 || page > 0x7fffffff) throw new AllocatorStateError(`page ${page} out of range 0..2^31-1`);
  if (!Number.isInteger(count) || count < 0 || page + count > 0x80000000) throw new AllocatorStateError(`page count ${count} out of range`);
}
function checkVersion(version: number): void {
  if (!Number.isSafeInteger(version) || version < 0) throw new AllocatorStateError(`version ${version} must be a non-negative safe integer`);
}

interface StreamState {
  /** Open segment, or -1. */
  seg: number;
  /** Next block within the segment. */
  pos: number;
  /** crc of the last header written in the segment (chain). */
  prev: number;
}

interface Batch {
  recs: BuiltRecord[];
  exts: Extent[];
  cur: Array<{ rec: BuiltRecord | null; ext: Extent | null }>;
  done: HostOp[];
  moves: MoveOp[];
  sealed: number[];
  blocks: number;
  headers: number;
  hostPages: number;
  movedPages: number;
  newPages: number;
}

/**
 * A partition allocator. Open with `Allocator.open`. Keys are owner keys (non-negative safe
 * integers, e.g. volume × 2^32 + extent); pages are 4 KiB logical page numbers within a key;
 * versions are non-negative safe integers chosen by the caller (higher = newer).
 */
export class Allocator {
  private readonly tables = new Map<number, KeyTable>();
  private readonly segs: SegmentTable;
  private readonly streams: StreamState[] = [{ seg: -1, pos: 0, prev: 0 }, { seg: -1, pos: 0, prev: 0 }];
  private queue: HostOp[] = [];
  private moveQueue: MoveOp[] = [];
  private draining = false;
  private inflight: Batch | null = null;
  private closing = false;
  private closed = false;
  private failed: Error | null = null;
  private hotBlocked = false;
  private spaceStuck = false;
  private eventWaiters: Array<() => void> = [];

  /** Last seq assigned to a record. */
  private seq = 0;
  /** Every record with seq ≤ appliedSeq is written and applied to the map. */
  private appliedSeq = 0;
  /** Every record with seq ≤ durableSeq is durable (an fdatasync completed after it). */
  private durableSeq = 0;
  /** Cut of the newest committed checkpoint. */
  private committedCutSeq = 0;
  /** Log clock: blocks appended since format. */
  private clock = 0;

  private submitted = 0;
  private completed = 0;
  private flushWaiters: Array<{ target: number; resolve: () => void }> = [];
  private syncTail: Promise<void> = Promise.resolve();
  private pendingSync: Promise<void> | null = null;

  private readonly dying = new Set<number>();
  private dirty = new Set<number>();
  private readonly pins = new Map<number, PinRecord>();
  private nextPinId = 1;
  private ckptRunning: Promise<void> | null = null;
  private ckptAgain: Promise<void> | null = null;
  private blocksSinceCut = 0;
  private lastCheckpointError: Error | null = null;

  private cleanerLoopDone: Promise<void> = Promise.resolve();
  private cleanerWake: (() => void) | null = null;

  private mappedPages = 0;
  private retainedPages = 0;
  private hostBytes = 0;
  private logBytes = 0;
  private summaryBytes = 0;
  private coldSummaryBytes = 0;
  private ckptBytes = 0;
  private movedBytes = 0;
  private segmentsCleaned = 0;
  private cleanedLiveSum = 0;
  private checkpoints = 0;

  private readonly S: number;
  private readonly maxLive: number;
  private readonly minGarbage: number;
  private readonly policy: CleanerPolicy;
  private readonly rate: number;
  private readonly ckptFactor: number;
  private readonly ckptMinBlocks: number;
  private readonly lowWater: number;
  private readonly highWater: number;
  private readonly readDelayMs: number;

  private constructor(
    private readonly fh: FileHandle,
    private readonly fd: number,
    private readonly offset: number,
    private readonly size: number,
    segBlocks: number,
    segments: number,
    private readonly uuidTag: number,
    private readonly uuidHex: string,
    private readonly store: CheckpointStore,
    opts: AllocatorOptions,
  ) {
    this.S = segBlocks;
    this.segs = new SegmentTable(segments, segBlocks);
    const util = opts.maxUtilization ?? 0.9;
    if (!(util > 0 && util <= 0.99)) throw new AllocatorStateError(`maxUtilization ${util} must be in (0, 0.99]`);
    // Cleaning a segment gains space only if its garbage exceeds the headers its copies
    // need (one per 168 pages, plus one where the cold stream crosses into a new segment).
    this.minGarbage = Math.ceil(segBlocks / MAX_ENTRIES) + 2;
    const perSeg = segBlocks - this.minGarbage;
    this.maxLive = Math.max(0, Math.floor(Math.min(util * segments * segBlocks, (segments - RESERVE - 3) * perSeg)));
    this.policy = opts.cleaner ?? 'cost-benefit';
    this.rate = opts.cleanerBytesPerSec ?? 256 * 1024 * 1024;
    this.ckptFactor = opts.checkpointFactor ?? 2;
    this.ckptMinBlocks = Math.ceil((opts.checkpointMinBytes ?? 64 * 1024 * 1024) / PAGE);
    this.readDelayMs = opts.readDelayMs ?? 0;
    this.lowWater = RESERVE + 1 + Math.floor(segments / 512);
    this.highWater = this.lowWater + 1 + Math.floor(segments / 512);
  }

  /**
   * Opens (formatting if needed) the partition, loads the newest checkpoint and rolls
   * forward over the log after it.
   * @throws FormatError when block 0 holds something other than our superblock, or a
   *         superblock of another size or format.
   * @throws AllocatorStateError on a bad offset, size or option.
   * @throws the underlying fs/level error when the file or database cannot be opened.
   */
  static async open(opts: AllocatorOptions): Promise<Allocator> {
    const { path, offset, size } = opts;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset % PAGE) throw new AllocatorStateError(`region offset ${offset} must be a non-negative multiple of 4096`);
    if (!Number.isSafeInteger(size) || size % PAGE || size < 64 * PAGE) throw new AllocatorStateError(`region size ${size} must be a multiple of 4096 and at least 256 KiB`);
    const blocks = size / PAGE;
    if (blocks - 1 >= NONE) throw new AllocatorStateError(`region size ${size} exceeds 16 TiB`);
    let fh: FileHandle;
    try {
      fh = await openFile(path, 'r+');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || opts.create === false) throw e;
      fh = await openFile(path, 'w+');
    }
    let store: CheckpointStore | null = null;
    try {
      const sbuf = Buffer.alloc(PAGE);
      await preadFully(fh.fd, sbuf, 0, PAGE, offset);
      let sb = decodeSuperblock(sbuf);
      let fresh = false;
      if (typeof sb === 'string') throw new FormatError(`${path}@${offset}: ${sb}`);
      if (sb === null) {
        if (opts.create === false) throw new FormatError(`${path}@${offset}: no allocator superblock`);
        let segBlocks: number;
        if (opts.segmentBytes !== undefined) {
          if (opts.segmentBytes % PAGE || opts.segmentBytes < 2 * PAGE || opts.segmentBytes > 64 * 1024 * 1024) {
            throw new AllocatorStateError(`segmentBytes ${opts.segmentBytes} must be a multiple of 4096 in 8 KiB..64 MiB`);
          }
          segBlocks = opts.segmentBytes / PAGE;
        } else {
          segBlocks = 8;
          while (segBlocks < 256 && segBlocks * 2 * 64 <= blocks - 1) segBlocks *= 2;
        }
        const segments = Math.floor((blocks - 1) / segBlocks);
        if (segments < RESERVE + 4) throw new AllocatorStateError(`region of ${size} bytes holds only ${segments} segments of ${segBlocks * PAGE} bytes; need ${RESERVE + 4}`);
        sb = { size, uuid: randomBytes(16), segBlocks, segments };
        await fh.write(encodeSuperblock(sb), 0, PAGE, offset);
        await fh.datasync();
        fresh = true;
      } else if (sb.size !== size) {
        throw new FormatError(`${path}@${offset}: region size ${size} differs from formatted size ${sb.size}`);
      } else if (sb.segBlocks < 2 || sb.segments < RESERVE + 4 || 1 + sb.segments * sb.segBlocks > blocks) {
        throw new FormatError(`${path}@${offset}: bad segment geometry in superblock`);
      }
      store = await CheckpointStore.open(opts.metaDir ?? `${path}.meta/${offset}`);
      if (fresh) await store.clear();
      const a = new Allocator(fh, fh.fd, offset, size, sb.segBlocks, sb.segments, sb.uuid.readUInt32LE(0), sb.uuid.toString('hex'), store, opts);
      await a.recover();
      a.cleanerLoopDone = a.cleanerLoop();
      return a;
    } catch (e) {
      if (store) await store.close().catch(() => undefined);
      await fh.close();
      throw e;
    }
  }

  // ---------------------------------------------------------------- host API

  /**
   * Writes `data` (n × 4096 bytes) to pages [firstPage, firstPage + n) of `key` as
   * `version`. A page already holding a newer version keeps it (that page is not written).
   * Resolves once the data is in the device file; durable after a later flush().
   * @throws AllocatorFullError when the new pages would exceed the capacity (nothing written).
   * @throws AllocatorStateError on bad arguments, after close, or after an I/O failure.
   */
  write(key: number, firstPage: number, data: Buffer, version: number): Promise<void> {
    const bad = this.refuse();
    if (bad) return Promise.reject(bad);
    try {
      checkKey(key);
      if (!Buffer.isBuffer(data) || data.length === 0 || data.length % PAGE) throw new AllocatorStateError(`write length ${data?.length} is not a positive multiple of 4096`);
      checkRange(firstPage, data.length / PAGE);
      checkVersion(version);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ kind: 1, key, firstPage, data, version, resolve, reject });
      this.submitted++;
      this.kick();
    });
  }

  /**
   * Unmaps pages [firstPage, firstPage + count) of `key` as `version` (pages holding a
   * newer version keep it); they read as zeros afterwards. Resolves once the trim record
   * is in the device file; durable after a later flush().
   * @throws AllocatorStateError on bad arguments, after close, or after an I/O failure.
   */
  trim(key: number, firstPage: number, count: number, version: number): Promise<void> {
    const bad = this.refuse();
    if (bad) return Promise.reject(bad);
    try {
      checkKey(key);
      checkRange(firstPage, count);
      checkVersion(version);
    } catch (e) {
      return Promise.reject(e);
    }
    if (count === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.queue.push({ kind: 2, key, firstPage, count, version, resolve, reject });
      this.submitted++;
      this.kick();
    });
  }

  /**
   * Makes every write and trim submitted before this call durable: waits for them to be
   * written, then fdatasync — one fdatasync serves every flush waiting at that moment
   * (group commit).
   * @throws the fdatasync error (the allocator then refuses further work).
   */
  async flush(): Promise<void> {
    if (this.closed) throw new AllocatorStateError('allocator is closed');
    const target = this.submitted;
    if (this.completed < target) await new Promise<void>((resolve) => this.flushWaiters.push({ target, resolve }));
    if (this.failed) throw this.failed;
    await this.sync();
  }

  /**
   * Reads `count` pages of `key` from `firstPage` (count × 4096 bytes); unmapped pages
   * read as zeros. With `asOf`, reads the snapshot view at that version instead (each
   * page's newest version ≤ asOf); asOf must be a pinned version covering `key`.
   * @throws ChecksumError when a page read back does not match its crc32c (no data returned).
   * @throws AllocatorStateError on bad arguments, an unpinned asOf, or after close.
   */
  read(key: number, firstPage: number, count: number, asOf?: number): Promise<Buffer> {
    if (this.closed) return Promise.reject(new AllocatorStateError('allocator is closed'));
    try {
      checkKey(key);
      checkRange(firstPage, count);
      if (asOf !== undefined) {
        checkVersion(asOf);
        if (!this.pinCovers(key, asOf)) throw new AllocatorStateError(`no pin of version ${asOf} covers key ${key}`);
      }
    } catch (e) {
      return Promise.reject(e);
    }
    const out = Buffer.alloc(count * PAGE);
    const t = this.tables.get(key);
    if (!t || count === 0) return Promise.resolve(out);
    const S = this.S;
    // Look up every page and take a read reference on its segment, all in this tick, so
    // that no segment we look at can be reused before our reads complete.
    const blocks: number[] = [];
    const crcs: number[] = [];
    const idx: number[] = [];
    for (let i = 0; i < count; i++) {
      const p = firstPage + i;
      let b: number;
      let c: number;
      if (asOf === undefined) {
        b = t.block(p);
        c = b === NONE ? 0 : t.crc(p);
      } else {
        [b, c] = this.lookupAsOf(t, p, asOf);
      }
      if (b === NONE) continue;
      blocks.push(b);
      crcs.push(c);
      idx.push(i);
    }
    if (blocks.length === 0) return Promise.resolve(out);
    const runs: Array<[number, number, number, number]> = []; // [out index, block, length, segment]
    let i = 0;
    while (i < blocks.length) {
      const seg = ((blocks[i] - 1) / S) | 0;
      let n = 1;
      while (i + n < blocks.length && idx[i + n] === idx[i] + n && blocks[i + n] === blocks[i] + n && (((blocks[i + n] - 1) / S) | 0) === seg) n++;
      runs.push([idx[i], blocks[i], n, seg]);
      this.segs.readers[seg]++;
      i += n;
    }
    const issue = (): Promise<PromiseSettledResult<number>[]> =>
      Promise.allSettled(runs.map(([o, b, n]) => preadFully(this.fd, out, o * PAGE, n * PAGE, this.offset + b * PAGE)));
    const done = this.readDelayMs > 0 ? new Promise((r) => setTimeout(r, this.readDelayMs)).then(issue) : issue();
    return done.then((res) => {
      for (const r of runs) this.segs.readers[r[3]]--;
      for (const r of res) if (r.status === 'rejected') throw r.reason;
      for (let j = 0; j < idx.length; j++) {
        const o = idx[j] * PAGE;
        if (crc32c(out.subarray(o, o + PAGE)) !== crcs[j]) {
          throw new ChecksumError(`checksum mismatch: key ${key} page ${firstPage + idx[j]} (block ${blocks[j]})`, key, firstPage + idx[j]);
        }
      }
      return out;
    });
  }

  /** Newest version written or trimmed for a page (0 when never touched). */
  version(key: number, page: number): number {
    const t = this.tables.get(key);
    return t ? t.version(page) : 0;
  }

  /** Owner keys that have at least one mapped page, in no particular order. */
  *keys(): IterableIterator<number> {
    for (const [k, t] of this.tables) if (t.mapped > 0) yield k;
  }

  /** Mapped pages of `key` with their versions, in page order. */
  *pages(key: number): IterableIterator<{ page: number; version: number }> {
    const t = this.tables.get(key);
    if (!t) return;
    for (let p = 0; p < t.capacity; p++) if (t.block(p) !== NONE) yield { page: p, version: t.version(p) };
  }

  /**
   * Pins `version` for keys in [firstKey, lastKey] (default: all keys): from now on, a
   * page version v ≤ version that is superseded by a version > `version` is kept (not
   * reclaimed) and stays readable with read(..., asOf = version). Versions superseded
   * before the pin are not brought back. Durable when this resolves. Returns the pin id.
   * Kept versions count against capacity.
   * @throws AllocatorStateError on a bad version or range, or after close.
   */
  async pin(version: number, range?: { firstKey: number; lastKey: number }): Promise<number> {
    const bad = this.refuse();
    if (bad) throw bad;
    checkVersion(version);
    const firstKey = range?.firstKey ?? 0;
    const lastKey = range?.lastKey ?? Number.MAX_SAFE_INTEGER;
    checkKey(firstKey);
    checkKey(lastKey);
    if (lastKey < firstKey) throw new AllocatorStateError(`pin range ${firstKey}..${lastKey} is empty`);
    const p: PinRecord = { id: this.nextPinId++, version, firstKey, lastKey, sinceSeq: this.appliedSeq };
    this.pins.set(p.id, p);
    try {
      await this.store.putPin(p);
    } catch (e) {
      this.pins.delete(p.id);
      throw e;
    }
    return p.id;
  }

  /**
   * Removes pin `id`; old versions no other pin needs become garbage for the cleaner.
   * @throws AllocatorStateError for an unknown id or after close.
   */
  async unpin(id: number): Promise<void> {
    if (this.closed) throw new AllocatorStateError('allocator is closed');
    if (!this.pins.has(id)) throw new AllocatorStateError(`no pin ${id}`);
    await this.store.delPin(id);
    this.pins.delete(id);
    for (const [key, t] of this.tables) {
      if (!t.retained) continue;
      const keep: Retained[] = [];
      for (const r of t.retained) {
        if (this.retainNeeded(key, r.version, r.until, r.seq)) keep.push(r);
        else {
          this.decLive(r.block, this.appliedSeq);
          this.retainedPages--;
        }
      }
      t.retained = keep.length ? keep : null;
      this.dirty.add(key);
    }
    this.pokeCleaner();
  }

  /** Active pins. */
  listPins(): Array<{ id: number; version: number; firstKey: number; lastKey: number }> {
    return [...this.pins.values()].map(({ id, version, firstKey, lastKey }) => ({ id, version, firstKey, lastKey }));
  }

  /**
   * Writes a checkpoint of the page map now (normally done in the background) and
   * resolves when it is committed.
   */
  async checkpoint(): Promise<void> {
    if (this.closed) throw new AllocatorStateError('allocator is closed');
    if (this.ckptRunning) {
      if (!this.ckptAgain) this.ckptAgain = this.ckptRunning.catch(() => undefined).then(() => { this.ckptAgain = null; return this.checkpoint(); });
      return this.ckptAgain;
    }
    const p = this.doCheckpoint().finally(() => { this.ckptRunning = null; });
    this.ckptRunning = p;
    return p;
  }

  /** Current space, traffic and memory figures. */
  stats(): AllocatorStats {
    let mapBytes = 0;
    for (const t of this.tables.values()) mapBytes += t.bytes();
    const c = this.segs.counts();
    const host = this.hostBytes;
    return {
      capacityBytes: this.maxLive * PAGE,
      rawBytes: this.size,
      segmentBytes: this.S * PAGE,
      segments: this.segs.count,
      freeSegments: c.free,
      usedBytes: (this.segs.count - c.free) * this.S * PAGE + PAGE,
      freeBytes: (this.maxLive - this.mappedPages - this.retainedPages) * PAGE,
      liveBytes: this.mappedPages * PAGE,
      retainedBytes: this.retainedPages * PAGE,
      mappedPages: this.mappedPages,
      keys: [...this.keys()].length,
      hostBytesWritten: host,
      deviceBytesWritten: this.logBytes,
      metadataBytesWritten: this.summaryBytes + this.ckptBytes,
      summaryBytesWritten: this.summaryBytes,
      cleanerSummaryBytesWritten: this.coldSummaryBytes,
      checkpointBytesWritten: this.ckptBytes,
      cleanerBytesMoved: this.movedBytes,
      writeAmplification: host ? this.logBytes / host : 1,
      segmentsCleaned: this.segmentsCleaned,
      cleanedUtilization: this.segmentsCleaned ? this.cleanedLiveSum / this.segmentsCleaned / this.S : 0,
      checkpoints: this.checkpoints,
      mapBytes,
    };
  }

  /**
   * Diagnostics for tests: byte offset in the device file of the block holding `key`'s
   * `page` (current version), or null when unmapped.
   */
  locate(key: number, page: number): number | null {
    const t = this.tables.get(key);
    const b = t ? t.block(page) : NONE;
    return b === NONE ? null : this.offset + b * PAGE;
  }

  /**
   * Finishes queued work, flushes, stops the cleaner, writes a final checkpoint and closes
   * the file and database. Later calls of any method fail with AllocatorStateError.
   */
  async close(): Promise<void> {
    if (this.closed || this.closing) return;
    this.closing = true;
    try {
      await this.flushQueued();
    } catch {
      /* reported to the writers already */
    }
    this.stopCleaner = true;
    this.pokeCleaner();
    await this.cleanerLoopDone;
    if (!this.failed) {
      await this.sync().catch(() => undefined);
      await this.checkpoint().catch((e: Error) => { this.lastCheckpointError = e; });
    } else if (this.ckptRunning) await this.ckptRunning.catch(() => undefined);
    this.closed = true;
    await this.store.close().catch(() => undefined);
    await this.fh.close();
  }

  // ---------------------------------------------------------------- group commit

  private refuse(): Error | null {
    if (this.closed || this.closing) return new AllocatorStateError('allocator is closed');
    if (this.failed) return new AllocatorStateError(`allocator failed: ${this.failed.message}`);
    return null;
  }

  private flushQueued(): Promise<void> {
    const target = this.submitted;
    if (this.completed >= target) return Promise.resolve();
    return new Promise<void>((resolve) => this.flushWaiters.push({ target, resolve }));
  }

  private kick(): void {
    if (!this.draining) {
      this.draining = true;
      setImmediate(() => void this.drain());
    }
  }

  private signal(): void {
    const w = this.eventWaiters;
    this.eventWaiters = [];
    for (const f of w) f();
  }

  private waitEvent(): Promise<void> {
    return new Promise((resolve) => this.eventWaiters.push(resolve));
  }

  private async drain(): Promise<void> {
    try {
      for (;;) {
        if (this.failed) break;
        const b = this.build();
        if (!b) {
          if (this.queue.length > 0 && this.hotBlocked) {
            if (this.spaceStuck) {
              this.spaceStuck = false;
              this.rejectBlocked();
              continue;
            }
            this.pokeCleaner();
            await this.waitEvent();
            continue;
          }
          break;
        }
        this.inflight = b;
        if (b.exts.length > 0) {
          const S = this.S;
          await Promise.all(b.exts.map((e) => pwritevFully(this.fd, e.bufs, this.offset + (1 + e.seg * S + e.start) * PAGE)));
        }
        this.inflight = null;
        this.apply(b);
      }
    } catch (e) {
      this.fail(e as Error);
      const b = this.inflight;
      this.inflight = null;
      if (b) {
        for (const op of b.done) op.reject(e as Error);
        for (const m of b.moves) m.reject(e as Error);
        this.completed += b.done.length;
      }
    } finally {
      this.draining = false;
    }
    if (this.failed) {
      const err = new AllocatorStateError(`allocator failed: ${this.failed.message}`);
      for (const op of this.queue) op.reject(err);
      for (const m of this.moveQueue) m.reject(err);
      this.completed += this.queue.length;
      this.queue = [];
      this.moveQueue = [];
      this.wakeFlushers();
    } else if (this.queue.length > 0 || this.moveQueue.length > 0) this.kick();
  }

  private fail(e: Error): void {
    if (!this.failed) this.failed = e;
    this.signal();
    this.pokeCleaner();
  }

  private rejectBlocked(): void {
    const err = new AllocatorFullError(`partition full: no space can be cleaned (${this.mappedPages} pages mapped, ${this.segs.freeCount} free segments)`);
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

  private newBatch(): Batch {
    return { recs: [], exts: [], cur: [{ rec: null, ext: null }, { rec: null, ext: null }], done: [], moves: [], sealed: [], blocks: 0, headers: 0, hostPages: 0, movedPages: 0, newPages: 0 };
  }

  /** Closes the stream's record under construction (seals its header, extends the chain). */
  private closeRecord(b: Batch, stream: number): void {
    const c = b.cur[stream];
    const r = c.rec;
    if (!r) return;
    this.streams[stream].prev = sealHeader(r.header, r.n, r.type === REC_TRIM ? 0 : r.n);
    c.rec = null;
  }

  /**
   * Starts a record of `type` in `stream`, moving to a new segment when fewer than
   * `need` blocks are left. Returns null when no segment can be had.
   */
  private openRecord(b: Batch, stream: number, type: number, need: number, age: number): BuiltRecord | null {
    this.closeRecord(b, stream);
    const st = this.streams[stream];
    const S = this.S;
    if (st.seg < 0 || S - st.pos < need) {
      let s = this.segs.take(stream === HOT ? RESERVE : 0);
      if (s < 0) {
        this.reclaim();
        s = this.segs.take(stream === HOT ? RESERVE : 0);
      }
      if (s < 0) return null;
      // Sealed once this batch is applied (until then its new blocks are not counted live).
      if (st.seg >= 0) b.sealed.push(st.seg);
      st.seg = s;
      st.pos = 0;
      st.prev = 0;
      this.segs.age[s] = 0;
    }
    const c = b.cur[stream];
    if (!c.ext || c.ext.seg !== st.seg) {
      c.ext = { seg: st.seg, start: st.pos, bufs: [] };
      b.exts.push(c.ext);
    }
    const h = Buffer.allocUnsafe(PAGE);
    const rec: BuiltRecord = { type, stream, seg: st.seg, seq: ++this.seq, header: h, n: 0, blocks: [], keys: [], pages: [], versions: [], crcs: [] };
    initHeader(h, type, stream, this.uuidTag, st.seg, rec.seq, st.prev, age);
    if (age > this.segs.age[st.seg]) this.segs.age[st.seg] = age;
    c.ext.bufs.push(h);
    st.pos++;
    b.blocks++;
    b.headers++;
    b.recs.push(rec);
    c.rec = rec;
    return rec;
  }

  /** Appends one data page to the stream's open record (caller ensured room). */
  private addPage(b: Batch, stream: number, rec: BuiltRecord, key: number, page: number, version: number, data: Buffer, crc: number): number {
    const st = this.streams[stream];
    const e = HEADER_FIXED + rec.n * ENTRY_SIZE;
    const h = rec.header;
    h.writeDoubleLE(key, e);
    h.writeUInt32LE(page, e + 8);
    h.writeDoubleLE(version, e + 12);
    h.writeUInt32LE(crc, e + 20);
    rec.n++;
    const block = 1 + st.seg * this.S + st.pos;
    b.cur[stream].ext!.bufs.push(data);
    st.pos++;
    b.blocks++;
    rec.blocks.push(block);
    rec.keys.push(key);
    rec.pages.push(page);
    rec.versions.push(version);
    rec.crcs.push(crc);
    return block;
  }

  /** Record of `type` in `stream` with room for one more data page, or null. */
  private dataRecord(b: Batch, stream: number, type: number, age: number): BuiltRecord | null {
    const r = b.cur[stream].rec;
    const st = this.streams[stream];
    if (r && r.type === type && r.n < MAX_ENTRIES && st.pos < this.S) return r;
    return this.openRecord(b, stream, type, 2, age);
  }

  /** Blocks the stream can still get without waiting: room left plus takeable segments. */
  private roomFor(stream: number): number {
    const st = this.streams[stream];
    const left = st.seg >= 0 ? this.S - st.pos : 0;
    const segsFree = Math.max(0, this.segs.freeCount - (stream === HOT ? RESERVE : 0));
    return left + segsFree * this.S;
  }

  /** Worst-case blocks `pages` data pages take, headers included. */
  private blocksNeeded(pages: number): number {
    const perRec = Math.min(MAX_ENTRIES, this.S - 1);
    return pages + Math.ceil(pages / perRec) + 2 + Math.ceil(pages / this.S);
  }

  /** Builds the next group commit from queued cleaner copies and host operations, or null. */
  private build(): Batch | null {
    const b = this.newBatch();
    let progress = false;
    // Cleaner copies first: they may use the reserve.
    while (this.moveQueue.length > 0) {
      const m = this.moveQueue[0];
      const live = m.items.filter((it) => this.isLive(it.key, it.page, it.version, it.from));
      this.moveQueue.shift();
      progress = true;
      if (live.length > 0 && this.roomFor(COLD) < this.blocksNeeded(live.length)) {
        m.reject(new AllocatorFullError('cleaner reserve exhausted'));
        continue;
      }
      b.moves.push(m);
      for (const it of live) {
        const rec = this.dataRecord(b, COLD, REC_MOVE, m.age);
        if (!rec) throw new Error('cleaner stream lost its reserved space');
        this.addPage(b, COLD, rec, it.key, it.page, it.version, it.data, it.crc);
        b.movedPages++;
      }
    }
    this.hotBlocked = false;
    let hostPages = 0;
    while (this.queue.length > 0 && hostPages < MAX_BATCH_PAGES) {
      const op = this.queue[0];
      if (op.kind === 1) {
        const n = op.data.length / PAGE;
        const t = this.tables.get(op.key);
        let write = 0;
        let fresh = 0;
        for (let i = 0; i < n; i++) {
          const p = op.firstPage + i;
          const cur = t ? t.version(p) : 0;
          if (op.version < cur) continue;
          write++;
          const blk = t ? t.block(p) : NONE;
          if (blk === NONE || this.retainNeeded(op.key, cur, op.version, this.seq + 1)) fresh++;
        }
        if (fresh > 0 && this.mappedPages + this.retainedPages + b.newPages + fresh > this.maxLive) {
          this.queue.shift();
          progress = true;
          op.reject(new AllocatorFullError(`partition full: ${this.mappedPages + this.retainedPages} of ${this.maxLive} pages in use, write needs ${fresh} more`));
          this.completed++;
          continue;
        }
        if (write > 0 && this.roomFor(HOT) < this.blocksNeeded(write)) {
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
          const rec = this.dataRecord(b, HOT, REC_WRITE, this.clock);
          if (!rec) throw new Error('host stream lost its space');
          const data = op.data.subarray(i * PAGE, (i + 1) * PAGE);
          this.addPage(b, HOT, rec, op.key, p, op.version, data, crc32c(data));
          hostPages++;
        }
        b.hostPages += n;
      } else {
        let rec = b.cur[HOT].rec;
        if (!rec || rec.type !== REC_TRIM || rec.n >= MAX_ENTRIES) {
          if (this.roomFor(HOT) < 1 + 2) {
            this.hotBlocked = true;
            break;
          }
          rec = this.openRecord(b, HOT, REC_TRIM, 1, this.clock);
          if (!rec) throw new Error('host stream lost its space');
        }
        this.queue.shift();
        progress = true;
        b.done.push(op);
        const e = HEADER_FIXED + rec.n * ENTRY_SIZE;
        rec.header.writeDoubleLE(op.key, e);
        rec.header.writeUInt32LE(op.firstPage, e + 8);
        rec.header.writeDoubleLE(op.version, e + 12);
        rec.header.writeUInt32LE(op.count, e + 20);
        rec.n++;
        rec.keys.push(op.key);
        rec.pages.push(op.firstPage);
        rec.versions.push(op.version);
        rec.crcs.push(op.count);
        if (rec.seq > this.segs.trimSeq[rec.seg]) this.segs.trimSeq[rec.seg] = rec.seq;
      }
    }
    this.closeRecord(b, HOT);
    this.closeRecord(b, COLD);
    if (!progress) return null;
    this.clock += b.blocks;
    return b;
  }

  /** Applies a written batch to the map, in seq order, and completes its operations. */
  private apply(b: Batch): void {
    for (const r of b.recs) {
      if (r.type === REC_TRIM) {
        for (let i = 0; i < r.n; i++) this.applyTrim(r.keys[i], r.pages[i], r.crcs[i], r.versions[i], r.seq);
      } else {
        for (let i = 0; i < r.n; i++) this.applyPage(r.keys[i], r.pages[i], r.versions[i], r.blocks[i], r.crcs[i], r.seq);
      }
      this.appliedSeq = r.seq;
    }
    this.appliedSeq = this.seq;
    const lastSeq = this.appliedSeq;
    for (const s of b.sealed) {
      this.segs.state[s] = SEALED;
      if (this.segs.live[s] === 0) this.markDying(s, lastSeq);
    }
    this.hostBytes += b.hostPages * PAGE;
    this.movedBytes += b.movedPages * PAGE;
    this.logBytes += b.blocks * PAGE;
    this.summaryBytes += b.headers * PAGE;
    for (const r of b.recs) if (r.stream === COLD) this.coldSummaryBytes += PAGE;
    for (const op of b.done) op.resolve();
    for (const m of b.moves) m.resolve();
    this.completed += b.done.length;
    this.wakeFlushers();
    this.blocksSinceCut += b.blocks;
    if (!this.ckptRunning && this.blocksSinceCut >= Math.max(this.ckptMinBlocks, this.ckptFactor * (this.mappedPages + this.retainedPages))) {
      this.checkpoint().catch((e: Error) => { this.lastCheckpointError = e; });
    }
    if (this.segs.freeCount < this.lowWater) this.pokeCleaner();
  }

  private wakeFlushers(): void {
    if (this.flushWaiters.length === 0) return;
    const still: typeof this.flushWaiters = [];
    for (const w of this.flushWaiters) (w.target <= this.completed ? w.resolve() : still.push(w));
    this.flushWaiters = still;
  }

  /** One fdatasync, shared by every caller that arrives before it starts. */
  private sync(): Promise<void> {
    if (this.pendingSync) return this.pendingSync;
    const p = this.syncTail.then(async () => {
      this.pendingSync = null;
      const s = this.appliedSeq;
      try {
        await datasync(this.fd);
      } catch (e) {
        this.fail(e as Error);
        throw e;
      }
      if (s > this.durableSeq) this.durableSeq = s;
    });
    this.pendingSync = p;
    this.syncTail = p.catch(() => undefined);
    return p;
  }

  // ---------------------------------------------------------------- map updates

  private table(key: number): KeyTable {
    let t = this.tables.get(key);
    if (!t) {
      t = new KeyTable();
      this.tables.set(key, t);
    }
    return t;
  }

  private incLive(block: number): void {
    this.segs.live[((block - 1) / this.S) | 0]++;
  }

  private decLive(block: number, seq: number): void {
    const s = ((block - 1) / this.S) | 0;
    if (--this.segs.live[s] === 0 && this.segs.state[s] === SEALED) this.markDying(s, seq);
  }

  private markDying(s: number, seq: number): void {
    this.segs.state[s] = DYING;
    this.segs.killSeq[s] = seq;
    this.dying.add(s);
  }

  private pinCovers(key: number, version: number): boolean {
    for (const p of this.pins.values()) if (p.version === version && key >= p.firstKey && key <= p.lastKey) return true;
    return false;
  }

  /** Whether a pin needs version `u` of a page of `key` superseded by `w` at record `seq`. */
  private retainNeeded(key: number, u: number, w: number, seq: number): boolean {
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

  /** Map-update rule for a written page (host write, cleaner copy, or roll-forward). */
  private applyPage(key: number, page: number, version: number, block: number, crc: number, seq: number): void {
    const t = this.table(key);
    t.ensure(page);
    const cur = t.version(page);
    if (version < cur) {
      const r = t.retained?.find((x) => x.page === page && x.version === version);
      if (r) {
        this.decLive(r.block, seq);
        r.block = block;
        r.crc = crc;
        this.incLive(block);
        this.dirty.add(key);
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
    this.dirty.add(key);
  }

  /** Map-update rule for a trim of [first, first + count) as `version`. */
  private applyTrim(key: number, first: number, count: number, version: number, seq: number): void {
    let t = this.tables.get(key);
    const end = first + count;
    if (!t) {
      if (first >= TRIM_GROW_LIMIT) return;
      t = this.table(key);
    }
    const grow = Math.min(end, Math.max(t.capacity, TRIM_GROW_LIMIT));
    if (grow > first) t.ensure(grow - 1);
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
    this.dirty.add(key);
  }

  private lookupAsOf(t: KeyTable, page: number, asOf: number): [number, number] {
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

  /** Whether block `from` still holds (key, page, version) as the current or a pinned version. */
  private isLive(key: number, page: number, version: number, from: number): boolean {
    const t = this.tables.get(key);
    if (!t) return false;
    if (t.block(page) === from && t.version(page) === version) return true;
    return !!t.retained?.some((r) => r.page === page && r.version === version && r.block === from);
  }

  // ---------------------------------------------------------------- reclaim & cleaner

  private stopCleaner = false;

  /** Frees dying segments whose conditions hold. Returns what still blocks the others. */
  private reclaim(): { freed: number; needSync: boolean; needCkpt: boolean; readers: boolean } {
    let freed = 0;
    let needSync = false;
    let needCkpt = false;
    let readers = false;
    for (const s of this.dying) {
      if (this.segs.state[s] !== DYING) {
        this.dying.delete(s);
        continue;
      }
      const a = this.segs.killSeq[s] <= this.durableSeq;
      const c = this.segs.trimSeq[s] <= this.committedCutSeq;
      const r = this.segs.readers[s] === 0;
      if (a && c && r) {
        this.dying.delete(s);
        this.segs.release(s);
        freed++;
      } else {
        if (!a) needSync = true;
        if (!c) needCkpt = true;
        if (!r) readers = true;
      }
    }
    if (freed > 0) this.signal();
    return { freed, needSync, needCkpt, readers };
  }

  private pokeCleaner(): void {
    const w = this.cleanerWake;
    this.cleanerWake = null;
    if (w) w();
  }

  private cleanerIdle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.cleanerWake = null; resolve(); }, ms);
      // Idle waits must not keep the process alive, unless host operations wait on us.
      if (this.queue.length === 0) t.unref();
      this.cleanerWake = () => { clearTimeout(t); resolve(); };
    });
  }

  private async cleanerLoop(): Promise<void> {
    let active = false;
    while (!this.stopCleaner && !this.failed) {
      try {
        const urgent = this.hotBlocked || this.segs.freeCount <= RESERVE + 1;
        const free = this.segs.freeCount;
        if (free < this.lowWater || urgent) active = true;
        if (free >= this.highWater && !urgent) active = false;
        if (!active) {
          await this.cleanerIdle(100);
          continue;
        }
        let r = this.reclaim();
        if (r.needSync && (urgent || this.dying.size >= 2)) {
          await this.sync();
          r = this.reclaim();
        }
        if (r.needCkpt && (urgent || this.segs.freeCount < this.lowWater)) {
          await this.checkpoint();
          r = this.reclaim();
        }
        if (r.freed > 0 && this.segs.freeCount >= this.highWater) continue;
        const victims = pickVictims(this.segs, this.policy, this.clock, 16, this.minGarbage);
        if (victims.length === 0) {
          if (this.hotBlocked && this.dying.size === 0 && this.moveQueue.length === 0) {
            this.spaceStuck = true;
            this.signal();
          }
          await this.cleanerIdle(r.readers ? 1 : 20);
          continue;
        }
        // Clean victims in groups whose live pages fill whole record headers.
        let vi = 0;
        while (vi < victims.length && !this.stopCleaner && !this.failed) {
          const group: number[] = [];
          let live = 0;
          // Enough victims to fill about one cold segment: their copies then share full
          // record headers instead of one part-filled header per victim.
          while (vi < victims.length && live < this.S - 1) {
            const v = victims[vi++];
            if (this.segs.state[v] !== SEALED) continue;
            group.push(v);
            live += this.segs.live[v];
          }
          if (group.length === 0) continue;
          const t0 = Date.now();
          const moved = await this.cleanGroup(group);
          const nowUrgent = this.hotBlocked || this.segs.freeCount <= RESERVE + 1;
          if (nowUrgent) {
            await this.sync();
            this.reclaim();
          }
          if (!nowUrgent && this.rate > 0 && moved > 0) {
            const wait = (moved / this.rate) * 1000 - (Date.now() - t0);
            if (wait > 1) await this.cleanerIdle(wait);
          }
          if (this.segs.freeCount + this.dying.size >= this.highWater && !this.hotBlocked) break;
        }
      } catch (e) {
        if (!this.failed) this.fail(e as Error);
      }
    }
  }

  /** Copies the live pages of segments `group` to the cold stream in one batch. Returns bytes copied. */
  private async cleanGroup(group: number[]): Promise<number> {
    const items: MoveItem[] = [];
    const liveBefore = group.map((v) => this.segs.live[v]);
    let age = 0;
    for (const v of group) {
      this.segs.state[v] = CLEANING;
      if (this.segs.age[v] > age) age = this.segs.age[v];
    }
    try {
      for (const v of group) await this.collectLive(v, items);
    } catch (e) {
      for (const v of group) if (this.segs.state[v] === CLEANING) this.segs.state[v] = SEALED;
      throw e;
    }
    if (items.length > 0) {
      try {
        await new Promise<void>((resolve, reject) => {
          this.moveQueue.push({ items, age, resolve, reject });
          this.signal();
          this.kick();
        });
      } catch (e) {
        for (const v of group) if (this.segs.state[v] === CLEANING) this.segs.state[v] = SEALED;
        if (!(e instanceof AllocatorFullError)) throw e;
        return 0;
      }
    }
    group.forEach((v, i) => {
      if (this.segs.state[v] !== CLEANING) return;
      if (this.segs.live[v] === 0) {
        this.markDying(v, this.appliedSeq);
        this.segmentsCleaned++;
        this.cleanedLiveSum += liveBefore[i];
      } else this.segs.state[v] = SEALED;
    });
    return items.length * PAGE;
  }

  /** Reads segment `v` and appends its live pages (current or pinned) to `items`. */
  private async collectLive(v: number, items: MoveItem[]): Promise<void> {
    const S = this.S;
    const buf = Buffer.allocUnsafe(S * PAGE);
    this.segs.readers[v]++;
    let n: number;
    try {
      n = await preadFully(this.fd, buf, 0, S * PAGE, this.offset + (1 + v * S) * PAGE);
    } finally {
      this.segs.readers[v]--;
    }
    if (n < S * PAGE) buf.fill(0, n);
    const base = 1 + v * S;
    const seen = new Set<number>();
    let pos = 0;
    let prev = 0;
    while (pos < S) {
      const h = parseHeader(buf.subarray(pos * PAGE, (pos + 1) * PAGE), this.uuidTag, v, pos, S, prev);
      if (!h) break;
      if (h.type !== REC_TRIM) {
        for (let i = 0; i < h.entries; i++) {
          const e = pos * PAGE + HEADER_FIXED + i * ENTRY_SIZE;
          const key = buf.readDoubleLE(e);
          const page = buf.readUInt32LE(e + 8);
          const version = buf.readDoubleLE(e + 12);
          const block = base + pos + 1 + i;
          if (this.isLive(key, page, version, block)) {
            const t = this.tables.get(key)!;
            const crc = t.block(page) === block ? t.crc(page) : t.retained!.find((r) => r.block === block)!.crc;
            items.push({ key, page, version, crc, data: buf.subarray((pos + 1 + i) * PAGE, (pos + 2 + i) * PAGE), from: block });
            seen.add(block);
          }
        }
      }
      prev = h.crc;
      pos += 1 + h.dataBlocks;
    }
    if (seen.size < this.segs.live[v]) {
      // A damaged summary: find the remaining live blocks from the map itself.
      const add = (key: number, page: number, version: number, crc: number, b: number): void => {
        if (b < base || b >= base + S || seen.has(b)) return;
        items.push({ key, page, version, crc, data: buf.subarray((b - base) * PAGE, (b - base + 1) * PAGE), from: b });
        seen.add(b);
      };
      for (const [key, t] of this.tables) {
        for (let p = 0; p < t.capacity; p++) {
          const b = t.block(p);
          if (b !== NONE) add(key, p, t.version(p), t.crc(p), b);
        }
        for (const r of t.retained ?? []) add(key, r.page, r.version, r.crc, r.block);
      }
    }
  }

  // ---------------------------------------------------------------- checkpoints

  private async doCheckpoint(): Promise<void> {
    const cutSeq = this.appliedSeq;
    const open = new Set<number>();
    for (const st of this.streams) if (st.seg >= 0) open.add(st.seg);
    if (this.inflight) for (const e of this.inflight.exts) open.add(e.seg);
    const ages = this.segs.age.slice();
    const clock = this.clock;
    const dirty = this.dirty;
    this.dirty = new Set();
    this.blocksSinceCut = 0;
    try {
      const records: Array<[number, Buffer | null]> = [];
      let n = 0;
      for (const k of dirty) {
        const t = this.tables.get(k);
        records.push([k, t ? t.encode() : null]);
        if (++n % 512 === 0) await new Promise((r) => setImmediate(r));
      }
      // The serialized tables reference only applied records; make them durable first.
      await this.sync();
      const bytes = await this.store.save(records, { uuid: this.uuidHex, cutSeq, clock, openSegments: [...open] }, ages);
      this.ckptBytes += bytes;
      this.checkpoints++;
      if (cutSeq > this.committedCutSeq) this.committedCutSeq = cutSeq;
      this.reclaim();
    } catch (e) {
      for (const k of dirty) this.dirty.add(k);
      throw e;
    }
  }

  // ---------------------------------------------------------------- recovery

  /**
   * Loads the newest checkpoint, then rolls forward, in seq order, over every record after
   * its cut: those in segments whose first record is newer than the cut, and those after
   * the cut in segments that were open at the cut.
   */
  private async recover(): Promise<void> {
    const S = this.S;
    const nSeg = this.segs.count;
    const loaded = await this.store.load(this.uuidHex);
    let cutSeq = 0;
    let open: number[] = [];
    if (loaded) {
      for (const [k, t] of loaded.tables) this.tables.set(k, t);
      for (const p of loaded.pins) {
        this.pins.set(p.id, p);
        if (p.id >= this.nextPinId) this.nextPinId = p.id + 1;
      }
      cutSeq = loaded.meta.cutSeq;
      this.clock = loaded.meta.clock;
      open = loaded.meta.openSegments;
      if (loaded.ages && loaded.ages.length === nSeg) this.segs.age.set(loaded.ages);
    }
    // First block of every segment.
    const firstSeq = new Float64Array(nSeg);
    const firstAge = new Float64Array(nSeg);
    let next = 0;
    const worker = async (): Promise<void> => {
      const h = Buffer.allocUnsafe(PAGE);
      while (next < nSeg) {
        const s = next++;
        const n = await pread(this.fd, h, 0, PAGE, this.offset + (1 + s * S) * PAGE);
        if (n < PAGE) continue;
        const r = parseHeader(h, this.uuidTag, s, 0, S, 0);
        if (r) {
          firstSeq[s] = r.seq;
          firstAge[s] = r.age;
        }
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    const cands: number[] = [];
    const openSet = new Set(open);
    for (let s = 0; s < nSeg; s++) if (firstSeq[s] > 0 && (firstSeq[s] > cutSeq || openSet.has(s))) cands.push(s);
    cands.sort((a, b) => firstSeq[a] - firstSeq[b]);

    let maxSeq = cutSeq;
    let maxClock = this.clock;
    let replayed = 0;
    for (let s = 0; s < nSeg; s++) {
      if (firstSeq[s] > maxSeq) maxSeq = firstSeq[s];
      if (firstAge[s] > maxClock) maxClock = firstAge[s];
    }
    interface Cursor { seg: number; buf: Buffer; pos: number; prev: number; lastSeq: number; rec: RecordHeader | null; age: number }
    const load = async (s: number): Promise<Cursor> => {
      const buf = Buffer.allocUnsafe(S * PAGE);
      const n = await preadFully(this.fd, buf, 0, S * PAGE, this.offset + (1 + s * S) * PAGE);
      if (n < S * PAGE) buf.fill(0, n);
      const c: Cursor = { seg: s, buf, pos: 0, prev: 0, lastSeq: -1, rec: null, age: 0 };
      advance(c);
      return c;
    };
    const advance = (c: Cursor): void => {
      c.rec = null;
      if (c.pos >= S) return;
      const h = parseHeader(c.buf.subarray(c.pos * PAGE, (c.pos + 1) * PAGE), this.uuidTag, c.seg, c.pos, S, c.prev);
      if (!h || h.seq <= c.lastSeq) return;
      for (let i = 0; i < h.dataBlocks; i++) {
        const e = c.pos * PAGE + HEADER_FIXED + i * ENTRY_SIZE;
        const d = c.buf.subarray((c.pos + 1 + i) * PAGE, (c.pos + 2 + i) * PAGE);
        if (crc32c(d) !== c.buf.readUInt32LE(e + 20)) return; // torn append
      }
      c.rec = h;
    };
    // k-way merge by seq over the candidates, holding only the segments whose seq ranges overlap.
    const heap: Cursor[] = [];
    const push = (c: Cursor): void => {
      heap.push(c);
      let i = heap.length - 1;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (heap[p].rec!.seq <= heap[i].rec!.seq) break;
        [heap[p], heap[i]] = [heap[i], heap[p]];
        i = p;
      }
    };
    const pop = (): Cursor => {
      const top = heap[0];
      const last = heap.pop()!;
      if (heap.length > 0) {
        heap[0] = last;
        let i = 0;
        for (;;) {
          const l = 2 * i + 1;
          const r = l + 1;
          let m = i;
          if (l < heap.length && heap[l].rec!.seq < heap[m].rec!.seq) m = l;
          if (r < heap.length && heap[r].rec!.seq < heap[m].rec!.seq) m = r;
          if (m === i) break;
          [heap[m], heap[i]] = [heap[i], heap[m]];
          i = m;
        }
      }
      return top;
    };
    let ci = 0;
    let prefetch: Promise<Cursor> | null = cands.length > 0 ? load(cands[0]) : null;
    const ended = (c: Cursor): void => {
      if (c.age > this.segs.age[c.seg]) this.segs.age[c.seg] = c.age;
    };
    for (;;) {
      while (prefetch && (heap.length === 0 || firstSeq[cands[ci]] <= heap[0].rec!.seq)) {
        const c = await prefetch;
        ci++;
        prefetch = ci < cands.length ? load(cands[ci]) : null;
        if (c.rec) push(c);
        else ended(c);
      }
      if (heap.length === 0) break;
      const c = pop();
      const h = c.rec!;
      if (h.seq > cutSeq) {
        this.replayRecord(c.buf, c.pos, h);
        replayed++;
      }
      if (h.seq > maxSeq) maxSeq = h.seq;
      if (h.age > maxClock) maxClock = h.age;
      if (h.age > c.age) c.age = h.age;
      c.prev = h.crc;
      c.lastSeq = h.seq;
      c.pos += 1 + h.dataBlocks;
      advance(c);
      if (c.rec) push(c);
      else ended(c);
    }
    this.seq = maxSeq;
    this.appliedSeq = maxSeq;
    this.committedCutSeq = cutSeq;
    this.clock = Math.max(this.clock, maxClock + 1);

    // Drop kept versions no pin needs any more; then count live blocks per segment.
    this.segs.live.fill(0);
    this.mappedPages = 0;
    this.retainedPages = 0;
    for (const [key, t] of this.tables) {
      let mapped = 0;
      for (let p = 0; p < t.capacity; p++) {
        const b = t.block(p);
        if (b !== NONE) {
          mapped++;
          this.incLive(b);
        }
      }
      t.mapped = mapped;
      this.mappedPages += mapped;
      if (t.retained) {
        const keep = t.retained.filter((r) => this.retainNeeded(key, r.version, r.until, r.seq));
        for (const r of keep) this.incLive(r.block);
        this.retainedPages += keep.length;
        t.retained = keep.length ? keep : null;
      }
    }
    for (let s = 0; s < nSeg; s++) {
      if (this.segs.live[s] > 0) {
        this.segs.state[s] = SEALED;
        if (this.segs.age[s] === 0) this.segs.age[s] = firstAge[s];
      } else this.segs.state[s] = FREE;
    }
    this.segs.rebuildFree();
    if (replayed > 0 || !loaded) {
      // Make what we rolled over durable, then record it so the next start need not.
      await datasync(this.fd);
      this.durableSeq = this.appliedSeq;
      await this.doCheckpoint();
    } else this.durableSeq = this.appliedSeq;
  }

  /** Applies one rolled-forward record (header at block `pos` of `buf`). */
  private replayRecord(buf: Buffer, pos: number, h: RecordHeader): void {
    const base = 1 + h.segment * this.S;
    for (let i = 0; i < h.entries; i++) {
      const e = pos * PAGE + HEADER_FIXED + i * ENTRY_SIZE;
      const key = buf.readDoubleLE(e);
      const page = buf.readUInt32LE(e + 8);
      const version = buf.readDoubleLE(e + 12);
      const last = buf.readUInt32LE(e + 20);
      if (!Number.isSafeInteger(key) || key < 0 || !Number.isSafeInteger(version) || version < 0) continue;
      if (h.type === REC_TRIM) {
        if (page + last <= 0x80000000) this.applyTrim(key, page, last, version, h.seq);
      } else if (page <= 0x7fffffff) {
        this.applyPage(key, page, version, base + pos + 1 + i, last, h.seq);
      }
    }
  }
}

/** Re-exported for the index. */
export type { CleanerPolicy };
