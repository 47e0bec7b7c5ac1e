/**
 * One partition's log-structured allocator over a region of a device file.
 *
 * Host writes are appended to a log (group commit: every write queued while the
 * previous device write is in flight goes into the next single vectored write); each
 * append carries its own summary so no separate metadata write is needed. The page map
 * lives in memory and is rebuilt at open by rolling forward over the log, dropping a
 * torn tail (header crc, per-page crc and the header crc chain are all checked).
 *
 * Follows the log-structured design of Rosenblum & Ousterhout, "The Design and
 * Implementation of a Log-Structured File System" (SOSP 1991).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { crc32c } from '@node-rs/crc32';
import { AllocatorFullError, AllocatorStateError, ChecksumError, FormatError } from './errors.ts';
import {
  ENTRY_SIZE, FORMAT_VERSION, HEADER_FIXED, MAX_ENTRIES, PAGE, REC_TRIM, REC_WRITE, RECORD_MAGIC, SUPER_MAGIC,
} from './layout.ts';
import { PageTable } from './page-table.ts';

/** Where the partition lives and how to open it. */
export interface AllocatorOptions {
  /** Path of the device file (created if missing when `create` is true). */
  path: string;
  /** Byte offset of the region in the file; a multiple of 4096. */
  offset: number;
  /** Region size in bytes; a multiple of 4096, at least 8 pages. */
  size: number;
  /** Format the region if it holds no superblock (all-zero block 0). Default true. */
  create?: boolean;
}

/** Space and traffic counters. All figures in bytes. */
export interface AllocatorStats {
  capacityBytes: number;
  /** Bytes of the log consumed so far (superblock included). */
  usedBytes: number;
  freeBytes: number;
  /** Mapped pages × 4096. */
  liveBytes: number;
  hostBytesWritten: number;
  deviceBytesWritten: number;
  metadataBytesWritten: number;
  /** deviceBytesWritten / hostBytesWritten (1 when nothing was written). */
  writeAmplification: number;
}

interface WriteOp {
  kind: 1;
  key: number;
  firstPage: number;
  data: Buffer;
  version: number;
  resolve: () => void;
  reject: (e: Error) => void;
}
interface TrimOp {
  kind: 2;
  key: number;
  firstPage: number;
  count: number;
  version: number;
  resolve: () => void;
  reject: (e: Error) => void;
}
type Op = WriteOp | TrimOp;

const RECOVERY_CHUNK = 8 * 1024 * 1024;

function checkKey(key: number): void {
  if (!Number.isSafeInteger(key) || key < 0) throw new AllocatorStateError(`key ${key} must be a non-negative safe integer`);
}
function checkPage(page: number, count: number): void {
  if (!Number.isInteger(page) || page < 0 || page > 0x7fffffff) throw new AllocatorStateError(`page ${page} out of range`);
  if (!Number.isInteger(count) || count < 0 || page + count > 0x80000000) throw new AllocatorStateError(`page count ${count} out of range`);
}

/**
 * A partition allocator. Open with `Allocator.open`. Keys are owner keys (non-negative
 * safe integers, e.g. an extent id); pages are 4 KiB logical page numbers within a key.
 */
export class Allocator {
  private readonly tables = new Map<number, PageTable>();
  private queue: Op[] = [];
  private draining = false;
  private closed = false;
  /** Next free block of the log. */
  private head = 1;
  private seq = 0;
  private prevCrc = 0;
  private submitted = 0;
  private completed = 0;
  private waiters: Array<{ target: number; resolve: () => void }> = [];
  private syncTail: Promise<void> = Promise.resolve();
  private nextSync: { promise: Promise<void> } | null = null;
  private mappedPages = 0;
  private hostBytes = 0;
  private deviceBytes = 0;
  private metaBytes = 0;

  private constructor(
    private readonly fh: FileHandle,
    private readonly offset: number,
    private readonly blocks: number,
    private readonly uuidTag: number,
  ) {}

  /**
   * Opens (and if needed formats) the partition and rebuilds the page map from its log.
   * @throws FormatError when block 0 holds something that is not our superblock, or
   *         the region geometry differs from the superblock's.
   * @throws AllocatorStateError on a bad offset/size.
   */
  static async open(opts: AllocatorOptions): Promise<Allocator> {
    const { path, offset, size } = opts;
    if (offset % PAGE || size % PAGE || size < 8 * PAGE) throw new AllocatorStateError(`region offset ${offset} / size ${size} must be 4 KiB multiples, size >= 32 KiB`);
    let fh: FileHandle;
    try {
      fh = await open(path, 'r+');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || opts.create === false) throw e;
      fh = await open(path, 'w+');
    }
    try {
      const sb = Buffer.alloc(PAGE);
      await fh.read(sb, 0, PAGE, offset);
      let uuid: Buffer;
      if (sb.every((b) => b === 0)) {
        if (opts.create === false) throw new FormatError(`${path}@${offset}: no allocator superblock`);
        uuid = randomBytes(16);
        sb.write(SUPER_MAGIC, 0, 'latin1');
        sb.writeUInt32LE(FORMAT_VERSION, 8);
        sb.writeUInt32LE(PAGE, 12);
        sb.writeDoubleLE(size, 16);
        uuid.copy(sb, 24);
        sb.writeUInt32LE(crc32c(sb.subarray(0, PAGE - 4)), PAGE - 4);
        await fh.write(sb, 0, PAGE, offset);
        await fh.datasync();
      } else {
        if (sb.toString('latin1', 0, 8) !== SUPER_MAGIC) throw new FormatError(`${path}@${offset}: not a Cairn allocator region`);
        if (crc32c(sb.subarray(0, PAGE - 4)) !== sb.readUInt32LE(PAGE - 4)) throw new FormatError(`${path}@${offset}: superblock checksum mismatch`);
        if (sb.readUInt32LE(8) !== FORMAT_VERSION) throw new FormatError(`${path}@${offset}: format ${sb.readUInt32LE(8)} not supported`);
        if (sb.readDoubleLE(16) !== size) throw new FormatError(`${path}@${offset}: region size ${size} differs from formatted size ${sb.readDoubleLE(16)}`);
        uuid = sb.subarray(24, 40);
      }
      const a = new Allocator(fh, offset, size / PAGE, uuid.readUInt32LE(0));
      await a.recover();
      return a;
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /** Rolls forward over the log from block 1, stopping at the first invalid or torn record. */
  private async recover(): Promise<void> {
    const chunk = Buffer.allocUnsafe(RECOVERY_CHUNK);
    let chunkStart = -1; // block index of chunk[0]
    let chunkBlocks = 0;
    const ensure = async (block: number, count: number): Promise<boolean> => {
      if (block + count > this.blocks) return false;
      if (chunkStart >= 0 && block >= chunkStart && block + count <= chunkStart + chunkBlocks) return true;
      const want = Math.min(RECOVERY_CHUNK / PAGE, this.blocks - block);
      const { bytesRead } = await this.fh.read(chunk, 0, want * PAGE, this.offset + block * PAGE);
      chunkStart = block;
      chunkBlocks = Math.floor(bytesRead / PAGE);
      return count <= chunkBlocks;
    };
    let block = 1;
    for (;;) {
      if (!(await ensure(block, 1))) break;
      const h = chunk.subarray((block - chunkStart) * PAGE, (block - chunkStart + 1) * PAGE);
      if (h.readUInt32LE(0) !== RECORD_MAGIC) break;
      if (crc32c(h.subarray(0, PAGE - 4)) !== h.readUInt32LE(PAGE - 4)) break;
      if (h.readDoubleLE(8) !== this.seq + 1 || h.readUInt32LE(16) !== this.prevCrc || h.readUInt32LE(20) !== this.uuidTag) break;
      const type = h[4];
      const n = h.readUInt16LE(6);
      if (n > MAX_ENTRIES) break;
      const headerCrc = h.readUInt32LE(PAGE - 4);
      if (type === REC_WRITE) {
        if (!(await ensure(block, 1 + n))) break;
        const base = (block - chunkStart) * PAGE;
        let torn = false;
        for (let i = 0; i < n; i++) {
          const e = base + HEADER_FIXED + i * ENTRY_SIZE;
          const crc = chunk.readUInt32LE(e + 20);
          const data = chunk.subarray(base + (1 + i) * PAGE, base + (2 + i) * PAGE);
          if (crc32c(data) !== crc) { torn = true; break; }
        }
        if (torn) break;
        for (let i = 0; i < n; i++) {
          const e = base + HEADER_FIXED + i * ENTRY_SIZE;
          this.applyWrite(chunk.readDoubleLE(e), chunk.readUInt32LE(e + 8), chunk.readDoubleLE(e + 12), block + 1 + i, chunk.readUInt32LE(e + 20));
        }
        block += 1 + n;
      } else if (type === REC_TRIM) {
        const base = (block - chunkStart) * PAGE;
        for (let i = 0; i < n; i++) {
          const e = base + HEADER_FIXED + i * ENTRY_SIZE;
          this.applyTrim(chunk.readDoubleLE(e), chunk.readUInt32LE(e + 8), chunk.readUInt32LE(e + 20), chunk.readDoubleLE(e + 12));
        }
        block += 1;
      } else break;
      this.seq++;
      this.prevCrc = headerCrc;
    }
    this.head = block;
  }

  private table(key: number): PageTable {
    let t = this.tables.get(key);
    if (!t) {
      t = new PageTable();
      this.tables.set(key, t);
    }
    return t;
  }

  private applyWrite(key: number, page: number, version: number, block: number, crc: number): void {
    const t = this.table(key);
    t.ensure(page);
    if (t.versions[page] > version) return;
    if (t.blocks[page] < 0) { t.mapped++; this.mappedPages++; }
    t.blocks[page] = block;
    t.versions[page] = version;
    t.crcs[page] = crc;
  }

  private applyTrim(key: number, firstPage: number, count: number, version: number): void {
    const t = this.tables.get(key);
    if (!t) return;
    const end = Math.min(firstPage + count, t.blocks.length);
    for (let p = firstPage; p < end; p++) {
      if (t.versions[p] > version) continue;
      if (t.blocks[p] >= 0) { t.mapped--; this.mappedPages--; }
      t.blocks[p] = -1;
      t.versions[p] = version;
    }
    if (t.mapped === 0) this.tables.delete(key);
  }

  /**
   * Writes `data` (a whole number of 4 KiB pages) to pages [firstPage, firstPage + n) of
   * `key`, as `version`. A page already holding a newer version keeps it. Resolves when the
   * data is in the device file (not yet durable: call flush).
   * @throws AllocatorFullError when the log has no room (nothing written).
   * @throws AllocatorStateError on bad arguments or after close.
   */
  write(key: number, firstPage: number, data: Buffer, version: number): Promise<void> {
    if (this.closed) return Promise.reject(new AllocatorStateError('allocator is closed'));
    try {
      checkKey(key);
      if (data.length === 0 || data.length % PAGE) throw new AllocatorStateError(`write length ${data.length} is not a positive multiple of 4096`);
      checkPage(firstPage, data.length / PAGE);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ kind: 1, key, firstPage, data, version, resolve, reject });
      this.kick();
    });
  }

  /**
   * Unmaps pages [firstPage, firstPage + count) of `key` (they read as zeros afterwards)
   * as `version`. Resolves when the trim record is in the device file.
   */
  trim(key: number, firstPage: number, count: number, version: number): Promise<void> {
    if (this.closed) return Promise.reject(new AllocatorStateError('allocator is closed'));
    try {
      checkKey(key);
      checkPage(firstPage, count);
    } catch (e) {
      return Promise.reject(e);
    }
    if (count === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.queue.push({ kind: 2, key, firstPage, count, version, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    this.submitted++;
    if (!this.draining) {
      this.draining = true;
      setImmediate(() => void this.drain());
    }
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const ops = this.queue;
      this.queue = [];
      const iov: Buffer[] = [];
      const start = this.head;
      let block = this.head;
      const accepted: Array<{ op: Op; blocks: number[]; crcs: number[] }> = [];
      const rejected: Op[] = [];
      // Pack pages of consecutive writes into shared records (one header per up to
      // MAX_ENTRIES pages), and trims into trim records. Versions, not order, decide
      // between a write and a trim of the same page in one batch.
      let wh: Buffer | null = null;
      let wn = 0;
      let th: Buffer | null = null;
      let tn = 0;
      let headers = 0;
      const order: Buffer[] = []; // headers in log order, sealed (seq, chain, crc) at the end
      for (const op of ops) {
        const pages = op.kind === 1 ? op.data.length / PAGE : 0;
        const room = wh ? MAX_ENTRIES - wn : 0;
        const newHeaders = op.kind === 1 ? Math.ceil(Math.max(0, pages - room) / MAX_ENTRIES) : th && tn < MAX_ENTRIES ? 0 : 1;
        if (block + newHeaders + pages > this.blocks) {
          rejected.push(op);
          continue;
        }
        const blocks: number[] = [];
        const crcs: number[] = [];
        if (op.kind === 1) {
          for (let i = 0; i < pages; i++) {
            if (!wh || wn === MAX_ENTRIES) {
              wh = this.header(REC_WRITE);
              order.push(wh);
              wn = 0;
              iov.push(wh);
              block++;
              headers++;
            }
            const page = op.data.subarray(i * PAGE, (i + 1) * PAGE);
            const crc = crc32c(page);
            const e = HEADER_FIXED + wn++ * ENTRY_SIZE;
            wh.writeUInt16LE(wn, 6);
            wh.writeDoubleLE(op.key, e);
            wh.writeUInt32LE(op.firstPage + i, e + 8);
            wh.writeDoubleLE(op.version, e + 12);
            wh.writeUInt32LE(crc, e + 20);
            iov.push(page);
            blocks.push(block++);
            crcs.push(crc);
          }
        } else {
          if (!th || tn === MAX_ENTRIES) {
            th = this.header(REC_TRIM);
            order.push(th);
            tn = 0;
            iov.push(th);
            block++;
            headers++;
          }
          const e = HEADER_FIXED + tn++ * ENTRY_SIZE;
          th.writeUInt16LE(tn, 6);
          th.writeDoubleLE(op.key, e);
          th.writeUInt32LE(op.firstPage, e + 8);
          th.writeDoubleLE(op.version, e + 12);
          th.writeUInt32LE(op.count, e + 20);
        }
        accepted.push({ op, blocks, crcs });
      }
      for (const h of order) this.sealHeader(h);
      let error: Error | null = null;
      if (iov.length > 0) {
        try {
          await this.writeAll(iov, this.offset + start * PAGE);
        } catch (e) {
          error = e as Error;
        }
      }
      if (error) {
        // The in-memory log position is now uncertain; refuse further work.
        this.closed = true;
        for (const a of accepted) a.op.reject(error);
      } else {
        this.head = block;
        for (const { op, blocks, crcs } of accepted) {
          if (op.kind === 1) {
            blocks.forEach((b, i) => this.applyWrite(op.key, op.firstPage + i, op.version, b, crcs[i]));
            this.hostBytes += op.data.length;
            this.deviceBytes += op.data.length;
          } else {
            this.applyTrim(op.key, op.firstPage, op.count, op.version);
          }
          op.resolve();
        }
        this.deviceBytes += headers * PAGE;
        this.metaBytes += headers * PAGE;
      }
      for (const op of rejected) op.reject(new AllocatorFullError(`partition full: ${this.blocks - this.head} of ${this.blocks} blocks free`));
      this.completed += ops.length;
      this.wake();
    }
    this.draining = false;
  }

  private header(type: number): Buffer {
    const h = Buffer.alloc(PAGE);
    h.writeUInt32LE(RECORD_MAGIC, 0);
    h[4] = type;
    h.writeUInt32LE(this.uuidTag, 20);
    return h;
  }

  /** Fills in sequence and chain crc, then the header crc. Call in log order. */
  private sealHeader(h: Buffer): void {
    h.writeDoubleLE(++this.seq, 8);
    h.writeUInt32LE(this.prevCrc, 16);
    const crc = crc32c(h.subarray(0, PAGE - 4));
    h.writeUInt32LE(crc, PAGE - 4);
    this.prevCrc = crc;
  }

  private async writeAll(iov: Buffer[], position: number): Promise<void> {
    // writev may write partially; loop until every byte is down. IOV_MAX is 1024.
    let i = 0;
    while (i < iov.length) {
      const batch = iov.slice(i, i + 1024);
      const total = batch.reduce((s, b) => s + b.length, 0);
      const { bytesWritten } = await this.fh.writev(batch, position);
      if (bytesWritten !== total) {
        const rest = Buffer.concat(batch).subarray(bytesWritten);
        await this.fh.write(rest, 0, rest.length, position + bytesWritten);
      }
      position += total;
      i += batch.length;
    }
  }

  private wake(): void {
    if (this.waiters.length === 0) return;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) (w.target <= this.completed ? w.resolve() : still.push(w));
    this.waiters = still;
  }

  /**
   * Makes every write and trim submitted before this call durable (fdatasync). Concurrent
   * flushes share device syncs (group commit).
   */
  async flush(): Promise<void> {
    const target = this.submitted;
    if (this.completed < target) await new Promise<void>((resolve) => this.waiters.push({ target, resolve }));
    if (this.nextSync) return this.nextSync.promise;
    const next = {
      promise: this.syncTail.then(() => {
        if (this.nextSync === next) this.nextSync = null;
        return this.fh.datasync();
      }),
    };
    this.nextSync = next;
    this.syncTail = next.promise.catch(() => undefined);
    return next.promise;
  }

  /**
   * Reads `count` pages of `key` from `firstPage`; unmapped pages read as zeros.
   * Returns count × 4096 bytes.
   * @throws ChecksumError when a page's data does not match its crc32c.
   */
  async read(key: number, firstPage: number, count: number): Promise<Buffer> {
    if (this.closed) throw new AllocatorStateError('allocator is closed');
    checkKey(key);
    checkPage(firstPage, count);
    const out = Buffer.alloc(count * PAGE);
    const t = this.tables.get(key);
    if (!t) return out;
    const want: Array<{ i: number; crc: number }> = [];
    const reads: Promise<unknown>[] = [];
    let runStart = -1;
    let runBlock = -1;
    let runLen = 0;
    const flushRun = (): void => {
      if (runLen > 0) reads.push(this.fh.read(out, runStart * PAGE, runLen * PAGE, this.offset + runBlock * PAGE));
      runLen = 0;
    };
    for (let i = 0; i < count; i++) {
      const p = firstPage + i;
      const b = t.block(p);
      if (b < 0) { flushRun(); continue; }
      want.push({ i, crc: t.crcs[p] });
      if (runLen > 0 && b === runBlock + runLen && i === runStart + runLen) runLen++;
      else { flushRun(); runStart = i; runBlock = b; runLen = 1; }
    }
    flushRun();
    await Promise.all(reads);
    for (const { i, crc } of want) {
      if (crc32c(out.subarray(i * PAGE, (i + 1) * PAGE)) !== crc) {
        throw new ChecksumError(`checksum mismatch: key ${key} page ${firstPage + i}`, key, firstPage + i);
      }
    }
    return out;
  }

  /** Highest version recorded for a page (0 when never written). */
  version(key: number, page: number): number {
    const t = this.tables.get(key);
    return t && page < t.versions.length ? t.versions[page] : 0;
  }

  /** Owner keys that have at least one mapped page. */
  keys(): IterableIterator<number> {
    return this.tables.keys();
  }

  /** Current space and traffic figures. */
  stats(): AllocatorStats {
    const capacityBytes = this.blocks * PAGE;
    const usedBytes = this.head * PAGE;
    return {
      capacityBytes,
      usedBytes,
      freeBytes: capacityBytes - usedBytes,
      liveBytes: this.mappedPages * PAGE,
      hostBytesWritten: this.hostBytes,
      deviceBytesWritten: this.deviceBytes,
      metadataBytesWritten: this.metaBytes,
      writeAmplification: this.hostBytes ? this.deviceBytes / this.hostBytes : 1,
    };
  }

  /** Flushes and closes the device file. Later calls fail with AllocatorStateError. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush().catch(() => undefined);
    this.closed = true;
    await this.fh.close();
  }
}
