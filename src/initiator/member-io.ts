/**
 * How one extent's I/O reaches its members, for the initiator's Volume: a write goes to
 * every acting member at once and completes when all have it (never fewer than min_size); a
 * member that fails is retried until it answers or the map marks it down, and the members
 * that already had the write are told again with the absent set so that they record what
 * the absent one missed. Reads go to the first up member that is current. Below min_size,
 * I/O waits up to `ioTimeoutMs`, then fails naming the extent and its missing members.
 * While requests are in flight, a ticker drops connections to nodes the map marks down, so
 * a stopped node holds I/O for the down-detection time, not the request timeout.
 */
import { BlockDeviceError } from '../volume/index.ts';
import { ConnectionError, Flag, Op, Status, statusName, versionGeneration, type ConnectionPool, type Reply } from '../wire/index.ts';
import { PlacementError, type ClusterView, type ViewSource } from './cluster-view.ts';
import { READ_FATAL, STALE_RETRIES, WRITE_FATAL, belowMinSize, errorFor } from './io-status.ts';

/** A contiguous run of pages inside one extent. */
export interface Segment {
  extent: number;
  firstPage: number;
  pages: number;
  /** Byte offset of this segment within the request's buffer. */
  bufOffset: number;
}

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
  /** Reads served by a member other than the first one asked (NotCurrent, failure, bad checksum). */
  readFailovers: number;
  /** Extents reconciled after a writer change (peering on adoptLease). */
  reconciled: number;
  /** Writes and trims sent with FUA because the host writes synchronously (flush-predictor.ts). */
  writeThrough: number;
}

/** Log calls of a Volume (a pino logger fits). */
export interface VolumeLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * Which current member a read asks first:
 * - 'adaptive' (the default): a read that is the volume's only request in flight asks the
 *   node that served its previous read first, when that node is an up member. A
 *   queue-depth-1 stream so stays on one node, whose loop is still turning from the last
 *   reply (a storage node polls after a lone read: NodeServer.pollGate) and whose caches
 *   are warm. Any other read starts at the up member at position extent mod (up members):
 *   each extent is read from one copy, and the extents, placed pseudo-randomly, spread
 *   the reads over every copy. That copy alone is then in page cache and, when it was
 *   scattered, relocated by its node's allocator (allocator/relocate.ts): rotating instead
 *   rewrote all three copies of every extent before sequential reads got fast.
 * - 'balance' rotates over the up members, so every copy serves reads (Ceph's
 *   rbd_read_from_replica_policy=balance).
 * - 'primary' always starts at the extent's first placed member (the others only on
 *   failover).
 */
export type ReadPolicy = 'adaptive' | 'balance' | 'primary';

/** What MemberIo works with; `counters` and `dirty` are the Volume's own (updated here). */
export interface MemberIoContext {
  views: ViewSource;
  connections: ConnectionPool;
  volume: { id: number; name: string; pool: number };
  /** The write-lease generation every request carries. */
  lease: () => number;
  /** Bound on waiting for enough members (ms). */
  ioTimeoutMs: number;
  /** Which member a read asks first (default 'adaptive'). */
  readPolicy?: ReadPolicy;
  log?: VolumeLog;
  counters: VolumeCounters;
  /** Nodes holding writes not yet covered by a flush (FUA writes leave them out: they are durable). */
  dirty: Set<number>;
  /** Nodes that took FUA writes, until the settle watermark reaches them. */
  unsettled: Set<number>;
}

/** Outcome of one member request. */
type MemberResult = { ok: true } | { ok: false; stale?: number; fatal?: number; why: string };
const OK: MemberResult = { ok: true };

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Bit i set when placed[i]'s node is down in `view`. */
export function absentMask(view: ClusterView, placed: number[]): number {
  let mask = 0;
  for (let i = 0; i < placed.length; i++) if (!view.isUp(view.nodeOf(placed[i]))) mask |= 1 << i;
  return mask;
}

/** True when every member of `placed` is on a node `view` marks up. */
function allUp(view: ClusterView, placed: number[]): boolean {
  for (const m of placed) if (!view.isUp(view.nodeOf(m))) return false;
  return true;
}

/** Requests from one volume to the members of its extents. */
export class MemberIo {
  /** Requests in flight, and the ticker that watches the map while there are any. */
  private busy = 0;
  private ticker: NodeJS.Timeout | null = null;
  private tickEpoch = 0;
  private closed = false;
  /** Which up member the next read starts at (rotates, so reads spread over the copies). */
  private readTurn = 0;
  /** The node that served the last read ('adaptive' policy), -1 before the first. */
  private lastReadNode = -1;

  constructor(private readonly ctx: MemberIoContext) {}

  /**
   * Watches the map while requests are in flight: when a node is marked down, connections
   * to it are dropped so requests stuck on a stopped node fail now, not at their timeout.
   */
  enter(): void {
    if (this.busy++ === 0 && !this.ticker) {
      this.tickEpoch = this.ctx.views.current.epoch;
      this.ticker = setInterval(() => this.tick(), 100);
    }
  }

  /** A request tracked by enter() ended. */
  leave(): void {
    this.busy--;
  }

  /** Where a write with `flags` records its nodes: FUA ones are durable (unsettled only), others dirty. */
  private written(flags: number): Set<number> {
    return flags & Flag.Fua ? this.ctx.unsettled : this.ctx.dirty;
  }

  /** Requests tracked by enter() still in flight. */
  get inflight(): number {
    return this.busy;
  }

  private tick(): void {
    if (this.busy === 0 || this.closed) {
      clearInterval(this.ticker!);
      this.ticker = null;
      return;
    }
    const view = this.ctx.views.current;
    if (view.epoch === this.tickEpoch) return;
    this.tickEpoch = view.epoch;
    for (const n of view.map.nodes) if (!n.up) this.ctx.connections.drop(n.id);
  }

  /** Stops the ticker; later requests are the caller's to refuse. */
  close(): void {
    this.closed = true;
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
  }

  /**
   * After a StaleEpoch reply naming `epoch`: fetches a newer map. Returns the new view.
   * @throws BlockDeviceError ESTALE when no newer map could be obtained.
   */
  private async stale(view: ClusterView, epoch: number, what: string): Promise<ClusterView> {
    this.ctx.counters.staleEpochReplies++;
    const next = await this.ctx.views.refresh(Math.max(epoch, view.epoch + 1));
    if (next.epoch <= view.epoch) throw new BlockDeviceError('ESTALE', `${what}: map epoch ${view.epoch} is stale (a node holds ${epoch}) and no newer map could be fetched`);
    this.ctx.counters.refreshes++;
    return next;
  }

  /** The extent's up set in placement order ([] when fewer than min_size can be placed). */
  placed(view: ClusterView, extent: number): number[] {
    try {
      return view.members(this.ctx.volume.id, extent, this.ctx.volume.pool);
    } catch (e) {
      if (e instanceof PlacementError) return [];
      throw e;
    }
  }

  /** Error for an extent with fewer than min_size up members, naming the missing ones. */
  private inactive(view: ClusterView, extent: number, placed: number[], what: string): BlockDeviceError {
    const e = belowMinSize(view, { id: this.ctx.volume.id, name: this.ctx.volume.name, pool: this.ctx.volume.pool }, extent, placed, what, this.ctx.ioTimeoutMs);
    this.ctx.log?.error({ volume: this.ctx.volume.name, extent, err: e.message }, 'I/O failed: extent below min_size');
    return e;
  }

  private sendTo(view: ClusterView, member: number, op: number, flags: number, s: Segment, members: number[], absent: number, version: number, payload?: Buffer, into?: Buffer): Promise<Reply> {
    // A write carries the generation its version was made under: one issued just before
    // the attachment adopted a newer generation is fenced (and retried), never refused.
    const h = { op, flags, epoch: view.epoch, volume: this.ctx.volume.id, extent: s.extent, partition: member, firstPage: s.firstPage, pages: s.pages, lease: (op === Op.Write || op === Op.Trim) && version > 0 ? versionGeneration(version) : this.ctx.lease(), version, members, absent };
    const node = view.nodeOf(member);
    // The connection is almost always up: no promise hop for it then.
    const ready = this.ctx.connections.ready(node);
    if (ready) return ready.request(h, payload, into);
    return this.ctx.connections.get(node).then((c) => c.request(h, payload, into));
  }

  private async writeMember(view: ClusterView, m: number, op: number, flags: number, s: Segment, members: number[], absent: number, version: number, payload?: Buffer): Promise<MemberResult> {
    try {
      const r = await this.sendTo(view, m, op, flags, s, members, absent, version, payload);
      if (r.h.status === Status.Ok) return OK;
      if (r.h.status === Status.StaleEpoch) return { ok: false, stale: r.h.aux, why: `partition ${m}: StaleEpoch` };
      if (WRITE_FATAL.has(r.h.status)) return { ok: false, fatal: r.h.status, why: `partition ${m}: ${statusName(r.h.status)}` };
      return { ok: false, why: `partition ${m} (node ${view.nodeOf(m)}): ${statusName(r.h.status)}` };
    } catch (e) {
      if (!(e instanceof ConnectionError)) throw e;
      return { ok: false, why: `partition ${m} (node ${view.nodeOf(m)}): ${e.message}` };
    }
  }

  /**
   * Sends one write (or trim) of version `version` to every acting member and returns once
   * each has it. Members that fail are retried until they answer or the map marks them
   * down; members that had it before another member dropped out get it again with the new
   * absent set, so they record what the absent one missed.
   */
  async replicate(op: number, flags: number, s: Segment, version: number, payload?: Buffer): Promise<void> {
    // Fast path: every placed member up and every one answers Ok.
    const view0 = this.ctx.views.current;
    const placed0 = this.placed(view0, s.extent);
    let acked: Map<number, number[]> | null = null;
    if (placed0.length > 0 && placed0.length >= view0.pool(this.ctx.volume.pool).replicas && allUp(view0, placed0)) {
      const written = this.written(flags);
      for (const m of placed0) written.add(view0.nodeOf(m));
      const first = await Promise.all(placed0.map((m) => this.writeMember(view0, m, op, flags, s, placed0, 0, version, payload)));
      if (first.every((r) => r.ok)) return;
      acked = new Map();
      for (let i = 0; i < first.length; i++) if (first[i].ok) acked.set(placed0[i], []);
    }
    return this.replicateSlow(op, flags, s, version, acked ?? new Map(), payload);
  }

  /** The retrying, degrading part of replicate(); `acked`: members that already have the version. */
  private async replicateSlow(op: number, flags: number, s: Segment, version: number, acked: Map<number, number[]>, payload?: Buffer): Promise<void> {
    const what = `${op === Op.Write ? 'write' : 'trim'} of extent ${s.extent}`;
    let view = this.ctx.views.current;
    const deadline = Date.now() + this.ctx.ioTimeoutMs;
    let staleRetries = 0;
    let last = '';
    for (;;) {
      const placed = this.placed(view, s.extent);
      const pool = view.pool(this.ctx.volume.pool);
      const up = placed.filter((m) => view.isUp(view.nodeOf(m)));
      if (up.length < pool.minSize || up.length === 0) {
        if (Date.now() > deadline) throw this.inactive(view, s.extent, placed, what);
        await sleep(100);
        view = this.ctx.views.current;
        continue;
      }
      const absentLeaves = placed.filter((m) => !view.isUp(view.nodeOf(m)));
      const mask = absentLeaves.length ? absentMask(view, placed) : 0;
      const targets = up.filter((m) => {
        const told = acked.get(m);
        return !told || absentLeaves.some((x) => !told.includes(x));
      });
      if (targets.length === 0) {
        if (up.length < pool.replicas) this.ctx.counters.degradedWrites++;
        return;
      }
      const written = this.written(flags);
      for (const m of targets) written.add(view.nodeOf(m));
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
          const e = errorFor(r.fatal, `${what} of volume ${this.ctx.volume.name} on ${r.why}`);
          this.ctx.log?.error({ volume: this.ctx.volume.name, extent: s.extent, err: e.message }, 'write failed');
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
        this.ctx.counters.memberRetries++;
        if (Date.now() > deadline) {
          const e = new BlockDeviceError('EIO', `${what} of volume ${this.ctx.volume.name}: a member neither answered nor was marked down within ${this.ctx.ioTimeoutMs} ms (last: ${last})`);
          this.ctx.log?.error({ volume: this.ctx.volume.name, extent: s.extent, err: e.message }, 'write failed');
          throw e;
        }
        await sleep(50);
      }
      // Another pass at the newest view: it returns at once when every up member has it.
      view = this.ctx.views.current;
    }
  }

  /**
   * Reads segment `s` from an up member that is current for it, failing over to the next on
   * NotCurrent, a bad checksum or a failure. With the 'balance' read policy, reads are spread
   * over the up members: each starts at the next one in turn, so all the copies serve reads,
   * not the primary alone ('primary': the first up member in placement order first;
   * 'adaptive': a read alone in flight starts at the node of the previous read, others at
   * the extent's own member). A
   * member is only ever read while it vouches for its copy (one that missed writes or is
   * still being filled answers NotCurrent); every acknowledged write is on every acting member.
   * With `into` (s.pages × 4096 bytes), the pages are placed there straight from the socket
   * and `into` is returned.
   * @throws BlockDeviceError EIO when no member serves it within ioTimeoutMs; EFENCED, EINVAL.
   */
  async read(s: Segment, into?: Buffer): Promise<Buffer> {
    let view = this.ctx.views.current;
    const deadline = Date.now() + this.ctx.ioTimeoutMs;
    let staleRetries = 0;
    let last = '';
    this.enter();
    try {
      for (;;) {
        const placed = this.placed(view, s.extent);
        const pool = view.pool(this.ctx.volume.pool);
        const up = allUp(view, placed) ? placed : placed.filter((m) => view.isUp(view.nodeOf(m)));
        if (up.length < pool.minSize || up.length === 0) {
          if (Date.now() > deadline) throw this.inactive(view, s.extent, placed, `read of extent ${s.extent}`);
          await sleep(100);
          view = this.ctx.views.current;
          continue;
        }
        const mask = up.length === placed.length ? 0 : absentMask(view, placed);
        let staleAt = 0;
        let first = 0;
        const policy = this.ctx.readPolicy ?? 'adaptive';
        const alone = policy === 'adaptive' && this.busy === 1;
        const stay = alone ? up.findIndex((m) => view.nodeOf(m) === this.lastReadNode) : -1;
        if (stay >= 0) first = stay;
        else if (policy === 'adaptive') first = s.extent % up.length;
        else if (policy !== 'primary') {
          first = this.readTurn++ % up.length;
          if (this.readTurn >= 0x40000000) this.readTurn = 0;
        }
        for (let i = 0; i < up.length; i++) {
          const m = up[(first + i) % up.length];
          try {
            const r = await this.sendTo(view, m, Op.Read, alone ? Flag.Alone : 0, s, placed, mask, 0, undefined, into);
            if (r.h.status === Status.Ok) {
              this.lastReadNode = view.nodeOf(m);
              if (i > 0) this.ctx.counters.readFailovers++;
              if (!into || r.payload === into) return r.payload;
              if (r.payload.length !== into.length) throw new BlockDeviceError('EIO', `read of extent ${s.extent} on partition ${m}: ${r.payload.length} bytes for ${into.length}`);
              r.payload.copy(into);
              return into;
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
          const e = new BlockDeviceError('EIO', `read of extent ${s.extent} of volume ${this.ctx.volume.name} failed on every up member for ${this.ctx.ioTimeoutMs} ms (last: ${last})`);
          this.ctx.log?.error({ volume: this.ctx.volume.name, extent: s.extent, err: e.message }, 'read failed');
          throw e;
        }
        await sleep(50);
        view = this.ctx.views.current;
      }
    } finally {
      this.leave();
    }
  }

  /**
   * Flushes node `n` (Flush carrying the settle `watermark`), retrying until it answers or
   * the map marks it down (it is then not acting; what it missed is resynced on return).
   * @throws BlockDeviceError EIO when it neither flushes nor is marked down within
   *         ioTimeoutMs; EFENCED when a newer writer took over; ESHUTDOWN, for a
   *         `background` flush (a watermark nobody waits for), when close() came between
   *         two tries.
   */
  async flushNode(n: number, watermark: number, background = false): Promise<void> {
    const deadline = Date.now() + this.ctx.ioTimeoutMs;
    for (;;) {
      if (background && this.closed) throw new BlockDeviceError('ESHUTDOWN', `flush on node ${n}: volume ${this.ctx.volume.name} is closed`);
      const view = this.ctx.views.current;
      let why: string;
      try {
        const c = await this.ctx.connections.get(n);
        const r = await c.request({ op: Op.Flush, flags: 0, epoch: view.epoch, volume: this.ctx.volume.id, extent: 0, partition: 0, firstPage: 0, pages: 0, lease: this.ctx.lease(), version: watermark, members: [] });
        if (r.h.status === Status.Ok) return;
        if (r.h.status === Status.Fenced) throw errorFor(r.h.status, `flush on node ${n}`);
        if (r.h.status === Status.StaleEpoch) {
          await this.ctx.views.refresh(r.h.aux);
          continue;
        }
        why = statusName(r.h.status);
      } catch (e) {
        if (!(e instanceof ConnectionError)) throw e;
        why = e.message;
      }
      if (!this.ctx.views.current.isUp(n)) return; // not acting any more
      if (Date.now() > deadline) throw new BlockDeviceError('EIO', `flush on node ${n}: ${why}`);
      await sleep(50);
    }
  }
}
