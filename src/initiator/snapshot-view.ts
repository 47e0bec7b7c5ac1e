/**
 * A read-only BlockDevice over a pinned snapshot version of a volume (issue 11): each extent
 * is read with Op.Read + Flag.AsOf from a storage node that recorded, when it pinned the
 * version (src/node/snapshots.ts), that it held a current copy of it. Which node:
 *
 * 1. The extent's placed members in the current map, in placement order (down ones
 *    skipped). The first that serves it wins. NoSnapshot, NotCurrent, a bad checksum or a
 *    failure moves on to the next. A member answering NoSnapshot/Empty vouches that the
 *    extent had no pages at the version (it was current, and placement has not changed
 *    since the pin): if no member serves data, the extent reads as zeros.
 * 2. When no member served it or vouched for zeros, and none said Incomplete: every up node
 *    is asked at once with Flag.AnyPartition ("from whichever of your partitions held a
 *    current copy at pin time") — after a rebalance the old holder keeps its pinned copy
 *    while the new members never had the extent as of the version. One request per node,
 *    not per partition; the node knows its own partitions.
 * 3. Still nothing: Incomplete from anyone → EIO (a node held the extent but was not current
 *    for it, so no copy can be trusted). Released from anyone → EIO (the snapshot is being
 *    deleted, or was). Every node of the map up, every one answering NoSnapshot, at least
 *    one Absent → zeros (no node held a copy at pin time: the extent was never written
 *    before the snapshot, or trimmed). Otherwise (a node down or failing,
 *    or the version pinned nowhere) the read is retried until `ioTimeoutMs`, then EIO
 *    naming the extent.
 *
 * Zeros decided at an epoch are remembered for that epoch, so a sparse snapshot costs the
 * fan-out of step 2 once per extent and map. StaleEpoch replies refresh the view and retry.
 * Writes, trims and write-zeroes fail with EROFS; flush resolves (nothing to flush).
 */
import pMap from 'p-map';
import type { VolumeConfig } from '../config/index.ts';
import { BlockDeviceError, type BlockDevice } from '../volume/index.ts';
import { ConnectionError, Flag, NoSnapshotReason, Op, PAGE_SIZE, Status, statusName, type ConnectionPool, type Reply } from '../wire/index.ts';
import { PlacementError, type ClusterView, type ViewSource } from './cluster-view.ts';
import { STALE_RETRIES } from './io-status.ts';
import type { Segment, VolumeLog } from './member-io.ts';
import { DEFAULT_IO_TIMEOUT_MS } from './volume.ts';

/** Extents read at once by one large read. */
const FANOUT = 64;

/** What a SnapshotView needs. */
export interface SnapshotViewOptions {
  /** Current cluster view, and newer ones on demand. */
  views: ViewSource;
  connections: ConnectionPool;
  /** The volume's record with its size at snapshot time (bytes). */
  record: VolumeConfig;
  /** The pinned version (lease generation g' × 2^32: every write of generations < g'). */
  version: number;
  /** Name for errors and logs (e.g. "vol0@snap1"). */
  name: string;
  /** How long a read keeps retrying while nodes are down or failing, ms (default DEFAULT_IO_TIMEOUT_MS). */
  ioTimeoutMs?: number;
  /** Where failed reads are logged (default: nowhere). */
  log?: VolumeLog;
}

/** Counters of a SnapshotView (tests, diagnostics). */
export interface SnapshotViewCounters {
  /** Extents served by a node found in step 2 (not a placed member). */
  fallbackReads: number;
  /** Extents served by a placed member other than the first up one. */
  failovers: number;
  /** Extents read as zeros (vouched or found nowhere), not counting remembered ones. */
  zeroExtents: number;
}

/** One attempt's outcome for one extent. */
type Attempt =
  | { kind: 'data'; data: Buffer }
  | { kind: 'zeros' }
  | { kind: 'stale'; epoch: number }
  | { kind: 'fail'; final: boolean; why: string };

/** What the nodes asked in one attempt answered. */
interface Tally {
  empty: boolean;
  incomplete: string[];
  absent: number;
  notPinned: number;
  /** Nodes that said the version was released there: the snapshot is (being) deleted. */
  released: number;
  /** Failures that asking again may cure (connection, Io, ShuttingDown, NotCurrent, ...). */
  failed: string[];
  /** Failures asking again will not cure (Invalid, Unauthorized). */
  fatal: string[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Page-aligned [offset, offset+length) split into runs of pages inside one extent each. */
function splitExtents(offset: number, length: number, extentPages: number): Segment[] {
  const out: Segment[] = [];
  let page = offset / PAGE_SIZE;
  const end = (offset + length) / PAGE_SIZE;
  let bufOffset = 0;
  while (page < end) {
    const extent = Math.floor(page / extentPages);
    const firstPage = page - extent * extentPages;
    const pages = Math.min(extentPages - firstPage, end - page);
    out.push({ extent, firstPage, pages, bufOffset });
    bufOffset += pages * PAGE_SIZE;
    page += pages;
  }
  return out;
}

/** A pinned snapshot of a volume as a read-only block device (see the module comment). */
export class SnapshotView implements BlockDevice {
  readonly size: number;
  readonly blockSize = PAGE_SIZE;
  readonly readOnly = true;
  readonly name: string;
  /** The snapshot version read. */
  readonly version: number;
  readonly counters: SnapshotViewCounters = { fallbackReads: 0, failovers: 0, zeroExtents: 0 };
  private readonly extentPages: number;
  private readonly timeoutMs: number;
  /** Extent -> epoch at which it was found to read as zeros. */
  private readonly zeroAt = new Map<number, number>();
  private closed = false;

  /** @throws RangeError on a version that is not a positive safe integer. */
  constructor(private readonly opts: SnapshotViewOptions) {
    if (!Number.isSafeInteger(opts.version) || opts.version < 1) throw new RangeError(`snapshot version ${opts.version} must be a positive safe integer`);
    this.size = opts.record.sizeBytes;
    this.name = opts.name;
    this.version = opts.version;
    this.extentPages = opts.record.extentBytes / PAGE_SIZE;
    this.timeoutMs = opts.ioTimeoutMs ?? DEFAULT_IO_TIMEOUT_MS;
  }

  private check(offset: number, length: number): void {
    if (this.closed) throw new BlockDeviceError('ESHUTDOWN', `snapshot ${this.name} is closed`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new BlockDeviceError('EINVAL', `range ${offset}+${length} is outside snapshot ${this.name} (${this.size} bytes)`);
    }
  }

  /**
   * Reads `length` bytes at byte `offset` as of the snapshot version.
   * @throws BlockDeviceError EINVAL outside the device, ESHUTDOWN after close, ESTALE when
   *         no current map could be had, EIO naming the extent when no node can serve it
   *         (see the module comment).
   */
  async read(offset: number, length: number): Promise<Buffer> {
    this.check(offset, length);
    if (length === 0) return Buffer.alloc(0);
    const start = offset - (offset % PAGE_SIZE);
    const end = Math.ceil((offset + length) / PAGE_SIZE) * PAGE_SIZE;
    const segs = splitExtents(start, end - start, this.extentPages);
    let data: Buffer;
    if (segs.length === 1) data = await this.readSegment(segs[0]);
    else {
      data = Buffer.allocUnsafe(end - start);
      await pMap(segs, async (s) => {
        (await this.readSegment(s)).copy(data, s.bufOffset);
      }, { concurrency: FANOUT });
    }
    return start === offset && end - start === length ? data : data.subarray(offset - start, offset - start + length);
  }

  /** @throws BlockDeviceError EROFS always (a snapshot is read-only). */
  async write(offset: number, _data: Buffer, _fua?: boolean): Promise<void> {
    throw new BlockDeviceError('EROFS', `snapshot ${this.name} is read-only (write at ${offset})`);
  }

  /** @throws BlockDeviceError EROFS always. */
  async trim(offset: number, _length: number): Promise<void> {
    throw new BlockDeviceError('EROFS', `snapshot ${this.name} is read-only (trim at ${offset})`);
  }

  /** @throws BlockDeviceError EROFS always. */
  async writeZeroes(offset: number, _length: number, _fua?: boolean): Promise<void> {
    throw new BlockDeviceError('EROFS', `snapshot ${this.name} is read-only (write-zeroes at ${offset})`);
  }

  /** Nothing to make durable: resolves (ESHUTDOWN after close). */
  async flush(): Promise<void> {
    if (this.closed) throw new BlockDeviceError('ESHUTDOWN', `snapshot ${this.name} is closed`);
  }

  /** Marks the view closed; later calls fail with ESHUTDOWN. Connections belong to the pool. */
  close(): void {
    this.closed = true;
  }

  private async readSegment(s: Segment): Promise<Buffer> {
    const what = `read of extent ${s.extent} of snapshot ${this.name} (volume ${this.opts.record.id}, version ${this.version})`;
    const deadline = Date.now() + this.timeoutMs;
    let view = this.opts.views.current;
    let staleRetries = 0;
    for (;;) {
      const a = await this.attempt(view, s);
      if (a.kind === 'data') return a.data;
      if (a.kind === 'zeros') return Buffer.alloc(s.pages * PAGE_SIZE);
      if (a.kind === 'stale') {
        const next = await this.opts.views.refresh(Math.max(a.epoch, view.epoch + 1));
        if (++staleRetries > STALE_RETRIES || next.epoch <= view.epoch) throw new BlockDeviceError('ESTALE', `${what}: map epoch ${view.epoch} is stale (a node holds ${a.epoch}) and no newer map could be fetched`);
        view = next;
        continue;
      }
      if (a.final || Date.now() > deadline) {
        const e = new BlockDeviceError('EIO', `${what}: ${a.why}`);
        this.opts.log?.error({ snapshot: this.name, extent: s.extent, err: e.message }, 'snapshot read failed');
        throw e;
      }
      await sleep(100);
      view = this.opts.views.current;
    }
  }

  /** The extent's placed members ([] when it cannot be placed now). */
  private placed(view: ClusterView, extent: number): number[] {
    try {
      return view.members(this.opts.record.id, extent, this.opts.record.pool);
    } catch (e) {
      if (e instanceof PlacementError) return [];
      throw e;
    }
  }

  private async ask(view: ClusterView, node: number, partition: number, flags: number, s: Segment, placed: number[]): Promise<Reply | string> {
    try {
      const c = await this.opts.connections.get(node);
      return await c.request({
        op: Op.Read, flags: Flag.AsOf | flags, epoch: view.epoch, volume: this.opts.record.id, extent: s.extent, partition,
        firstPage: s.firstPage, pages: s.pages, lease: 0, version: this.version, members: placed,
      });
    } catch (e) {
      if (!(e instanceof ConnectionError)) throw e;
      return e.message;
    }
  }

  /** Counts one answer that brought no data into `t`. */
  private note(t: Tally, who: string, r: Reply | string): void {
    if (typeof r === 'string') {
      t.failed.push(`${who}: ${r}`);
      return;
    }
    const st = r.h.status;
    if (st === Status.NoSnapshot) {
      if (r.h.aux === NoSnapshotReason.Empty) t.empty = true;
      else if (r.h.aux === NoSnapshotReason.Incomplete) t.incomplete.push(who);
      else if (r.h.aux === NoSnapshotReason.NotPinned) t.notPinned++;
      else if (r.h.aux === NoSnapshotReason.Released) t.released++;
      else t.absent++;
    } else if (st === Status.Invalid || st === Status.Unauthorized) t.fatal.push(`${who}: ${statusName(st)}`);
    else t.failed.push(`${who}: ${statusName(st)}`);
  }

  private async attempt(view: ClusterView, s: Segment): Promise<Attempt> {
    if (this.zeroAt.get(s.extent) === view.epoch) return { kind: 'zeros' };
    const placed = this.placed(view, s.extent);
    const t: Tally = { empty: false, incomplete: [], absent: 0, notPinned: 0, released: 0, failed: [], fatal: [] };
    // 1. The placed members, in order.
    let asked = 0;
    for (const m of placed) {
      const node = view.nodeOf(m);
      const who = `partition ${m} (node ${node})`;
      if (!view.isUp(node)) {
        t.failed.push(`${who}: down`);
        continue;
      }
      const r = await this.ask(view, node, m, 0, s, placed);
      asked++;
      if (typeof r !== 'string' && r.h.status === Status.Ok) {
        if (asked > 1) this.counters.failovers++;
        return { kind: 'data', data: r.payload };
      }
      if (typeof r !== 'string' && r.h.status === Status.StaleEpoch) return { kind: 'stale', epoch: r.h.aux };
      this.note(t, who, r);
    }
    if (t.empty) return this.zeros(view, s);
    if (t.released > 0) return this.released(t);
    // 2. Any up node, from whichever partition held a current copy at pin time.
    let everyNodeAnswered = false;
    if (t.incomplete.length === 0) {
      const nodes = view.map.nodes.filter((n) => n.up).map((n) => n.id).sort((a, b) => a - b);
      const answers = await Promise.all(nodes.map((n) => this.ask(view, n, 0, Flag.AnyPartition, s, placed)));
      for (const r of answers) {
        if (typeof r !== 'string' && r.h.status === Status.Ok) {
          this.counters.fallbackReads++;
          return { kind: 'data', data: r.payload };
        }
      }
      const stale = answers.find((r) => typeof r !== 'string' && r.h.status === Status.StaleEpoch) as Reply | undefined;
      if (stale) return { kind: 'stale', epoch: stale.h.aux };
      const fb: Tally = { empty: false, incomplete: [], absent: 0, notPinned: 0, released: 0, failed: [], fatal: [] };
      answers.forEach((r, i) => this.note(fb, `node ${nodes[i]}`, r));
      t.incomplete.push(...fb.incomplete);
      t.failed.push(...fb.failed);
      t.fatal.push(...fb.fatal);
      t.absent += fb.absent;
      t.notPinned += fb.notPinned;
      t.released += fb.released;
      everyNodeAnswered = view.map.nodes.every((n) => n.up) && fb.failed.length === 0 && fb.fatal.length === 0 && fb.incomplete.length === 0;
      // A node released the version: the snapshot is being deleted. Checked before zeros:
      // a holder already unpinned and a non-holder still pinned (Absent) would otherwise
      // read as "nobody held it".
      if (t.released > 0) return this.released(t);
      // 3. No node held a copy at pin time: nothing was written there before the snapshot.
      if (everyNodeAnswered && fb.absent > 0) return this.zeros(view, s);
    }
    if (t.incomplete.length > 0) {
      return { kind: 'fail', final: true, why: `no complete copy as of the snapshot: ${t.incomplete.join(', ')} held it but ${t.incomplete.length > 1 ? 'were' : 'was'} not current when it was pinned` };
    }
    if (t.fatal.length > 0) return { kind: 'fail', final: true, why: t.fatal.join('; ') };
    if (everyNodeAnswered && t.absent === 0) return { kind: 'fail', final: true, why: `version ${this.version} is not pinned on any node (released?)` };
    return { kind: 'fail', final: false, why: `no node served it or could vouch that it was empty${t.failed.length ? ` (${t.failed.join('; ')})` : ''}` };
  }

  /** The final failure when `t.released` nodes released the version. */
  private released(t: Tally): Attempt {
    return { kind: 'fail', final: true, why: `version ${this.version} was released (the snapshot is deleted) on ${t.released} node${t.released > 1 ? 's' : ''}` };
  }

  private zeros(view: ClusterView, s: Segment): Attempt {
    this.zeroAt.set(s.extent, view.epoch);
    this.counters.zeroExtents++;
    return { kind: 'zeros' };
  }
}
