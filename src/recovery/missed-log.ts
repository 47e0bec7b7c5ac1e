/**
 * The missed log: a storage node's durable record of which extents a down member missed
 * (log-guided resync, like a write-intent bitmap or Ceph's pg log).
 *
 * When a node applies a write to an extent while another member of its acting set is
 * down, it records (member node, volume, extent) here and waits for the record to be
 * durable BEFORE it acknowledges the write. When the member is back and has pulled the
 * extent (resync), the record is removed. The log survives kill -9 of the node process
 * and torn appends (power loss in the middle of a write).
 *
 * File format: an append-only sequence of fixed 16-byte records, little-endian:
 *
 *    0 u8  kind          1 = add, 2 = remove
 *    1 u8  reserved      0
 *    2 u16 node          target (down) member's node id
 *    4 u32 volume        volume id
 *    8 u32 extent        extent index within the volume
 *   12 u32 crc           crc32c of bytes 0..11
 *
 * Replay applies valid records in file order (adding a present record or removing an
 * absent one is a no-op, so records are idempotent). A record that fails its check is
 * skipped; bad records after the last good one (a torn tail) are truncated away, bad
 * records before it cause the file to be rewritten on open. Writes are serialized: each
 * round appends every queued record with one write and, if any add or sync() waits,
 * one fdatasync (group commit). When the file holds more than max(4096, 4 × live) records
 * it is compacted between rounds: the live set is written to `<path>.tmp`, fdatasynced,
 * renamed over `<path>` and the directory fsynced.
 */
import { crc32c } from '@node-rs/crc32';
import { constants } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

/** One record: node `node` missed writes to `extent` of `volume`. */
export interface MissedEntry {
  /** The member that missed the writes (u16 node id). */
  node: number;
  /** Volume id (u32). */
  volume: number;
  /** Extent index within the volume (u32). */
  extent: number;
}

/** Bytes per record in the file. */
const REC = 16;
const KIND_ADD = 1;
const KIND_REMOVE = 2;
/** Compaction threshold: never compact files of at most this many records. */
const COMPACT_MIN = 4096;
/** Compaction threshold: compact when the file holds more than this many records per live one. */
const COMPACT_FACTOR = 4;

/** A group commit: the records queued in one round and everyone waiting for them to be durable. */
interface Batch {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
  /** The adds of this batch, as flat (node, volume, extent) triples. */
  adds: number[];
}

/** Per-extent state: `null` once durable, else the batch that will make it durable. */
type Slot = Batch | null;

/** Records of one target node. */
interface NodeRecords {
  count: number;
  volumes: Map<number, Map<number, Slot>>;
}

function newBatch(): Batch {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // The promise is shared by every add of the round; a caller that drops it must not
  // turn an I/O error into an unhandled rejection (callers that await it still see it).
  promise.catch(() => {});
  return { promise, resolve, reject, adds: [] };
}

function encode(buf: Buffer, off: number, kind: number, node: number, volume: number, extent: number): void {
  buf[off] = kind;
  buf[off + 1] = 0;
  buf.writeUInt16LE(node, off + 2);
  buf.writeUInt32LE(volume, off + 4);
  buf.writeUInt32LE(extent, off + 8);
  buf.writeUInt32LE(crc32c(buf.subarray(off, off + 12)) >>> 0, off + 12);
}

function checkArgs(node: number, volume: number, extent: number): void {
  if ((node & 0xffff) !== node || volume >>> 0 !== volume || extent >>> 0 !== extent) {
    throw new RangeError(`missed log: bad record (node ${node}, volume ${volume}, extent ${extent}): node must be a u16, volume and extent u32 integers`);
  }
}

async function writeAll(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    if (bytesWritten <= 0) throw new Error(`missed log: short write at offset ${position + done}`);
    done += bytesWritten;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const d = await open(dir, constants.O_RDONLY);
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/**
 * The durable set of (node, volume, extent) records of one storage node. Queries are
 * served from memory; add() is durable when its promise resolves, remove() is durable
 * lazily (by the next fdatasync for any reason, sync() or close()).
 *
 * Any I/O error while appending or compacting is fatal: the log keeps serving queries
 * from memory, but every pending and later add/sync/remove fails with that error, so the
 * node must not acknowledge writes that need a record; reopen it to recover.
 */
export class MissedLog {
  readonly #path: string;
  #fh: FileHandle;
  /** Byte offset of the end of the file (where the next record goes). */
  #offset: number;
  /** Records in the file (valid or not), for the compaction threshold. */
  #fileRecords: number;
  readonly #nodes = new Map<number, NodeRecords>();
  #size = 0;
  /** Encoded records waiting for the next round. */
  #queue: Buffer = Buffer.alloc(0);
  #queued = 0;
  /** The batch of the next round, if any add or sync() waits for it. */
  #next: Batch | null = null;
  /** The writer loop, while it runs. */
  #writing: Promise<void> | null = null;
  /** Records were written but not yet fdatasynced. */
  #dirty = false;
  #syncs = 0;
  #closed = false;
  #closing: Promise<void> | null = null;
  #failed: Error | null = null;

  private constructor(path: string, fh: FileHandle, offset: number) {
    this.#path = path;
    this.#fh = fh;
    this.#offset = offset;
    this.#fileRecords = offset / REC;
  }

  /**
   * Opens (creating if missing) the log file at `path`, replaying it; a torn or corrupt
   * tail record is ignored (and truncated away); throws on other I/O errors. A leftover
   * `<path>.tmp` of an interrupted compaction is deleted. Corrupt records followed by
   * good ones (not a torn tail: media damage) are skipped and the file is rewritten.
   */
  static async open(path: string): Promise<MissedLog> {
    await rm(path + '.tmp', { force: true });
    let fh: FileHandle;
    let created = false;
    try {
      fh = await open(path, constants.O_RDWR);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      fh = await open(path, constants.O_RDWR | constants.O_CREAT, 0o644);
      created = true;
    }
    let log: MissedLog | undefined;
    try {
      if (created) await fsyncDir(dirname(path));
      const data = await fh.readFile();
      log = new MissedLog(path, fh, 0);
      let end = 0; // end of the last good record
      let badBeforeEnd = 0;
      let bad = 0;
      for (let off = 0; off + REC <= data.length; off += REC) {
        const kind = data[off];
        const ok =
          (kind === KIND_ADD || kind === KIND_REMOVE) &&
          data[off + 1] === 0 &&
          crc32c(data.subarray(off, off + 12)) >>> 0 === data.readUInt32LE(off + 12);
        if (!ok) {
          bad++;
          continue;
        }
        badBeforeEnd = bad;
        end = off + REC;
        const node = data.readUInt16LE(off + 2);
        const volume = data.readUInt32LE(off + 4);
        const extent = data.readUInt32LE(off + 8);
        if (kind === KIND_ADD) log.#set(node, volume, extent, null);
        else log.#delete(node, volume, extent);
      }
      if (end < data.length) {
        await fh.truncate(end);
        await fh.datasync();
        log.#syncs++;
      }
      log.#offset = end;
      log.#fileRecords = end / REC;
      if (badBeforeEnd > 0 || log.#needsCompaction()) await log.#compact();
      return log;
    } catch (err) {
      await fh.close().catch(() => {});
      if (log && log.#fh !== fh) await log.#fh.close().catch(() => {});
      throw err;
    }
  }

  /** Whether the record is present (durable or not yet). O(1). */
  has(node: number, volume: number, extent: number): boolean {
    return this.#nodes.get(node)?.volumes.get(volume)?.has(extent) ?? false;
  }

  /**
   * Records it. Returns undefined when it is already present AND durable (the hot path: no
   * allocation of promises), otherwise a promise that resolves once the record is durable
   * (appended + fdatasync). Concurrent adds share one fdatasync (group commit: while one
   * sync is running, new adds queue and are written+synced together next).
   * Throws a RangeError when node is not a u16 or volume/extent not u32 integers, and an
   * Error after close() or a fatal I/O error; the promise rejects on an I/O error.
   */
  add(node: number, volume: number, extent: number): Promise<void> | undefined {
    if (this.#closed || this.#failed) throw this.#unusable();
    checkArgs(node, volume, extent);
    const slot = this.#nodes.get(node)?.volumes.get(volume)?.get(extent);
    if (slot === null) return undefined;
    if (slot !== undefined) return slot.promise;
    const batch = this.#batch();
    this.#set(node, volume, extent, batch);
    batch.adds.push(node, volume, extent);
    this.#enqueue(KIND_ADD, node, volume, extent);
    return batch.promise;
  }

  /**
   * Removes it (durable lazily: a removal lost in a crash only causes one extra resync of
   * that extent). No-op when absent. The removal is written to the file soon (without an
   * fdatasync of its own) and made durable by the next fdatasync, sync() or close().
   * Throws a RangeError on bad arguments, an Error after close() or a fatal I/O error.
   */
  remove(node: number, volume: number, extent: number): void {
    if (this.#closed || this.#failed) throw this.#unusable();
    checkArgs(node, volume, extent);
    if (!this.#delete(node, volume, extent)) return;
    this.#enqueue(KIND_REMOVE, node, volume, extent);
    this.#kick();
  }

  /** Records for target node `node`, as [volume, extent] pairs (in no particular order). */
  forNode(node: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    const n = this.#nodes.get(node);
    if (n) for (const [volume, extents] of n.volumes) for (const extent of extents.keys()) out.push([volume, extent]);
    return out;
  }

  /** Every record (in no particular order). */
  all(): MissedEntry[] {
    const out: MissedEntry[] = [];
    for (const [node, n] of this.#nodes) {
      for (const [volume, extents] of n.volumes) for (const extent of extents.keys()) out.push({ node, volume, extent });
    }
    return out;
  }

  /** Number of records per target node (nodes without records are absent). */
  counts(): Map<number, number> {
    const out = new Map<number, number>();
    for (const [node, n] of this.#nodes) out.set(node, n.count);
    return out;
  }

  /** Total records. */
  get size(): number {
    return this.#size;
  }

  /**
   * Diagnostics (for tests and metrics): fdatasync calls made on the log so far,
   * including those of opening and compaction.
   */
  get syncCount(): number {
    return this.#syncs;
  }

  /**
   * Resolves when every add/remove so far is in the file (fdatasync). Rejects with the
   * fatal I/O error, if one happened. Resolves at once after close().
   */
  sync(): Promise<void> {
    if (this.#failed) return Promise.reject(this.#failed);
    if (this.#writing === null && this.#queued === 0 && !this.#dirty) return Promise.resolve();
    return this.#batch().promise;
  }

  /**
   * Writes pending changes, syncs, closes the file. Later add() and remove() throw an
   * Error. Idempotent; rejects with the fatal I/O error if one happened (the file is
   * closed anyway).
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    this.#closing = (async () => {
      try {
        await this.sync();
      } finally {
        while (this.#writing) await this.#writing;
        await this.#fh.close();
      }
    })();
    return this.#closing;
  }

  #unusable(): Error {
    if (this.#failed) return new Error(`missed log ${this.#path}: unusable after an I/O error: ${this.#failed.message}`, { cause: this.#failed });
    return new Error(`missed log ${this.#path} is closed`);
  }

  #set(node: number, volume: number, extent: number, slot: Slot): void {
    let n = this.#nodes.get(node);
    if (!n) this.#nodes.set(node, (n = { count: 0, volumes: new Map() }));
    let extents = n.volumes.get(volume);
    if (!extents) n.volumes.set(volume, (extents = new Map()));
    if (!extents.has(extent)) {
      n.count++;
      this.#size++;
    }
    extents.set(extent, slot);
  }

  /** Deletes the record from memory; false when it was absent. */
  #delete(node: number, volume: number, extent: number): boolean {
    const n = this.#nodes.get(node);
    const extents = n?.volumes.get(volume);
    if (!n || !extents || !extents.delete(extent)) return false;
    if (extents.size === 0) n.volumes.delete(volume);
    if (--n.count === 0) this.#nodes.delete(node);
    this.#size--;
    return true;
  }

  /** The batch of the next round (created on demand), making sure a round will run. */
  #batch(): Batch {
    this.#kick();
    return (this.#next ??= newBatch());
  }

  #enqueue(kind: number, node: number, volume: number, extent: number): void {
    const need = (this.#queued + 1) * REC;
    if (this.#queue.length < need) {
      const grown = Buffer.allocUnsafe(Math.max(need, this.#queue.length * 2, 64 * REC));
      this.#queue.copy(grown, 0, 0, this.#queued * REC);
      this.#queue = grown;
    }
    encode(this.#queue, this.#queued * REC, kind, node, volume, extent);
    this.#queued++;
  }

  /** Starts the writer loop unless it runs. */
  #kick(): void {
    if (this.#writing === null && !this.#failed) this.#writing = this.#run();
  }

  /** The writer loop: rounds of append (+ fdatasync) and compactions, until idle. */
  async #run(): Promise<void> {
    // Let every add issued in the current tick join the first round.
    await Promise.resolve();
    let batch: Batch | null = null;
    try {
      for (;;) {
        if (this.#queued === 0 && this.#next === null) {
          if (this.#closed || !this.#needsCompaction()) break;
          await this.#compact();
          continue;
        }
        const n = this.#queued;
        const buf = this.#queue.subarray(0, n * REC);
        batch = this.#next;
        this.#queue = Buffer.alloc(0);
        this.#queued = 0;
        this.#next = null;
        if (n > 0) {
          await writeAll(this.#fh, buf, this.#offset);
          this.#offset += buf.length;
          this.#fileRecords += n;
          this.#dirty = true;
        }
        if (batch) {
          if (this.#dirty) {
            await this.#fh.datasync();
            this.#syncs++;
            this.#dirty = false;
          }
          const a = batch.adds;
          for (let i = 0; i < a.length; i += 3) {
            const extents = this.#nodes.get(a[i])?.volumes.get(a[i + 1]);
            if (extents?.get(a[i + 2]) === batch) extents.set(a[i + 2], null);
          }
          batch.resolve();
          batch = null;
        }
      }
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      this.#failed = e;
      batch?.reject(e);
      this.#next?.reject(e);
      this.#next = null;
    } finally {
      this.#writing = null;
    }
  }

  #needsCompaction(): boolean {
    return this.#fileRecords > Math.max(COMPACT_MIN, COMPACT_FACTOR * this.#size);
  }

  /** Rewrites the file with the live set (taken now), then appends continue on the new file. */
  async #compact(): Promise<void> {
    const buf = Buffer.allocUnsafe(this.#size * REC);
    let off = 0;
    for (const [node, n] of this.#nodes) {
      for (const [volume, extents] of n.volumes) {
        for (const extent of extents.keys()) {
          encode(buf, off, KIND_ADD, node, volume, extent);
          off += REC;
        }
      }
    }
    const tmp = this.#path + '.tmp';
    const fh = await open(tmp, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC, 0o644);
    try {
      await writeAll(fh, buf, 0);
      await fh.datasync();
      this.#syncs++;
      await rename(tmp, this.#path);
    } catch (err) {
      await fh.close().catch(() => {});
      throw err;
    }
    const old = this.#fh;
    this.#fh = fh;
    this.#offset = buf.length;
    this.#fileRecords = buf.length / REC;
    this.#dirty = false;
    await old.close();
    // The rename must be durable before anything is appended to the new file.
    await fsyncDir(dirname(this.#path));
  }
}
