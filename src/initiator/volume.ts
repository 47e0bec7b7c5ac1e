/**
 * The initiator's volume: a BlockDevice that splits byte ranges into extents, computes
 * each extent's partition set from the map (no directory) and replicates each write
 * itself: it numbers the write with the volume's single-writer version (lease generation ×
 * 2^32 + sequence; no wall clock) and sends it to every acting member at once (one network
 * hop), acknowledging once every acting member has it and never with fewer than the pool's
 * min_size. A member that fails is retried until it answers or the map marks it down; then
 * the write is completed without it and the survivors record that it missed the extent
 * (degraded I/O, log-guided resync). Below min_size, I/O waits up to `ioTimeoutMs` and then
 * fails naming the extent and the missing members. Reads go to the first up member in
 * placement order that is current for the extent (NotCurrent and failures move on to the
 * next). A request refused with StaleEpoch makes the Volume fetch the newer map and retry.
 * This file is the BlockDevice face (ranges, extents, write gate, versions, leases);
 * member-io.ts sends each extent's requests to its members.
 */
import pMap from 'p-map';
import { BlockDeviceError, type BlockDevice } from '../volume/index.ts';
import type { BlockExtent } from '../volume/block-device.ts';
import type { VolumeConfig } from '../config/index.ts';
import { Flag, Op, PAGE_SIZE, type ConnectionPool } from '../wire/index.ts';
import { volumeBlockStatus } from './block-status.ts';
import type { ViewSource } from './cluster-view.ts';
import { MemberIo, type Segment, type VolumeCounters, type VolumeLog } from './member-io.ts';
import { FlushPredictor } from './flush-predictor.ts';
import { WriteGate } from './write-gate.ts';
import { WriteVersions } from './write-versions.ts';
import type { ReadPolicy } from './member-io.ts';
import { PendingReconciles, announceLease, reconcileExtents, type WriterContext } from './writer-change.ts';

/** Extents worked on at once by one large request (trim of a whole volume, etc.). */
const FANOUT = 64;

/** Least time between two watermark-only flushes sent in the background (ms); see settleInBackground. */
const SETTLE_INTERVAL_MS = 200;

/** Default bound on how long I/O waits for enough members (ms): below min_size, or a member that neither answers nor is marked down. */
export const DEFAULT_IO_TIMEOUT_MS = 30000;

/** Counters and log calls of a Volume. */
export type { VolumeCounters, VolumeLog } from './member-io.ts';

/** What a Volume needs from its surroundings. */
export interface VolumeOptions {
  /** Current cluster view, and newer ones on demand. */
  views: ViewSource;
  connections: ConnectionPool;
  record: VolumeConfig;
  /** Write-lease generation of this attachment. */
  lease: number;
  /** Bound on waiting for enough members, ms (default DEFAULT_IO_TIMEOUT_MS). */
  ioTimeoutMs?: number;
  /** Where degraded operation and every EIO are logged (default: nowhere). */
  log?: VolumeLog;
  /** Which member a read asks first (default 'adaptive'; see ReadPolicy). */
  readPolicy?: ReadPolicy;
  /**
   * Grants a new lease generation (the authority's); called when this generation's 2^32
   * write sequence numbers are used up. Without it that write fails with EIO.
   */
  renewLease?: () => Promise<number>;
  /**
   * Called when a node fences this attachment's generation (EFENCED): returns a newer
   * generation to continue under when the fence was not a takeover by another attachment
   * (the authority's catalog fenced it to take a snapshot), or null to stay fenced. The
   * fenced write or flush is then retried under the new generation (it was never
   * acknowledged, so writing it again is safe).
   */
  resumeLease?: (fenced: number) => Promise<number | null>;
}

/** A volume attached through the initiator library. */
export class Volume implements BlockDevice {
  #size: number;
  readonly blockSize = PAGE_SIZE;
  readonly name: string;
  private readonly id: number;
  private readonly pool: number;
  private readonly extentPages: number;
  private readonly gate = new WriteGate();
  /** Nodes holding writes not yet covered by a flush. */
  private readonly dirty = new Set<number>();
  /** Nodes that took FUA writes since they were last sent the settle watermark. */
  private readonly unsettled = new Set<number>();
  /** When a watermark-only flush last went out in the background (performance.now(), ms). */
  private settledAt = 0;
  /** Whether the host writes synchronously (lone writes then go with FUA). */
  private readonly flushes = new FlushPredictor();
  private closed = false;
  /** Counters since attachment. */
  readonly counters: VolumeCounters = { staleEpochReplies: 0, refreshes: 0, degradedWrites: 0, memberRetries: 0, readFailovers: 0, reconciled: 0, writeThrough: 0 };
  /** Write versions under the lease generation every request carries. */
  private readonly versions: WriteVersions;
  private renewing: Promise<void> | null = null;
  private resuming: Promise<boolean> | null = null;
  /** Requests to the members of each extent. */
  private readonly io: MemberIo;
  /** Extents the last writer changes could not reconcile yet (retried in the background). */
  private readonly unreconciled: PendingReconciles;

  constructor(private readonly opts: VolumeOptions) {
    this.#size = opts.record.sizeBytes;
    this.name = opts.record.name;
    this.id = opts.record.id;
    this.pool = opts.record.pool;
    this.extentPages = opts.record.extentBytes / PAGE_SIZE;
    this.versions = new WriteVersions(opts.lease);
    this.io = new MemberIo({
      views: opts.views,
      connections: opts.connections,
      volume: { id: this.id, name: this.name, pool: this.pool },
      lease: () => this.versions.generation,
      ioTimeoutMs: opts.ioTimeoutMs ?? DEFAULT_IO_TIMEOUT_MS,
      log: opts.log,
      readPolicy: opts.readPolicy ?? 'adaptive',
      counters: this.counters,
      dirty: this.dirty,
      unsettled: this.unsettled,
    });
    this.unreconciled = new PendingReconciles(this.writer, () => this.lease, (reconciled, left) => {
      this.counters.reconciled += reconciled;
      // The next flush goes to every node: it makes the pages the reconcile copied durable,
      // and (once none is left) carries the watermark that settles the extents.
      if (reconciled) for (const n of this.opts.views.current.map.nodes) this.dirty.add(n.id);
      if (left.length) this.opts.log?.warn({ volume: this.name, reconciled, extents: left }, 'unsettled extents still not reconciled; retrying');
      else this.opts.log?.info({ volume: this.name, reconciled }, 'unsettled extents reconciled on retry');
    });
  }

  /** Size in bytes (the catalog's; setSize follows an online resize). */
  get size(): number {
    return this.#size;
  }

  /**
   * Follows an online resize of the volume in the catalog: I/O is checked against the new
   * size from now on (bytes; a multiple of 4096).
   * @throws BlockDeviceError EINVAL for a size that is not a positive multiple of 4096.
   */
  setSize(bytes: number): void {
    if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes % PAGE_SIZE !== 0) throw new BlockDeviceError('EINVAL', `volume size ${bytes} is not a positive multiple of ${PAGE_SIZE}`);
    this.#size = bytes;
  }

  /** The write-lease generation this attachment's I/O carries. */
  get leaseGeneration(): number {
    return this.versions.generation;
  }

  private get lease(): number {
    return this.versions.generation;
  }

  /**
   * Switches this attachment to write-lease generation `gen` (granted by the authority) and
   * announces it to every reachable storage node, which from then on fences every older
   * generation of the volume. Then peers: every extent that any node holds writes of an
   * older generation for that were never settled (the previous writer may have crashed
   * mid-write) is reconciled, so every member serves the same bytes; an extent no member
   * could reconcile now is retried in the background until it is (PendingReconciles). Every
   * node is marked dirty, so the next flush also covers writes the previous holder left
   * unflushed.
   * @throws BlockDeviceError EFENCED when a node has already seen a newer generation,
   *         EINVAL when `gen` is older than the current one, EIO when an up node fails.
   */
  async adoptLease(gen: number): Promise<void> {
    if (!Number.isInteger(gen) || gen < this.lease) throw new BlockDeviceError('EINVAL', `lease generation ${gen} is older than ${this.lease}`);
    this.versions.adopt(gen);
    for (const n of this.opts.views.current.map.nodes) this.dirty.add(n.id);
    const suspects = await announceLease(this.writer, gen);
    if (suspects.length === 0) return;
    const t0 = Date.now();
    const r = await reconcileExtents(this.writer, gen, suspects);
    this.counters.reconciled += r.reconciled;
    this.opts.log?.info({ volume: this.name, extents: suspects.length, failures: r.failed.length, ms: Date.now() - t0 }, 'peering after writer change: unsettled extents reconciled');
    if (r.failed.length) {
      this.opts.log?.warn({ volume: this.name, extents: r.failed }, 'some unsettled extents could not be reconciled now; retrying in the background (flushes settle nothing until they are)');
      this.unreconciled.add(r.failed);
    }
  }

  /** Extents a writer change could not reconcile yet (retried in the background; 0 normally). */
  get unreconciledExtents(): number {
    return this.unreconciled.size;
  }

  /** This volume as the writer-change steps see it. */
  private get writer(): WriterContext {
    return {
      connections: this.opts.connections,
      views: this.opts.views,
      volume: this.id,
      name: this.name,
      extentPages: this.extentPages,
      placed: (view, extent) => this.io.placed(view, extent),
      timeoutMs: this.opts.ioTimeoutMs ?? DEFAULT_IO_TIMEOUT_MS,
    };
  }

  private check(offset: number, length: number): void {
    if (this.closed) throw new BlockDeviceError('ESHUTDOWN', `volume ${this.name} is closed`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new BlockDeviceError('EINVAL', `range ${offset}+${length} is outside volume ${this.name} (${this.size} bytes)`);
    }
  }

  /** Splits a page-aligned range into per-extent segments. */
  private segments(offset: number, length: number): Segment[] {
    const out: Segment[] = [];
    let page = offset / PAGE_SIZE;
    const end = (offset + length) / PAGE_SIZE;
    let bufOffset = 0;
    while (page < end) {
      const extent = Math.floor(page / this.extentPages);
      const firstPage = page - extent * this.extentPages;
      const pages = Math.min(this.extentPages - firstPage, end - page);
      out.push({ extent, firstPage, pages, bufOffset });
      bufOffset += pages * PAGE_SIZE;
      page += pages;
    }
    return out;
  }

  /** Takes a new lease generation when this one's sequence numbers are used up. */
  private async renew(): Promise<void> {
    while (this.versions.exhausted) {
      if (!this.opts.renewLease) throw new BlockDeviceError('EIO', `volume ${this.name}: write sequence of lease generation ${this.lease} is exhausted (reattach)`);
      this.renewing ??= this.opts.renewLease().then((g) => this.adoptLease(g)).finally(() => (this.renewing = null));
      await this.renewing;
    }
  }

  private writeSegment(op: number, flags: number, s: Segment, payload?: Buffer): Promise<void> {
    return this.resumable(() => this.writeSegmentOnce(op, flags, s, payload));
  }

  private async writeSegmentOnce(op: number, flags: number, s: Segment, payload?: Buffer): Promise<void> {
    if (this.versions.exhausted) await this.renew();
    const version = this.versions.issue();
    this.io.enter();
    try {
      await this.io.replicate(op, flags, s, version, payload);
      this.versions.complete(version);
    } catch (e) {
      this.versions.fail(version);
      throw e;
    } finally {
      this.io.leave();
    }
  }

  /**
   * Runs `op`; when a node fenced this attachment's generation (EFENCED) and resumeLease
   * grants a newer one, runs it again under that (at most 3 times). The I/O was never
   * acknowledged, so running it again is safe.
   */
  private async resumable<T>(op: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const gen = this.lease;
      try {
        return await op();
      } catch (e) {
        if (attempt < 3 && isFenced(e) && (await this.resume(gen))) continue;
        throw e;
      }
    }
  }


  /**
   * After EFENCED under generation `gen`: asks resumeLease for a newer generation and adopts
   * it (one request for all the writes that were fenced at once). Resolves true when I/O may
   * be retried under a newer generation.
   */
  private async resume(gen: number): Promise<boolean> {
    if (!this.opts.resumeLease || this.closed) return false;
    if (this.lease > gen) return true;
    this.resuming ??= (async () => {
      try {
        const next = await this.opts.resumeLease!(this.lease);
        if (next === null) return false;
        await this.adoptLease(next);
        this.opts.log?.info({ volume: this.name, from: gen, generation: next }, 'write lease resumed after a snapshot fenced it');
        return true;
      } catch (e) {
        this.opts.log?.warn({ volume: this.name, err: (e as Error).message }, 'write lease could not be resumed');
        return false;
      }
    })().finally(() => (this.resuming = null));
    return this.resuming;
  }

  /** Not async: a one-extent read (most) returns the member read's own promise, no extra hop. */
  private readAligned(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    const segs = this.segments(offset, length);
    if (segs.length === 1) return this.io.read(segs[0], into);
    // Each extent's pages land in their place in `out`, straight from the socket.
    const out = into ?? Buffer.allocUnsafe(length);
    return pMap(segs, (s) => this.io.read(s, out.subarray(s.bufOffset, s.bufOffset + s.pages * PAGE_SIZE)), { concurrency: FANOUT }).then(() => out);
  }

  /**
   * Reads `length` bytes at byte `offset`. Never-written ranges read as zeros.
   * @throws BlockDeviceError EINVAL outside the volume, EIO when no member can serve
   *         within ioTimeoutMs (below min_size, or every member failing).
   */
  async read(offset: number, length: number): Promise<Buffer> {
    this.check(offset, length);
    if (length === 0) return Buffer.alloc(0);
    const start = offset - (offset % PAGE_SIZE);
    const end = Math.ceil((offset + length) / PAGE_SIZE) * PAGE_SIZE;
    const data = await this.resumable(() => this.readAligned(start, end - start));
    return start === offset && end - start === length ? data : data.subarray(offset - start, offset - start + length);
  }

  /**
   * Reads `into.length` bytes at byte `offset` into `into`; page-aligned ranges are placed
   * there straight from the members' replies (BlockDevice.readInto).
   * @throws BlockDeviceError as read().
   */
  async readInto(offset: number, into: Buffer): Promise<void> {
    const length = into.length;
    if (offset % PAGE_SIZE !== 0 || length % PAGE_SIZE !== 0) {
      (await this.read(offset, length)).copy(into);
      return;
    }
    this.check(offset, length);
    if (length === 0) return;
    await this.resumable(() => this.readAligned(offset, length, into));
  }

  /** The flags of a write or trim about to start: FUA when asked, or when the host writes synchronously (flush-predictor.ts). */
  private writeFlags(fua: boolean): number {
    if (this.flushes.write(this.io.inflight) && !fua) {
      this.counters.writeThrough++;
      return Flag.Fua;
    }
    return fua ? Flag.Fua : 0;
  }

  /** Not async, as readAligned. A lone write of a synchronous writer goes with FUA (flush-predictor.ts). */
  private writeAligned(offset: number, data: Buffer, fua: boolean): Promise<void> {
    const flags = this.writeFlags(fua);
    const segs = this.segments(offset, data.length);
    if (segs.length === 1) return this.writeSegment(Op.Write, flags, segs[0], data);
    return pMap(segs, (s) => this.writeSegment(Op.Write, flags, s, data.subarray(s.bufOffset, s.bufOffset + s.pages * PAGE_SIZE)), { concurrency: FANOUT }).then(() => undefined);
  }

  /**
   * Writes `data` at byte `offset`, on every acting member of each extent before resolving.
   * Sub-page writes are read-modify-write under the volume's exclusive write gate.
   * @throws BlockDeviceError EINVAL outside the volume, ENOSPC, EFENCED, EIO (below
   *         min_size for ioTimeoutMs, or a member neither answering nor marked down).
   */
  async write(offset: number, data: Buffer, fua = false): Promise<void> {
    this.check(offset, data.length);
    if (data.length === 0) return;
    if (offset % PAGE_SIZE === 0 && data.length % PAGE_SIZE === 0) {
      const wait = this.gate.enterShared();
      if (wait) await wait;
      try {
        await this.writeAligned(offset, data, fua);
      } finally {
        this.gate.leaveShared();
      }
      return;
    }
    await this.gate.enterExclusive();
    try {
      const start = offset - (offset % PAGE_SIZE);
      const end = Math.ceil((offset + data.length) / PAGE_SIZE) * PAGE_SIZE;
      const buf = Buffer.alloc(end - start);
      // Only the first and last pages can be partial; read just those.
      const head = await this.readAligned(start, PAGE_SIZE);
      head.copy(buf, 0);
      if (end - start > PAGE_SIZE && (offset + data.length) % PAGE_SIZE !== 0) {
        (await this.readAligned(end - PAGE_SIZE, PAGE_SIZE)).copy(buf, end - start - PAGE_SIZE);
      }
      data.copy(buf, offset - start);
      await this.writeAligned(start, buf, fua);
    } finally {
      this.gate.leaveExclusive();
    }
  }

  /**
   * Deallocates [offset, offset+length): it reads as zeros afterwards (the BlockDevice
   * contract). Whole pages are trimmed; the bytes of partial pages at either end are
   * written with zeros (the same as writeZeroes).
   */
  async trim(offset: number, length: number, fua = false): Promise<void> {
    this.check(offset, length);
    if (length === 0) return;
    if (offset % PAGE_SIZE !== 0 || length % PAGE_SIZE !== 0) return this.writeZeroes(offset, length, fua);
    await this.trimPages(offset, length, fua);
  }

  /** Trims the whole pages of [offset, offset+length) (page-aligned). */
  private async trimPages(offset: number, length: number, fua: boolean): Promise<void> {
    const start = offset;
    const end = offset + length;
    if (end <= start) return;
    const wait = this.gate.enterShared();
    if (wait) await wait;
    try {
      const flags = this.writeFlags(fua);
      await pMap(this.segments(start, end - start), (s) => this.writeSegment(Op.Trim, flags, s), { concurrency: FANOUT });
    } finally {
      this.gate.leaveShared();
    }
  }

  /**
   * Sets [offset, offset+length) to zeros: whole pages are deallocated (thin volumes read
   * them as zeros), partial pages at the ends are written with zeros.
   */
  async writeZeroes(offset: number, length: number, fua = false): Promise<void> {
    this.check(offset, length);
    if (length === 0) return;
    const start = Math.ceil(offset / PAGE_SIZE) * PAGE_SIZE;
    const end = Math.floor((offset + length) / PAGE_SIZE) * PAGE_SIZE;
    if (end <= start) {
      await this.write(offset, Buffer.alloc(length), fua);
      return;
    }
    if (start > offset) await this.write(offset, Buffer.alloc(start - offset), fua);
    await this.trimPages(start, end - start, fua);
    if (offset + length > end) await this.write(end, Buffer.alloc(offset + length - end), fua);
  }

  /**
   * Allocation state of [offset, offset+length) (bytes) from the members' page maps: pages
   * with data, and holes (never written or trimmed; they read as zeros). See block-status.ts.
   * @throws BlockDeviceError EINVAL outside the volume, ESHUTDOWN once closed.
   */
  async blockStatus(offset: number, length: number): Promise<BlockExtent[]> {
    this.check(offset, length);
    return volumeBlockStatus({
      views: this.opts.views,
      connections: this.opts.connections,
      volume: this.id,
      extentPages: this.extentPages,
      lease: () => this.lease,
      placed: (view, extent) => this.io.placed(view, extent),
    }, offset, length);
  }

  /**
   * Makes every write completed before this call durable on every acting member: sends
   * Flush (with the settle watermark) to each node written since the last flush, in
   * parallel. A node that fails is retried until it answers or the map marks it down (it
   * is then no longer acting; what it missed is resynced when it returns). Writes that went
   * with FUA (asked for, or write-through: flush-predictor.ts) are durable already: when
   * only those came since the last flush, it completes without a request, and the nodes
   * get the watermark in the background (settleInBackground).
   * @throws BlockDeviceError EIO when a node neither flushes nor is marked down within
   *         ioTimeoutMs (it stays marked dirty); EFENCED when a newer writer took over.
   */
  async flush(): Promise<void> {
    this.flushes.flush();
    return this.resumable(() => this.flushOnce());
  }

  private async flushOnce(): Promise<void> {
    if (this.closed) throw new BlockDeviceError('ESHUTDOWN', `volume ${this.name} is closed`);
    // No settle watermark while a writer change's extents wait for reconcile (PendingReconciles).
    const watermark = this.unreconciled.size ? 0 : this.versions.watermark();
    if (this.dirty.size === 0) {
      // Every write completed since the last flush was FUA: nothing to make durable.
      this.settleInBackground(watermark);
      return;
    }
    for (const n of this.unsettled) this.dirty.add(n);
    this.unsettled.clear();
    const nodes = [...this.dirty];
    this.dirty.clear();
    this.io.enter();
    try {
      const results = await Promise.allSettled(nodes.map((n) => this.io.flushNode(n, watermark)));
      const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [{ node: nodes[i], reason: r.reason as Error }] : []));
      if (failed.length > 0) {
        for (const f of failed) this.dirty.add(f.node);
        const e = failed[0].reason instanceof BlockDeviceError ? failed[0].reason : new BlockDeviceError('EIO', `flush failed on node ${failed[0].node}: ${failed[0].reason.message}`);
        this.opts.log?.error({ volume: this.name, nodes: failed.map((f) => f.node), err: e.message }, 'flush failed');
        throw e;
      }
    } finally {
      this.io.leave();
    }
  }

  /**
   * Sends the settle watermark to the nodes that took FUA writes since they last had one,
   * without waiting, at most every SETTLE_INTERVAL_MS: a synchronous writer's flushes never
   * reach the nodes, and without a watermark their unsettled extents would only grow (a
   * writer change would have to reconcile all of them). A failure is only logged: the
   * watermark is advisory, the next one covers it.
   */
  private settleInBackground(watermark: number): void {
    const now = performance.now();
    if (this.unsettled.size === 0 || watermark === 0 || now - this.settledAt < SETTLE_INTERVAL_MS) return;
    this.settledAt = now;
    const nodes = [...this.unsettled];
    this.unsettled.clear();
    for (const n of nodes) {
      this.io.flushNode(n, watermark, true).catch((e: Error) => {
        if (this.closed) return;
        this.unsettled.add(n);
        this.opts.log?.warn({ volume: this.name, node: n, err: e.message }, 'settle watermark not delivered; the next flush carries it');
      });
    }
  }

  /** Marks the volume closed; later calls fail with ESHUTDOWN. Connections belong to the pool. */
  close(): void {
    this.closed = true;
    this.unreconciled.stop();
    this.io.close();
  }
}

function isFenced(e: unknown): boolean {
  return e instanceof BlockDeviceError && e.code === 'EFENCED';
}
