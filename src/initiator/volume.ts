/**
 * The initiator's volume: a BlockDevice that splits byte ranges into extents, computes
 * each extent's partition set from the map (no directory), and sends the request to the
 * extent's primary, which replicates it (DESIGN "Data path"). Reads go to the primary and
 * fall back to the other members when it is unreachable or returns a bad checksum.
 */
import pMap from 'p-map';
import { BlockDeviceError, type BlockDevice, type BlockErrorCode } from '../volume/index.ts';
import type { VolumeConfig } from '../config/index.ts';
import { ConnectionError, Flag, Op, PAGE_SIZE, Status, statusName, type ConnectionPool, type Reply } from '../wire/index.ts';
import type { ClusterView } from './cluster-view.ts';
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

/** What a Volume needs from its surroundings. */
export interface VolumeOptions {
  view: ClusterView;
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

  constructor(private readonly opts: VolumeOptions) {
    this.size = opts.record.sizeBytes;
    this.name = opts.record.name;
    this.id = opts.record.id;
    this.pool = opts.record.pool;
    this.extentPages = opts.record.extentBytes / PAGE_SIZE;
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

  private async send(member: number, op: number, flags: number, s: Segment, members: number[], payload?: Buffer): Promise<Reply> {
    const { view, connections, lease } = this.opts;
    const client = await connections.get(view.nodeOf(member));
    return client.request(
      { op, flags, epoch: view.epoch, volume: this.id, extent: s.extent, partition: member, firstPage: s.firstPage, pages: s.pages, lease, version: 0, members },
      payload,
    );
  }

  private async readSegment(s: Segment): Promise<Buffer> {
    const members = this.opts.view.members(this.id, s.extent, this.pool);
    let last = '';
    for (const m of members) {
      try {
        const r = await this.send(m, Op.Read, 0, s, []);
        if (r.h.status === Status.Ok) return r.payload;
        if (!READ_RETRYABLE.has(r.h.status)) throw errorFor(r.h.status, `read of extent ${s.extent} on partition ${m}`);
        last = `partition ${m}: ${statusName(r.h.status)}`;
      } catch (e) {
        if (!(e instanceof ConnectionError)) throw e;
        last = `partition ${m}: ${e.message}`;
      }
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
    const members = this.opts.view.members(this.id, s.extent, this.pool);
    for (const m of members) this.dirty.add(this.opts.view.nodeOf(m));
    let r: Reply;
    try {
      r = await this.send(members[0], op, flags, s, members, payload);
    } catch (e) {
      if (e instanceof ConnectionError) throw new BlockDeviceError('EIO', `primary of extent ${s.extent} (partition ${members[0]}): ${e.message}`);
      throw e;
    }
    if (r.h.status !== Status.Ok) throw errorFor(r.h.status, `${op === Op.Write ? 'write' : 'trim'} of extent ${s.extent}`);
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
      const r = await c.request({ op: Op.Flush, flags: 0, epoch: this.opts.view.epoch, volume: this.id, extent: 0, partition: 0, firstPage: 0, pages: 0, lease: this.opts.lease, version: 0, members: [] });
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
