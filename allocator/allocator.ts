/**
 * One partition's log-structured allocator over a region of a device file: the public face
 * that ties its parts together.
 *
 *   write-path.ts     group commit: host writes/trims and cleaner copies become records
 *                     (a summary header + data pages) appended with one pwritev per segment
 *   read-path.ts      one map lookup and one device read per run of pages, crc32c checked
 *   cleaner.ts        cost-benefit (or greedy) segment cleaning into a separate cold stream
 *   checkpointer.ts   periodic checkpoints of the page map into a `level` database
 *   recovery.ts       checkpoint + roll-forward over record headers at open
 *   partition-state.ts  the page map, segment table, pins and the map-update rule
 *
 * Rosenblum & Ousterhout, "The Design and Implementation of a Log-Structured File System"
 * (SOSP 1991) is the model throughout. Segment reuse rule (segments.ts): a segment is
 * reused only when the records that emptied it are durable, its trim records are covered by
 * a checkpoint and no read of it is in flight; so roll-forward over the segments still
 * present always rebuilds the map as it was, and no read sees a reused block.
 */
import { open as openFile, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { AllocatorStateError, FormatError } from './errors.ts';
import { decodeSuperblock, encodeSuperblock, NONE, PAGE } from './layout.ts';
import { CheckpointStore, type PinRecord } from './checkpoint-store.ts';
import { preadFully } from './device-io.ts';
import { PartitionState } from './partition-state.ts';
import { WritePath } from './write-path.ts';
import { RESERVE } from './log-streams.ts';
import { readPages } from './read-path.ts';
import { Cleaner } from './cleaner.ts';
import { ReadRelocator } from './relocate.ts';
import { SegmentPrezero } from './prezero.ts';
import { SmoothedWriteback } from './writeback.ts';
import { Checkpointer } from './checkpointer.ts';
import { recover, type RecoveryReport } from './recovery.ts';
import { defaultSegmentBlocks, resolveTuning, type AllocatorOptions, type Tuning } from './options.ts';
import { computeStats, type AllocatorStats } from './stats.ts';
import type { CleanerPolicy } from './victim.ts';

/** The allocator's option, statistics, cleaner-policy and open-time recovery report types (see their files). */
export type { AllocatorOptions, AllocatorStats, CleanerPolicy, RecoveryReport };

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

/**
 * A partition allocator. Open with `Allocator.open`. Keys are owner keys (non-negative safe
 * integers, e.g. volume × 2^32 + extent); pages are 4 KiB logical page numbers within a key;
 * versions are non-negative safe integers chosen by the caller (higher = newer).
 */
export class Allocator {
  private closing = false;
  private closed = false;
  private horizonSeq = 0;
  private horizonLog = 0;
  private horizonAt = 0;
  private horizonPut: Promise<void> = Promise.resolve();
  private readonly wp: WritePath;
  private readonly cleaner: Cleaner;
  private readonly ckpt: Checkpointer;
  private readonly reloc: ReadRelocator | undefined;
  private readonly prezero: SegmentPrezero;
  private readonly writeback: SmoothedWriteback;

  private constructor(
    private readonly fh: FileHandle,
    private readonly st: PartitionState,
    private readonly store: CheckpointStore,
    private readonly tuning: Tuning,
    private readonly recovery: RecoveryReport,
    sparse: boolean,
  ) {
    this.prezero = new SegmentPrezero(st, tuning.prezero && sparse, tuning.prezeroDelayMs);
    this.writeback = new SmoothedWriteback(st.geo.fd, tuning.writebackBytes, () => st.counters.writebackSyncs++, (e) => this.wp.fail(e));
    this.wp = new WritePath(st, tuning.maxLive, tuning.summaryHoldMs, this.prezero, this.writeback, {
      applied: () => {
        this.ckpt.maybe();
        if (st.segs.freeCount < tuning.lowWater) this.cleaner.poke();
      },
      needSpace: () => this.cleaner.poke(),
      failed: () => this.cleaner.poke(),
      reclaim: () => void this.cleaner.reclaim(),
      synced: (seq) => this.noteDurable(seq),
    });
    this.ckpt = new Checkpointer(st, this.wp, store, { factor: tuning.checkpointFactor, minBlocks: tuning.checkpointMinBlocks }, () => void this.cleaner.reclaim());
    this.cleaner = new Cleaner(st, this.wp, () => this.ckpt.checkpoint(), {
      policy: tuning.policy,
      bytesPerSec: tuning.cleanerBytesPerSec,
      lowWater: tuning.lowWater,
      highWater: tuning.highWater,
      minGarbage: tuning.minGarbage,
    });
    this.reloc = tuning.relocateReads ? new ReadRelocator(st, (items) => this.wp.move(items, false, true)) : undefined;
  }

  /**
   * Opens (formatting if needed) the partition, loads the newest checkpoint and rolls
   * forward over the log after it.
   * @throws FormatError when block 0 holds something other than our superblock, or a
   *         superblock of another size or format; or when the checkpoint database is
   *         missing or of another region (unless `rebuildFromLog`).
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
      const metaDir = opts.metaDir ?? `${path}.meta/${offset}`;
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
          segBlocks = defaultSegmentBlocks(blocks - 1);
        }
        const segments = Math.floor((blocks - 1) / segBlocks);
        if (segments < RESERVE + 4) throw new AllocatorStateError(`region of ${size} bytes holds only ${segments} segments of ${segBlocks * PAGE} bytes; need ${RESERVE + 4}`);
        resolveTuning(opts, segBlocks, segments);
        sb = { size, uuid: randomBytes(16), segBlocks, segments };
        // The first (empty) checkpoint is committed before the superblock, so a formatted
        // region without a checkpoint means a lost database (recovery.ts).
        store = await CheckpointStore.open(metaDir);
        await store.clear();
        await store.save([], { uuid: sb.uuid.toString('hex'), cutSeq: 0, clock: 0, openSegments: [] }, new Float64Array(segments));
        await fh.write(encodeSuperblock(sb), 0, PAGE, offset);
        await fh.datasync();
        fresh = true;
      } else if (sb.size !== size) {
        throw new FormatError(`${path}@${offset}: region size ${size} differs from formatted size ${sb.size}`);
      } else if (sb.segBlocks < 2 || sb.segments < RESERVE + 4 || 1 + sb.segments * sb.segBlocks > blocks) {
        throw new FormatError(`${path}@${offset}: bad segment geometry in superblock`);
      } else store = await CheckpointStore.open(metaDir);
      const st = new PartitionState({
        fd: fh.fd, offset, size, S: sb.segBlocks, segments: sb.segments,
        uuidTag: sb.uuid.readUInt32LE(0), uuidHex: sb.uuid.toString('hex'),
      });
      const tuning = resolveTuning(opts, sb.segBlocks, sb.segments);
      const report = await recover(st, store, `${path}@${offset}`, fresh, opts.rebuildFromLog ?? false);
      // A regular file with holes (or shorter than the region): never-written segments are
      // zeroed ahead of the log (prezero.ts).
      const stat = await fh.stat();
      const a = new Allocator(fh, st, store, tuning, report, stat.isFile() && stat.blocks * 512 < Math.max(stat.size, offset + size));
      // Rebuilt from the log alone: commit a checkpoint so the database is whole again.
      if (!fresh && !report.fromCheckpoint) await a.ckpt.checkpoint();
      a.cleaner.start();
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
    return new Promise((resolve, reject) => this.wp.enqueue({ kind: 1, key, firstPage, data, version, resolve, reject }));
  }

  /**
   * Unmaps pages [firstPage, firstPage + count) of `key` as `version` (pages holding a
   * newer version keep it); they read as zeros afterwards, and a later write of an older
   * version to them is ignored. Resolves once the trim record is in the device file;
   * durable after a later flush().
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
    return new Promise((resolve, reject) => this.wp.enqueue({ kind: 2, key, firstPage, count, version, resolve, reject }));
  }

  /**
   * Makes every write and trim submitted before this call durable: waits for them to be
   * written, then fdatasync — one fdatasync serves every flush waiting at that moment
   * (group commit). The seal of the host record is asked for first, so writes still queued
   * are sealed in the batch that writes them (a write followed at once by a flush — FUA —
   * costs one batch, not a batch and then a seal).
   * @throws the fdatasync error (the allocator then refuses further work).
   */
  async flush(): Promise<void> {
    if (this.closed) throw new AllocatorStateError('allocator is closed');
    const sealed = this.wp.sealHot();
    await this.wp.flushQueued();
    if (this.wp.failed) throw this.wp.failed;
    await sealed;
    await this.wp.sync(true);
  }

  /**
   * Reads `count` pages of `key` from `firstPage` (count × 4096 bytes); unmapped pages
   * read as zeros. With `asOf`, reads the snapshot view at that version instead (each
   * page's newest version ≤ asOf); asOf must be a pinned version covering `key`. With
   * `into` (count × 4096 bytes, any contents), the pages are read into it and it is returned.
   * A current read whose pages lie scattered over the log also queues them to be written
   * side by side (read relocation, relocate.ts; off with `relocateReads: false`).
   * @throws ChecksumError when a page read back does not match its crc32c (no data returned).
   * @throws AllocatorStateError on bad arguments, an unpinned asOf, a wrong-sized `into`, or after close.
   */
  read(key: number, firstPage: number, count: number, asOf?: number, into?: Buffer): Promise<Buffer> {
    if (this.closed) return Promise.reject(new AllocatorStateError('allocator is closed'));
    try {
      checkKey(key);
      checkRange(firstPage, count);
      if (asOf !== undefined) {
        checkVersion(asOf);
        if (!this.st.pinCovers(key, asOf)) throw new AllocatorStateError(`no pin of version ${asOf} covers key ${key}`);
      }
      if (into && into.length !== count * PAGE) throw new AllocatorStateError(`read of ${count} pages into ${into.length} bytes`);
    } catch (e) {
      return Promise.reject(e);
    }
    return readPages(this.st, key, firstPage, count, asOf, this.tuning.readDelayMs, into, this.reloc);
  }

  /** Newest version written or trimmed for a page (0 when never touched). */
  version(key: number, page: number): number {
    const t = this.st.tables.get(key);
    return t ? t.version(page) : 0;
  }

  /** Owner keys that have at least one mapped page, in no particular order. */
  *keys(): IterableIterator<number> {
    for (const [k, t] of this.st.tables) if (t.mapped > 0) yield k;
  }

  /** Number of mapped pages of `key` (0 for an unknown key); O(1). */
  mappedPages(key: number): number {
    return this.st.tables.get(key)?.mapped ?? 0;
  }

  /**
   * Mapped pages of `key` in page order, each with its newest version and the crc32c the
   * page map records for its block (the checksum of the page's 4096 data bytes as written;
   * read() verifies it). Taken from the in-memory page map only: no device I/O.
   */
  *pages(key: number): IterableIterator<{ page: number; version: number; crc: number }> {
    const t = this.st.tables.get(key);
    if (!t) return;
    for (let p = 0; p < t.capacity; p++) if (t.block(p) !== NONE) yield { page: p, version: t.version(p), crc: t.crc(p) };
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
    // Supersessions before the pin must carry lower seqs than sinceSeq, in replay too.
    await this.wp.sealHot();
    const p: PinRecord = { id: this.st.nextPinId++, version, firstKey, lastKey, sinceSeq: this.st.appliedSeq };
    this.st.pins.set(p.id, p);
    try {
      await this.store.putPin(p);
    } catch (e) {
      this.st.pins.delete(p.id);
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
    if (!this.st.pins.has(id)) throw new AllocatorStateError(`no pin ${id}`);
    await this.store.delPin(id);
    this.st.pins.delete(id);
    this.st.dropUnneededRetained(this.st.appliedSeq);
    this.cleaner.poke();
  }

  /** Active pins. */
  listPins(): Array<{ id: number; version: number; firstKey: number; lastKey: number }> {
    return [...this.st.pins.values()].map(({ id, version, firstKey, lastKey }) => ({ id, version, firstKey, lastKey }));
  }

  /**
   * Writes a checkpoint of the page map now (normally done in the background) and
   * resolves when it is committed.
   * @throws AllocatorStateError after close; the database error if the write fails.
   */
  async checkpoint(): Promise<void> {
    if (this.closed) throw new AllocatorStateError('allocator is closed');
    return this.ckpt.checkpoint();
  }

  /** Current space, traffic and memory figures. */
  stats(): AllocatorStats {
    return computeStats(this.st, this.tuning.maxLive, this.recovery);
  }

  /**
   * Diagnostics for tests: byte offset in the device file of the block holding `key`'s
   * `page` (current version), or null when unmapped.
   */
  locate(key: number, page: number): number | null {
    const t = this.st.tables.get(key);
    const b = t ? t.block(page) : NONE;
    return b === NONE ? null : this.st.geo.offset + b * PAGE;
  }

  /**
   * Finishes queued work, flushes, stops the cleaner, writes a final checkpoint and closes
   * the file and database. Later calls of any method fail with AllocatorStateError.
   */
  async close(): Promise<void> {
    if (this.closed || this.closing) return;
    this.closing = true;
    await this.reloc?.stop();
    await this.wp.flushQueued();
    await this.cleaner.stop();
    if (!this.wp.failed) {
      await this.wp.sync(true).catch(() => undefined);
      await this.ckpt.checkpoint().catch((e: Error) => {
        this.ckpt.lastError = e;
      });
    } else await this.ckpt.settled();
    this.closed = true;
    // Nothing of ours may still use the file descriptor once it is closed (it could be reused).
    await Promise.all([this.writeback.idle(), this.prezero.idle()]);
    await this.horizonPut;
    await this.store.close().catch(() => undefined);
    await this.fh.close();
  }

  /**
   * Records the durable horizon in the database (no sync) when 32 MiB of log or a second
   * went by since the last record of it, so that recovery reads and checks the pages of at
   * most that much log (recovery.ts).
   */
  private noteDurable(seq: number): void {
    const log = this.st.counters.logBytes;
    const now = performance.now();
    if (seq <= this.horizonSeq || (log - this.horizonLog < 32 * 1024 * 1024 && now - this.horizonAt < 1000)) return;
    this.horizonSeq = seq;
    this.horizonLog = log;
    this.horizonAt = now;
    this.horizonPut = this.store.putHorizon(this.st.geo.uuidHex, seq).then((n) => {
      this.st.counters.ckptBytes += n;
    }, () => undefined);
  }

  private refuse(): Error | null {
    if (this.closed || this.closing) return new AllocatorStateError('allocator is closed');
    if (this.wp.failed) return new AllocatorStateError(`allocator failed: ${this.wp.failed.message}`);
    return null;
  }
}
