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
 */
import pMap from 'p-map';
import { BlockDeviceError, type BlockDevice } from '../volume/index.ts';
import type { VolumeConfig } from '../config/index.ts';
import {
  ConnectionError, Flag, Op, PAGE_SIZE, Status, statusName, type ConnectionPool, type Reply,
} from '../wire/index.ts';
import { PlacementError, type ClusterView, type ViewSource } from './cluster-view.ts';
import { READ_FATAL, STALE_RETRIES, WRITE_FATAL, belowMinSize, errorFor } from './io-status.ts';
import { WriteGate } from './write-gate.ts';
import { WriteVersions } from './write-versions.ts';
import { announceLease, reconcileExtents, type WriterContext } from './writer-change.ts';

/** A contiguous run of pages inside one extent. */
interface Segment {
  extent: number;
  firstPage: number;
  pages: number;
  /** Byte offset of this segment within the request's buffer. */
  bufOffset: number;
}

/** Extents worked on at once by one large request (trim of a whole volume, etc.). */
const FANOUT = 64;

/** Default bound on how long I/O waits for enough members (ms): below min_size, or a member that neither answers nor is marked down. */
export const DEFAULT_IO_TIMEOUT_MS = 30000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Counters of a Volume (for tests and diagnostics). */
export interface VolumeCounters {
  /** StaleEpoch replies received (each followed by a map refresh and a retry). */
  staleEpochReplies: number;
  /** Map refreshes that produced a newer epoch. */
  refreshes: number;
  /** Writes acknowledged with fewer acting members than the pool's size (degraded). */
  degradedWrites: number;
  /** Member requests retried after a failure (connection, Io, ShuttingDown). */
  memberRetries: number;
  /** Reads served by a member other than the first up one (NotCurrent, failure, bad checksum). */
  readFailovers: number;
  /** Extents reconciled after a writer change (peering on adoptLease). */
  reconciled: number;
}

/** Log calls of a Volume (a pino logger fits). */
export interface VolumeLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

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
  /**
   * Grants a new lease generation (the authority's); called when this generation's 2^32
   * write sequence numbers are used up. Without it that write fails with EIO.
   */
  renewLease?: () => Promise<number>;
}

/** Outcome of one member request. */
type MemberResult = { ok: true } | { ok: false; stale?: number; fatal?: number; why: string };

/** A volume attached through the initiator library. */
export class Volume implements BlockDevice {
  readonly size: number;
  readonly blockSize = PAGE_SIZE;
  readonly name: string;
  private readonly id: number;
  private readonly pool: number;
  private readonly extentPages: number;
  private readonly gate = new WriteGate();
  /** Nodes holding writes not yet covered by a flush. */
  private readonly dirty = new Set<number>();
  private closed = false;
  /** Counters since attachment. */
  readonly counters: VolumeCounters = { staleEpochReplies: 0, refreshes: 0, degradedWrites: 0, memberRetries: 0, readFailovers: 0, reconciled: 0 };
  /** Write versions under the lease generation every request carries. */
  private readonly versions: WriteVersions;
  private readonly ioTimeoutMs: number;
  private renewing: Promise<void> | null = null;
  /** Requests in flight, and the ticker that watches the map while there are any. */
  private busy = 0;
  private ticker: NodeJS.Timeout | null = null;
  private tickEpoch = 0;

  constructor(private readonly opts: VolumeOptions) {
    this.size = opts.record.sizeBytes;
    this.name = opts.record.name;
    this.id = opts.record.id;
    this.pool = opts.record.pool;
    this.extentPages = opts.record.extentBytes / PAGE_SIZE;
    this.versions = new WriteVersions(opts.lease);
    this.ioTimeoutMs = opts.ioTimeoutMs ?? DEFAULT_IO_TIMEOUT_MS;
  }

  /** The write-lease generation this attachment's I/O carries. */
  get leaseGeneration(): number {
    return this.versions.generation;
  }

  private get lease(): number {
    return this.versions.generation;
  }

  /**
   * Watches the map while requests are in flight: when a node is marked down, connections
   * to it are dropped so requests stuck on a stopped node fail now, not at their timeout.
   */
  private enter(): void {
    if (this.busy++ === 0 && !this.ticker) {
      this.tickEpoch = this.opts.views.current.epoch;
      this.ticker = setInterval(() => this.tick(), 100);
    }
  }

  private leave(): void {
    this.busy--;
  }

  private tick(): void {
    if (this.busy === 0 || this.closed) {
      clearInterval(this.ticker!);
      this.ticker = null;
      return;
    }
    const view = this.opts.views.current;
    if (view.epoch === this.tickEpoch) return;
    this.tickEpoch = view.epoch;
    for (const n of view.map.nodes) if (!n.up) this.opts.connections.drop(n.id);
  }

  /**
   * Switches this attachment to write-lease generation `gen` (granted by the authority) and
   * announces it to every reachable storage node, which from then on fences every older
   * generation of the volume. Then peers: every extent that any node holds writes of an
   * older generation for that were never settled (the previous writer may have crashed
   * mid-write) is reconciled, so every member serves the same bytes. Every node is marked
   * dirty, so the next flush also covers writes the previous holder left unflushed.
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
    this.opts.log?.info({ volume: this.name, extents: suspects.length, failures: r.failures, ms: Date.now() - t0 }, 'peering after writer change: unsettled extents reconciled');
    if (r.failures) this.opts.log?.warn({ volume: this.name, failures: r.failures }, 'some unsettled extents could not be reconciled now (their members may differ until the next writer change)');
  }

  /** This volume as the writer-change steps see it. */
  private get writer(): WriterContext {
    return {
      connections: this.opts.connections,
      views: this.opts.views,
      volume: this.id,
      name: this.name,
      extentPages: this.extentPages,
      placed: (view, extent) => this.placed(view, extent),
      absentMask: (view, placed) => this.absentMask(view, placed),
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

  /**
   * After a StaleEpoch reply naming `epoch`: fetches a newer map. Returns the new view.
   * @throws BlockDeviceError ESTALE when no newer map could be obtained.
   */
  private async stale(view: ClusterView, epoch: number, what: string): Promise<ClusterView> {
    this.counters.staleEpochReplies++;
    const next = await this.opts.views.refresh(Math.max(epoch, view.epoch + 1));
    if (next.epoch <= view.epoch) throw new BlockDeviceError('ESTALE', `${what}: map epoch ${view.epoch} is stale (a node holds ${epoch}) and no newer map could be fetched`);
    this.counters.refreshes++;
    return next;
  }

  /** The extent's up set in placement order ([] when fewer than min_size can be placed). */
  private placed(view: ClusterView, extent: number): number[] {
    try {
      return view.members(this.id, extent, this.pool);
    } catch (e) {
      if (e instanceof PlacementError) return [];
      throw e;
    }
  }

  /** Bit i set when placed[i]'s node is down in `view`. */
  private absentMask(view: ClusterView, placed: number[]): number {
    let mask = 0;
    for (let i = 0; i < placed.length; i++) if (!view.isUp(view.nodeOf(placed[i]))) mask |= 1 << i;
    return mask;
  }

  /** Error for an extent with fewer than min_size up members, naming the missing ones. */
  private inactive(view: ClusterView, extent: number, placed: number[], what: string): BlockDeviceError {
    const e = belowMinSize(view, { id: this.id, name: this.name, pool: this.pool }, extent, placed, what, this.ioTimeoutMs);
    this.opts.log?.error({ volume: this.name, extent, err: e.message }, 'I/O failed: extent below min_size');
    return e;
  }

  private async sendTo(view: ClusterView, member: number, op: number, flags: number, s: Segment, members: number[], absent: number, version: number, payload?: Buffer): Promise<Reply> {
    const client = await this.opts.connections.get(view.nodeOf(member));
    return client.request(
      { op, flags, epoch: view.epoch, volume: this.id, extent: s.extent, partition: member, firstPage: s.firstPage, pages: s.pages, lease: this.lease, version, members, absent },
      payload,
    );
  }

  private async writeMember(view: ClusterView, m: number, op: number, flags: number, s: Segment, members: number[], absent: number, version: number, payload?: Buffer): Promise<MemberResult> {
    try {
      const r = await this.sendTo(view, m, op, flags, s, members, absent, version, payload);
      if (r.h.status === Status.Ok) return { ok: true };
      if (r.h.status === Status.StaleEpoch) return { ok: false, stale: r.h.aux, why: `partition ${m}: StaleEpoch` };
      if (WRITE_FATAL.has(r.h.status)) return { ok: false, fatal: r.h.status, why: `partition ${m}: ${statusName(r.h.status)}` };
      return { ok: false, why: `partition ${m} (node ${view.nodeOf(m)}): ${statusName(r.h.status)}` };
    } catch (e) {
      if (!(e instanceof ConnectionError)) throw e;
      return { ok: false, why: `partition ${m} (node ${view.nodeOf(m)}): ${e.message}` };
    }
  }

  /** Takes a new lease generation when this one's sequence numbers are used up. */
  private async renew(): Promise<void> {
    while (this.versions.exhausted) {
      if (!this.opts.renewLease) throw new BlockDeviceError('EIO', `volume ${this.name}: write sequence of lease generation ${this.lease} is exhausted (reattach)`);
      this.renewing ??= this.opts.renewLease().then((g) => this.adoptLease(g)).finally(() => (this.renewing = null));
      await this.renewing;
    }
  }

  private async writeSegment(op: number, flags: number, s: Segment, payload?: Buffer): Promise<void> {
    if (this.versions.exhausted) await this.renew();
    const version = this.versions.issue();
    this.enter();
    try {
      await this.replicate(op, flags, s, version, payload);
      this.versions.complete(version);
    } catch (e) {
      this.versions.fail(version);
      throw e;
    } finally {
      this.leave();
    }
  }

  /**
   * Sends one write (or trim) of version `version` to every acting member and returns once
   * each has it. Members that fail are retried until they answer or the map marks them
   * down; members that had it before another member dropped out get it again with the new
   * absent set, so they record what the absent one missed.
   */
  private async replicate(op: number, flags: number, s: Segment, version: number, payload?: Buffer): Promise<void> {
    // Fast path: every placed member up and every one answers Ok.
    const view0 = this.opts.views.current;
    const placed0 = this.placed(view0, s.extent);
    let acked: Map<number, number[]> | null = null;
    if (placed0.length > 0 && placed0.length >= view0.pool(this.pool).replicas && this.allUp(view0, placed0)) {
      for (const m of placed0) this.dirty.add(view0.nodeOf(m));
      const first = await Promise.all(placed0.map((m) => this.writeMember(view0, m, op, flags, s, placed0, 0, version, payload)));
      if (first.every((r) => r.ok)) return;
      acked = new Map();
      for (let i = 0; i < first.length; i++) if (first[i].ok) acked.set(placed0[i], []);
    }
    return this.replicateSlow(op, flags, s, version, acked ?? new Map(), payload);
  }

  private allUp(view: ClusterView, placed: number[]): boolean {
    for (const m of placed) if (!view.isUp(view.nodeOf(m))) return false;
    return true;
  }

  /** The retrying, degrading part of replicate(); `acked`: members that already have the version. */
  private async replicateSlow(op: number, flags: number, s: Segment, version: number, acked: Map<number, number[]>, payload?: Buffer): Promise<void> {
    const what = `${op === Op.Write ? 'write' : 'trim'} of extent ${s.extent}`;
    let view = this.opts.views.current;
    const deadline = Date.now() + this.ioTimeoutMs;
    let staleRetries = 0;
    let last = '';
    for (;;) {
      const placed = this.placed(view, s.extent);
      const pool = view.pool(this.pool);
      const up = placed.filter((m) => view.isUp(view.nodeOf(m)));
      if (up.length < pool.minSize || up.length === 0) {
        if (Date.now() > deadline) throw this.inactive(view, s.extent, placed, what);
        await sleep(100);
        view = this.opts.views.current;
        continue;
      }
      const absentLeaves = placed.filter((m) => !view.isUp(view.nodeOf(m)));
      const mask = absentLeaves.length ? this.absentMask(view, placed) : 0;
      const targets = up.filter((m) => {
        const told = acked.get(m);
        return !told || absentLeaves.some((x) => !told.includes(x));
      });
      if (targets.length === 0) {
        if (up.length < pool.replicas) this.counters.degradedWrites++;
        return;
      }
      for (const m of targets) this.dirty.add(view.nodeOf(m));
      const results = await Promise.all(targets.map((m) => this.writeMember(view, m, op, flags, s, placed, mask, version, payload)));
      let staleAt = 0;
      let retry = false;
      for (let i = 0; i < results.length; i++) {
        const r = results[i];
        if (r.ok) {
          acked.set(targets[i], absentLeaves);
          continue;
        }
        if (r.fatal !== undefined) {
          const e = errorFor(r.fatal, `${what} of volume ${this.name} on ${r.why}`);
          this.opts.log?.error({ volume: this.name, extent: s.extent, err: e.message }, 'write failed');
          throw e;
        }
        if (r.stale !== undefined) staleAt = Math.max(staleAt, r.stale);
        else retry = true;
        last = r.why;
      }
      if (staleAt) {
        if (++staleRetries > STALE_RETRIES) throw errorFor(Status.StaleEpoch, what);
        view = await this.stale(view, staleAt, what);
        continue;
      }
      if (retry) {
        this.counters.memberRetries++;
        if (Date.now() > deadline) {
          const e = new BlockDeviceError('EIO', `${what} of volume ${this.name}: a member neither answered nor was marked down within ${this.ioTimeoutMs} ms (last: ${last})`);
          this.opts.log?.error({ volume: this.name, extent: s.extent, err: e.message }, 'write failed');
          throw e;
        }
        await sleep(50);
      }
      // Another pass at the newest view: it returns at once when every up member has it.
      view = this.opts.views.current;
    }
  }

  private async readSegment(s: Segment): Promise<Buffer> {
    let view = this.opts.views.current;
    const deadline = Date.now() + this.ioTimeoutMs;
    let staleRetries = 0;
    let last = '';
    this.enter();
    try {
      for (;;) {
        const placed = this.placed(view, s.extent);
        const pool = view.pool(this.pool);
        const up = placed.filter((m) => view.isUp(view.nodeOf(m)));
        if (up.length < pool.minSize || up.length === 0) {
          if (Date.now() > deadline) throw this.inactive(view, s.extent, placed, `read of extent ${s.extent}`);
          await sleep(100);
          view = this.opts.views.current;
          continue;
        }
        const mask = up.length === placed.length ? 0 : this.absentMask(view, placed);
        let staleAt = 0;
        for (let i = 0; i < up.length; i++) {
          const m = up[i];
          try {
            const r = await this.sendTo(view, m, Op.Read, 0, s, placed, mask, 0);
            if (r.h.status === Status.Ok) {
              if (i > 0) this.counters.readFailovers++;
              return r.payload;
            }
            if (r.h.status === Status.StaleEpoch) {
              staleAt = r.h.aux;
              break;
            }
            if (READ_FATAL.has(r.h.status)) throw errorFor(r.h.status, `read of extent ${s.extent} on partition ${m}`);
            last = `partition ${m} (node ${view.nodeOf(m)}): ${statusName(r.h.status)}`;
          } catch (e) {
            if (!(e instanceof ConnectionError)) throw e;
            last = `partition ${m} (node ${view.nodeOf(m)}): ${e.message}`;
          }
        }
        if (staleAt) {
          if (++staleRetries > STALE_RETRIES) throw errorFor(Status.StaleEpoch, `read of extent ${s.extent}`);
          view = await this.stale(view, staleAt, `read of extent ${s.extent}`);
          continue;
        }
        if (Date.now() > deadline) {
          const e = new BlockDeviceError('EIO', `read of extent ${s.extent} of volume ${this.name} failed on every up member for ${this.ioTimeoutMs} ms (last: ${last})`);
          this.opts.log?.error({ volume: this.name, extent: s.extent, err: e.message }, 'read failed');
          throw e;
        }
        await sleep(50);
        view = this.opts.views.current;
      }
    } finally {
      this.leave();
    }
  }

  private async readAligned(offset: number, length: number): Promise<Buffer> {
    const segs = this.segments(offset, length);
    if (segs.length === 1) return this.readSegment(segs[0]);
    const out = Buffer.allocUnsafe(length);
    await pMap(segs, async (s) => {
      (await this.readSegment(s)).copy(out, s.bufOffset);
    }, { concurrency: FANOUT });
    return out;
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
    const data = await this.readAligned(start, end - start);
    return start === offset && end - start === length ? data : data.subarray(offset - start, offset - start + length);
  }

  private async writeAligned(offset: number, data: Buffer, fua: boolean): Promise<void> {
    const flags = fua ? Flag.Fua : 0;
    const segs = this.segments(offset, data.length);
    if (segs.length === 1) return this.writeSegment(Op.Write, flags, segs[0], data);
    await pMap(segs, (s) => this.writeSegment(Op.Write, flags, s, data.subarray(s.bufOffset, s.bufOffset + s.pages * PAGE_SIZE)), { concurrency: FANOUT });
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
   * Deallocates the whole pages inside [offset, offset+length); they read as zeros
   * afterwards. Partial pages at either end are left as they are (trim is advisory).
   */
  async trim(offset: number, length: number, fua = false): Promise<void> {
    this.check(offset, length);
    const start = Math.ceil(offset / PAGE_SIZE) * PAGE_SIZE;
    const end = Math.floor((offset + length) / PAGE_SIZE) * PAGE_SIZE;
    if (end <= start) return;
    const wait = this.gate.enterShared();
    if (wait) await wait;
    try {
      const flags = fua ? Flag.Fua : 0;
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
    await this.trim(start, end - start, fua);
    if (offset + length > end) await this.write(end, Buffer.alloc(offset + length - end), fua);
  }

  /**
   * Makes every write completed before this call durable on every acting member: sends
   * Flush (with the settle watermark) to each node written since the last flush, in
   * parallel. A node that fails is retried until it answers or the map marks it down (it
   * is then no longer acting; what it missed is resynced when it returns).
   * @throws BlockDeviceError EIO when a node neither flushes nor is marked down within
   *         ioTimeoutMs (it stays marked dirty); EFENCED when a newer writer took over.
   */
  async flush(): Promise<void> {
    if (this.closed) throw new BlockDeviceError('ESHUTDOWN', `volume ${this.name} is closed`);
    const nodes = [...this.dirty];
    this.dirty.clear();
    const watermark = this.versions.watermark();
    const deadline = Date.now() + this.ioTimeoutMs;
    this.enter();
    try {
      const results = await Promise.allSettled(nodes.map(async (n) => {
        for (;;) {
          const view = this.opts.views.current;
          let why: string;
          try {
            const c = await this.opts.connections.get(n);
            const r = await c.request({ op: Op.Flush, flags: 0, epoch: view.epoch, volume: this.id, extent: 0, partition: 0, firstPage: 0, pages: 0, lease: this.lease, version: watermark, members: [] });
            if (r.h.status === Status.Ok) return;
            if (r.h.status === Status.Fenced) throw errorFor(r.h.status, `flush on node ${n}`);
            if (r.h.status === Status.StaleEpoch) {
              await this.opts.views.refresh(r.h.aux);
              continue;
            }
            why = statusName(r.h.status);
          } catch (e) {
            if (!(e instanceof ConnectionError)) throw e;
            why = e.message;
          }
          if (!this.opts.views.current.isUp(n)) return; // not acting any more
          if (Date.now() > deadline) throw new BlockDeviceError('EIO', `flush on node ${n}: ${why}`);
          await sleep(50);
        }
      }));
      const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [{ node: nodes[i], reason: r.reason as Error }] : []));
      if (failed.length > 0) {
        for (const f of failed) this.dirty.add(f.node);
        const e = failed[0].reason instanceof BlockDeviceError ? failed[0].reason : new BlockDeviceError('EIO', `flush failed on node ${failed[0].node}: ${failed[0].reason.message}`);
        this.opts.log?.error({ volume: this.name, nodes: failed.map((f) => f.node), err: e.message }, 'flush failed');
        throw e;
      }
    } finally {
      this.leave();
    }
  }

  /** Marks the volume closed; later calls fail with ESHUTDOWN. Connections belong to the pool. */
  close(): void {
    this.closed = true;
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
  }
}
