/**
 * The initiator's volume: a BlockDevice that splits byte ranges into extents, computes
 * each extent's partition set from the map (no directory), and sends the request to the
 * extent's primary, which replicates it (DESIGN "Data path"). Reads go to the primary and
 * fall back to the other members when it is unreachable or returns a bad checksum; members
 * the map marks down are tried last. A request refused with StaleEpoch makes the Volume
 * fetch the newer map (ViewSource.refresh) and retry it with the new placement: the caller
 * never sees the stale epoch unless no newer map can be had.
 */
import pMap from 'p-map';
import { BlockDeviceError, type BlockDevice, type BlockErrorCode } from '../volume/index.ts';
import type { VolumeConfig } from '../config/index.ts';
import { ConnectionError, Flag, Op, PAGE_SIZE, Status, statusName, type ConnectionPool, type Reply } from '../wire/index.ts';
import type { ClusterView, ViewSource } from './cluster-view.ts';
import { WriteGate } from './write-gate.ts';

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

function errorFor(status: number, what: string): BlockDeviceError {
  const code: BlockErrorCode =
    status === Status.NoSpace ? 'ENOSPC'
    : status === Status.Fenced ? 'EFENCED'
    : status === Status.StaleEpoch ? 'ESTALE'
    : status === Status.Invalid ? 'EINVAL'
    : status === Status.BadChecksum ? 'EBADCRC'
    : status === Status.ShuttingDown ? 'ESHUTDOWN'
    : 'EIO';
  return new BlockDeviceError(code, `${what}: ${statusName(status)}`);
}

/** Statuses after which another member may still serve a read. */
const READ_RETRYABLE = new Set<number>([Status.Io, Status.BadChecksum, Status.NoPartition, Status.ShuttingDown]);

/** How often one request is retried after StaleEpoch replies before the error reaches the caller. */
const STALE_RETRIES = 5;

/** Counters of a Volume (for tests and diagnostics). */
export interface VolumeCounters {
  /** StaleEpoch replies received (each followed by a map refresh and a retry). */
  staleEpochReplies: number;
  /** Map refreshes that produced a newer epoch. */
  refreshes: number;
}

/** What a Volume needs from its surroundings. */
export interface VolumeOptions {
  /** Current cluster view, and newer ones on demand. */
  views: ViewSource;
  connections: ConnectionPool;
  record: VolumeConfig;
  /** Write-lease generation of this attachment. */
  lease: number;
}

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
  readonly counters: VolumeCounters = { staleEpochReplies: 0, refreshes: 0 };
  /** Write-lease generation carried by every request. */
  private lease: number;

  constructor(private readonly opts: VolumeOptions) {
    this.size = opts.record.sizeBytes;
    this.name = opts.record.name;
    this.id = opts.record.id;
    this.pool = opts.record.pool;
    this.extentPages = opts.record.extentBytes / PAGE_SIZE;
    this.lease = opts.lease;
  }

  /** The write-lease generation this attachment's I/O carries. */
  get leaseGeneration(): number {
    return this.lease;
  }

  /**
   * Switches this attachment to write-lease generation `gen` (granted by the authority) and
   * announces it to every reachable storage node, which from then on fences every older
   * generation of the volume. Every node is then marked dirty, so the next flush also covers
   * writes the previous holder left unflushed anywhere.
   * @throws BlockDeviceError EFENCED when a node has already seen a newer generation,
   *         EINVAL when `gen` is older than the current one, EIO when an up node fails.
   */
  async adoptLease(gen: number): Promise<void> {
    if (!Number.isInteger(gen) || gen < this.lease) throw new BlockDeviceError('EINVAL', `lease generation ${gen} is older than ${this.lease}`);
    this.lease = gen;
    const view = this.opts.views.current;
    const nodes = view.map.nodes.map((n) => n.id);
    for (const n of nodes) this.dirty.add(n);
    const results = await Promise.allSettled(nodes.map(async (n) => {
      let r: Reply;
      try {
        const c = await this.opts.connections.get(n);
        r = await c.request({ op: Op.Lease, flags: 0, epoch: view.epoch, volume: this.id, extent: 0, partition: 0, firstPage: 0, pages: 0, lease: gen, version: 0, members: [] });
      } catch (e) {
        // A node we cannot reach learns the generation from the authority when it returns.
        if (e instanceof ConnectionError && !view.isUp(n)) return;
        throw new BlockDeviceError('EIO', `announcing lease ${gen} to node ${n}: ${(e as Error).message}`);
      }
      if (r.h.status !== Status.Ok) throw errorFor(r.h.status, `announcing lease ${gen} of volume ${this.name} to node ${n}`);
    }));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
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

  private async send(view: ClusterView, member: number, op: number, flags: number, s: Segment, members: number[], payload?: Buffer): Promise<Reply> {
    const { connections } = this.opts;
    const lease = this.lease;
    const client = await connections.get(view.nodeOf(member));
    return client.request(
      { op, flags, epoch: view.epoch, volume: this.id, extent: s.extent, partition: member, firstPage: s.firstPage, pages: s.pages, lease, version: 0, members },
      payload,
    );
  }

  private async readSegment(s: Segment): Promise<Buffer> {
    let view = this.opts.views.current;
    let last = '';
    for (let attempt = 0; attempt <= STALE_RETRIES; attempt++) {
      const placed = view.members(this.id, s.extent, this.pool);
      // Up members first, in placement order; down ones only as a last resort.
      const members = placed.every((m) => view.isUp(view.nodeOf(m))) ? placed
        : [...placed.filter((m) => view.isUp(view.nodeOf(m))), ...placed.filter((m) => !view.isUp(view.nodeOf(m)))];
      let staleAt = 0;
      for (const m of members) {
        try {
          const r = await this.send(view, m, Op.Read, 0, s, []);
          if (r.h.status === Status.Ok) return r.payload;
          if (r.h.status === Status.StaleEpoch) {
            staleAt = r.h.aux;
            break;
          }
          if (!READ_RETRYABLE.has(r.h.status)) throw errorFor(r.h.status, `read of extent ${s.extent} on partition ${m}`);
          last = `partition ${m}: ${statusName(r.h.status)}`;
        } catch (e) {
          if (!(e instanceof ConnectionError)) throw e;
          last = `partition ${m}: ${e.message}`;
        }
      }
      if (!staleAt) break;
      view = await this.stale(view, staleAt, `read of extent ${s.extent}`);
    }
    throw new BlockDeviceError('EIO', `read of extent ${s.extent} failed on every member (last: ${last})`);
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
   * @throws BlockDeviceError EINVAL outside the volume, EIO when no member can serve.
   */
  async read(offset: number, length: number): Promise<Buffer> {
    this.check(offset, length);
    if (length === 0) return Buffer.alloc(0);
    const start = offset - (offset % PAGE_SIZE);
    const end = Math.ceil((offset + length) / PAGE_SIZE) * PAGE_SIZE;
    const data = await this.readAligned(start, end - start);
    return start === offset && end - start === length ? data : data.subarray(offset - start, offset - start + length);
  }

  private async writeSegment(op: number, flags: number, s: Segment, payload?: Buffer): Promise<void> {
    let view = this.opts.views.current;
    const what = `${op === Op.Write ? 'write' : 'trim'} of extent ${s.extent}`;
    for (let attempt = 0; ; attempt++) {
      const members = view.members(this.id, s.extent, this.pool);
      for (const m of members) this.dirty.add(view.nodeOf(m));
      let r: Reply;
      try {
        r = await this.send(view, members[0], op, flags, s, members, payload);
      } catch (e) {
        if (e instanceof ConnectionError) throw new BlockDeviceError('EIO', `primary of extent ${s.extent} (partition ${members[0]}): ${e.message}`);
        throw e;
      }
      if (r.h.status === Status.Ok) return;
      if (r.h.status !== Status.StaleEpoch || attempt >= STALE_RETRIES) throw errorFor(r.h.status, what);
      view = await this.stale(view, r.h.aux, what);
    }
  }

  private async writeAligned(offset: number, data: Buffer, fua: boolean): Promise<void> {
    const flags = fua ? Flag.Fua : 0;
    const segs = this.segments(offset, data.length);
    if (segs.length === 1) return this.writeSegment(Op.Write, flags, segs[0], data);
    await pMap(segs, (s) => this.writeSegment(Op.Write, flags, s, data.subarray(s.bufOffset, s.bufOffset + s.pages * PAGE_SIZE)), { concurrency: FANOUT });
  }

  /**
   * Writes `data` at byte `offset`, on every member of each extent before resolving.
   * Sub-page writes are read-modify-write under the volume's exclusive write gate.
   * @throws BlockDeviceError EINVAL outside the volume, ENOSPC, EFENCED, EIO.
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
   * Makes every write completed before this call durable on every member: sends Flush to
   * each node written since the last flush, in parallel.
   * @throws BlockDeviceError EIO when a node cannot flush (it stays marked dirty).
   */
  async flush(): Promise<void> {
    if (this.closed) throw new BlockDeviceError('ESHUTDOWN', `volume ${this.name} is closed`);
    const nodes = [...this.dirty];
    this.dirty.clear();
    const results = await Promise.allSettled(nodes.map(async (n) => {
      const c = await this.opts.connections.get(n);
      const r = await c.request({ op: Op.Flush, flags: 0, epoch: this.opts.views.current.epoch, volume: this.id, extent: 0, partition: 0, firstPage: 0, pages: 0, lease: this.lease, version: 0, members: [] });
      if (r.h.status !== Status.Ok) throw errorFor(r.h.status, `flush on node ${n}`);
    }));
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [{ node: nodes[i], reason: r.reason as Error }] : []));
    if (failed.length > 0) {
      for (const f of failed) this.dirty.add(f.node);
      throw new BlockDeviceError('EIO', `flush failed on node ${failed[0].node}: ${failed[0].reason.message}`);
    }
  }

  /** Marks the volume closed; later calls fail with ESHUTDOWN. Connections belong to the pool. */
  close(): void {
    this.closed = true;
  }
}
