/**
 * The storage node's data-path server. Serves its partitions over the wire protocol
 * (src/wire/protocol.ts): authenticates each connection with the cluster token, checks
 * epoch and lease generation on every request, and applies each write the initiator sends
 * it (the initiator sends a write to every acting member itself, with the writer's version).
 * A write that names absent members is recorded as missed by them before it is
 * acknowledged; reads are served only while this node is current for the extent, and a
 * copy that fails its checksum is repaired from another member (node/recovery.ts).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { AllocatorFullError, AllocatorStateError, ChecksumError, type Allocator } from '../../allocator/index.ts';
import { initialMap, type ClusterMap } from '../clustermap/index.ts';
import type { ClusterConfig } from '../config/index.ts';
import { type MissedLog, decodePut, encodeMissed, encodeU32s, encodeVersions } from '../recovery/index.ts';
import {
  ConnectionPool, Flag, type NodeAddress, FrameReader, MAX_FRAME, MAX_MEMBERS, Op, PAGE_SIZE, ProtocolError, REQ_HEADER, Status, decodeRequest, encodeReply,
  extentKey, versionGeneration, VERSION_SEQ_SPAN, type RequestHeader,
} from '../wire/index.ts';
import { adoptWithReadBuffer, BufferPool, localSocketPath, loopPoll, TickCork } from '../net/index.ts';
import type { NodeMetrics } from '../metrics/index.ts';
import { LeaseTable } from './fencing.ts';
import { MemberError, applyPut, encodeDigest, extentDigest, localVersions } from './extent-copies.ts';
import { EXTENT_PAGES_MAX, NodeRecovery } from './recovery.ts';
import type { PeeringState } from './placement-state.ts';
import type { SavedRecovery } from './recovery-store.ts';
import { heldPayload, rebuildUnsettled } from './local-extents.ts';
import type { NodeStorage } from './storage.ts';
import { Scrubber } from './scrub.ts';
import { NoSnapshotError, SnapshotPins, encodePinSummary } from './snapshots.ts';

/** Wire opcode and status names by value, for metrics labels. */
const OP_NAMES: Record<number, string> = Object.fromEntries(Object.entries(Op).map(([k, v]) => [v, k]));
const STATUS_NAMES: Record<number, string> = Object.fromEntries(Object.entries(Status).map(([k, v]) => [v, k]));

/** Most pages one request may name (a 1 MiB extent). */
const MAX_PAGES = 256;
/** Reads (and write payloads) of at least this many bytes go into reused buffers. */
const POOLED_IO = 64 * 1024;

/**
 * The node's view of the cluster map for the data path. main.ts backs it with the gossip
 * control plane, so the epoch moves as new maps are accepted.
 */
export interface NodeMapView {
  /** The epoch the node holds now. */
  epoch(): number;
  /**
   * Makes sure the node holds a map of epoch >= `epoch`, fetching it from a neighbour.
   * @returns false when that did not succeed within the view's time limit.
   */
  ensure(epoch: number): Promise<boolean>;
  /** Data-path address of node `id` in the current map. */
  address(id: number): NodeAddress | undefined;
  /** The current cluster map (up/down states and placement for recovery). */
  map(): ClusterMap;
}

/** A map view fixed at cluster.json's creation map (no control plane). */
export function staticMapView(config: ClusterConfig): NodeMapView {
  const byId = new Map(config.nodes.map((n) => [n.id, n]));
  const map = initialMap(config);
  return { epoch: () => map.epoch, ensure: async (e) => e <= map.epoch, address: (id) => byId.get(id), map: () => map };
}

/** What a NodeServer needs. */
export interface NodeServerOptions {
  config: ClusterConfig;
  nodeId: number;
  storage: NodeStorage;
  log: Logger;
  /** The map view (default: staticMapView(config)). */
  map?: NodeMapView;
  /** The fence table (default: in memory only). */
  leases?: LeaseTable;
  /** The durable record of what absent members missed (src/recovery). */
  missed: MissedLog;
  /** Called when a peering round completes. */
  onPeered?: (upEpoch: number, staleExtents: number) => void;
  /** Peering state kept across restarts (see NodeRecoveryOptions; default: first start). */
  peeringState?: PeeringState | null;
  /** Stores it. */
  savePeeringState?: (s: PeeringState) => Promise<void>;
  /** Recovery work list stored by the last run (src/node/recovery-store.ts; default none). */
  savedRecovery?: SavedRecovery | null;
  /** Data-path figures (src/metrics): every request answered, host write bytes by role. */
  metrics?: NodeMetrics;
  /** Stores the recovery work list. */
  saveRecovery?: (s: SavedRecovery) => Promise<void>;
  /** The node's data directory: scrub keeps its pass times in `<dataDir>/node<ID>/scrub.json` (absent: in memory only). */
  dataDir?: string;
}

interface Conn {
  socket: Socket;
  authed: boolean;
  cork: TickCork;
}

class StatusError extends Error {
  constructor(readonly status: number, message: string, readonly aux = 0) {
    super(message);
  }
}

function statusOf(e: unknown): StatusError {
  if (e instanceof StatusError) return e;
  if (e instanceof ProtocolError) return new StatusError(Status.Invalid, e.message);
  if (e instanceof MemberError) return new StatusError(e.status, e.message);
  if (e instanceof NoSnapshotError) return new StatusError(Status.NoSnapshot, e.message, e.reason);
  if (e instanceof AllocatorFullError) return new StatusError(Status.NoSpace, e.message);
  if (e instanceof ChecksumError) return new StatusError(Status.BadChecksum, e.message);
  if (e instanceof AllocatorStateError) return new StatusError(Status.Invalid, e.message);
  return new StatusError(Status.Io, (e as Error).message ?? String(e));
}

/**
 * Host I/O of one volume served by this node since it started: reads it served (any member
 * may), and writes it applied as the extent's primary (first member), so that summing every
 * node counts each host request once. Seconds: time from decode to reply, summed.
 */
export interface VolumeIoTotals {
  volume: number;
  reads: number;
  writes: number;
  readBytes: number;
  writeBytes: number;
  readSeconds: number;
  writeSeconds: number;
}

/** The data-path TCP server of one storage node. */
export class NodeServer {
  private server: Server | null = null;
  /** The same service on the local Unix socket (loopback addresses only). */
  private localServer: Server | null = null;
  private readonly conns = new Set<Conn>();
  /** Reused buffers of large reads, and those now on their way out in a reply (send()). */
  private readonly readBuffers = new BufferPool();
  /**
   * Lent buffers the frame reader places large write payloads in (member list + pages):
   * released once the allocator has written them, dropped when the request fails (a
   * failed group commit may still have a write of them in flight).
   */
  private readonly writeBuffers = new BufferPool();
  private readonly pooled = new WeakSet<Buffer>();
  private readonly leases: LeaseTable;
  /** Resync records, peering, read repair, reconcile. */
  readonly recovery: NodeRecovery;
  /** Background comparison and repair of the copies this node holds (shallow and deep scrub). */
  readonly scrub: Scrubber;
  /** Snapshot pins (Op.Pin, Op.Unpin, snapshot reads), kept in `<dataDir>/node<ID>/snapshots.json`. */
  readonly snapshots: SnapshotPins;
  /** Host writes being applied (Lease and Missed wait for them). */
  private readonly writing = new Set<Promise<unknown>>();
  private readonly peers: ConnectionPool;
  private readonly map: NodeMapView;
  private readonly io = new Map<number, VolumeIoTotals>();
  private inflight = 0;
  /** The last reply sent answered a host read flagged Alone (pollGate). */
  private lastReplyAlone = false;
  private idle: (() => void) | null = null;
  private closing = false;

  constructor(private readonly opts: NodeServerOptions) {
    this.map = opts.map ?? staticMapView(opts.config);
    this.leases = opts.leases ?? new LeaseTable();
    this.peers = new ConnectionPool({ token: opts.config.token, address: (id) => this.map.address(id) });
    this.recovery = new NodeRecovery({ config: opts.config, nodeId: opts.nodeId, storage: opts.storage, missed: opts.missed, peers: this.peers, map: this.map, log: opts.log, onPeered: opts.onPeered,
      state: opts.peeringState ?? null, saveState: opts.savePeeringState, saved: opts.savedRecovery ?? null, saveProgress: opts.saveRecovery });
    this.scrub = new Scrubber({ storage: opts.storage, nodeId: opts.nodeId, peers: this.peers, map: this.map, pools: opts.config.pools, log: opts.log,
      volumeInfo: (v) => this.recovery.volumeInfo(v), isCurrent: (v, e) => this.recovery.current(v, e), busy: () => this.recovery.peering,
      statePath: opts.dataDir ? join(opts.dataDir, `node${opts.nodeId}`, 'scrub.json') : null,
      // Scrub reads share the recovery rate limit, and count as the 'scrub' kind of progress.
      throttle: (b) => this.recovery.throttle.take(b),
      progress: (ev) => {
        const p = this.recovery.progress;
        if (ev.phase === 'start') p.add('scrub', ev.extentsTotal, ev.bytesTotal);
        else if (ev.phase === 'extent') p.done('scrub', 1, ev.bytes);
        else p.end('scrub');
      } });
    this.snapshots = new SnapshotPins({ storage: opts.storage, nodeId: opts.nodeId, log: opts.log, map: () => this.map.map(),
      path: opts.dataDir ? join(opts.dataDir, `node${opts.nodeId}`, 'snapshots.json') : null,
      current: (v, e, leaf) => this.recovery.current(v, e, leaf), peering: () => this.recovery.peering,
      pulling: (v) => this.recovery.report().stale.filter((s) => s[0] === v).map((s) => s[1]),
      caughtUp: () => this.recovery.peeringState?.placement ?? null });
    const n = rebuildUnsettled(opts.storage, this.recovery.unsettled, (v) => this.leases.current(v));
    if (n) opts.log.info({ extents: n }, 'extents of the current writers treated as unsettled after start (a new writer reconciles them)');
  }

  /** Tells recovery the map changed (main.ts calls it on each accepted epoch, and once at start). */
  onMap(): void {
    this.recovery.onMap();
    // Requests waiting on a node now marked down fail at once rather than at their timeout.
    for (const n of this.map.map().nodes) if (!n.up) this.peers.drop(n.id);
  }

  private async drainWrites(): Promise<void> {
    if (this.writing.size) await Promise.allSettled([...this.writing]);
  }

  /**
   * Starts listening; resolves with the bound port. On a loopback address the node also
   * listens on its local Unix socket (net/local-socket.ts) for same-host clients; when that
   * name is taken, it logs a warning and serves TCP only.
   * @throws the listen error of the TCP port (EADDRINUSE, EACCES, ...).
   */
  async listen(host: string, port: number): Promise<number> {
    // Paused on accept: accept() moves each connection to a socket reading into a reused buffer.
    const open = (): Server => createServer({ noDelay: true, pauseOnConnect: true }, (s) => this.accept(s));
    const bind = (server: Server, at: { port: number; host: string } | { path: string }): Promise<void> =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(at, () => {
          server.off('error', reject);
          resolve();
        });
      });
    this.scrub.schedule();
    const server = open();
    this.server = server;
    await bind(server, { port, host });
    const bound = (server.address() as { port: number }).port;
    const path = localSocketPath(host, bound);
    if (path) {
      const local = open();
      try {
        await bind(local, { path });
        this.localServer = local;
      } catch (e) {
        this.opts.log.warn({ err: (e as Error).message }, 'local socket not served; same-host clients use TCP');
      }
    }
    return bound;
  }

  private accept(accepted: Socket): void {
    // Reads land in one reused buffer (net/read-buffer.ts): no Buffer allocated per read. The
    // frame reader copies each frame out of it, and large write payloads straight into lent
    // buffers; a socket that cannot be adopted reads with 'data' events as before.
    const push = (chunk: Buffer): void => {
      try {
        reader.push(chunk);
      } catch (e) {
        this.opts.log.warn({ peer: socket.remoteAddress, err: (e as Error).message }, 'protocol error; closing connection');
        socket.destroy();
      }
    };
    const adopted = adoptWithReadBuffer(accepted, push);
    const socket = adopted ?? accepted;
    const conn: Conn = { socket, authed: false, cork: new TickCork(socket) };
    this.conns.add(conn);
    const reader = new FrameReader(REQ_HEADER, MAX_FRAME, (f, placed) => this.onFrame(conn, f, placed), {
      transient: adopted !== null,
      place: (head, len) => (head[4] === Op.Write && len - REQ_HEADER >= POOLED_IO ? this.writeBuffers.lend(len - REQ_HEADER) : undefined),
    });
    if (!adopted) {
      socket.on('data', push);
      socket.resume();
    }
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.conns.delete(conn));
  }

  /**
   * Whether this node's loop poller may run now (its LoopPoller.gate; off unless
   * CAIRN_NODE_POLL_US allows it): right after the reply to a host read its initiator
   * flagged Alone (its only request in flight; the 'adaptive' read policy sends the next one
   * here too), while no other request is being served and none is in flight to peers. The
   * next read then finds this loop turning. Nothing else polls: a write goes to every member
   * at once, and three polling nodes would take the CPU its fdatasync and its gateway need;
   * at deeper queues the gateway is the busy process, and a node polling between bursts
   * would take its CPU (probe: randread 4k QD32 24–33k IOPS without, 20k with a gate on
   * this node's own depth only).
   */
  pollGate(): boolean {
    return this.lastReplyAlone && this.inflight <= 1 && loopPoll.inflight === 0;
  }

  private send(conn: Conn, h: RequestHeader, status: number, aux: number, payload?: Buffer): void {
    const s = conn.socket;
    if (s.destroyed) return;
    this.lastReplyAlone = h.op === Op.Read && (h.flags & (Flag.Alone | Flag.Recovery)) === Flag.Alone;
    conn.cork.hold();
    s.write(encodeReply(h.op, status, h.id, this.map.epoch(), aux, payload ? payload.length : 0));
    if (payload && payload.length) {
      if (this.pooled.delete(payload)) s.write(payload, () => this.readBuffers.give(payload));
      else s.write(payload);
    }
  }

  /** One request: a whole frame, or its fixed header with the rest `placed` in a lent buffer. */
  private onFrame(conn: Conn, frame: Buffer, placed?: Buffer): void {
    const { h, payload } = decodeRequest(frame, placed);
    if (!conn.authed) {
      const ok = h.op === Op.Hello && payload.toString('utf8') === this.opts.config.token;
      this.send(conn, h, ok ? Status.Ok : Status.Unauthorized, 0);
      if (ok) conn.authed = true;
      else {
        this.opts.log.warn({ peer: conn.socket.remoteAddress }, 'connection without the cluster token refused');
        conn.socket.end();
      }
      return;
    }
    if (this.closing) {
      this.send(conn, h, Status.ShuttingDown, 0);
      return;
    }
    this.inflight++;
    const m = this.opts.metrics;
    const t0 = performance.now();
    // then(ok, fail) with the bookkeeping in both, not .finally(): two promises fewer per request.
    this.handle(h, payload).then(
      (data) => {
        try {
          if (placed) this.writeBuffers.release(placed);
          this.send(conn, h, Status.Ok, 0, data);
          const seconds = (performance.now() - t0) / 1000;
          m?.request(OP_NAMES[h.op] ?? String(h.op), 'Ok', seconds);
          this.countVolumeIo(h, payload.length, data?.length ?? 0, seconds);
        } finally {
          this.served();
        }
      },
      (e: unknown) => {
        try {
          const se = statusOf(e);
          if (se.status === Status.Io) this.opts.log.error({ op: h.op, volume: h.volume, extent: h.extent, err: se.message }, 'request failed');
          this.send(conn, h, se.status, se.aux);
          m?.request(OP_NAMES[h.op] ?? String(h.op), STATUS_NAMES[se.status] ?? String(se.status), (performance.now() - t0) / 1000);
        } finally {
          this.served();
        }
      },
    );
  }

  /** A request has been answered (or failed): wakes close() once none is in flight. */
  private served(): void {
    if (--this.inflight === 0 && this.idle) this.idle();
  }

  /** Per-volume host I/O totals (see VolumeIoTotals), by volume id. */
  volumeIo(): VolumeIoTotals[] {
    return [...this.io.values()].map((v) => ({ ...v }));
  }

  /** Counts a served host read, or a host write applied as primary, under its volume. */
  private countVolumeIo(h: RequestHeader, inBytes: number, outBytes: number, seconds: number): void {
    const read = h.op === Op.Read && (h.flags & (Flag.Recovery | Flag.AsOf)) === 0;
    const write = h.op === Op.Write && h.members[0] === h.partition;
    if (!read && !write) return;
    let t = this.io.get(h.volume);
    if (!t) this.io.set(h.volume, (t = { volume: h.volume, reads: 0, writes: 0, readBytes: 0, writeBytes: 0, readSeconds: 0, writeSeconds: 0 }));
    if (read) {
      t.reads++;
      t.readBytes += outBytes;
      t.readSeconds += seconds;
    } else {
      t.writes++;
      t.writeBytes += inBytes;
      t.writeSeconds += seconds;
    }
  }

  /** Open data-path connections: accepted here (`in`) and held to peers (`out`). */
  connections(): { in: number; out: number } {
    return { in: this.conns.size, out: this.peers.size };
  }

  private partition(h: RequestHeader): Allocator {
    const a = this.opts.storage.get(h.partition);
    if (!a) throw new StatusError(Status.NoPartition, `node ${this.opts.nodeId} does not hold partition ${h.partition}`);
    return a;
  }

  /**
   * Epoch fencing: a request from an older epoch is refused with StaleEpoch naming ours;
   * one from a newer epoch waits until this node holds that map (fetched from a neighbour).
   */
  private async catchUp(h: RequestHeader): Promise<void> {
    if (h.epoch <= this.map.epoch()) return;
    if (!(await this.map.ensure(h.epoch))) {
      throw new StatusError(Status.Io, `request carries map epoch ${h.epoch}; node ${this.opts.nodeId} holds ${this.map.epoch()} and could not fetch a newer one`);
    }
  }

  /** Refuses a request from an older epoch than this node's with StaleEpoch, naming ours. */
  private checkEpoch(h: RequestHeader): void {
    const epoch = this.map.epoch();
    if (h.epoch < epoch) throw new StatusError(Status.StaleEpoch, `epoch ${h.epoch} is older than ${epoch}`, epoch);
  }

  private checkData(h: RequestHeader, fenced: boolean): void {
    this.checkEpoch(h);
    if (h.pages < 1 || h.pages > MAX_PAGES || h.firstPage + h.pages > MAX_PAGES) {
      throw new StatusError(Status.Invalid, `page range ${h.firstPage}+${h.pages} is invalid`);
    }
    if (!fenced) return;
    const fence = this.leases.admit(h.volume, h.lease);
    if (fence) throw new StatusError(Status.Fenced, `lease generation ${h.lease} of volume ${h.volume} is fenced by ${fence}`, fence);
  }

  private async handle(h: RequestHeader, payload: Buffer): Promise<Buffer | undefined> {
    if (h.epoch > this.map.epoch() && h.op !== Op.Ping && h.op !== Op.Hello) await this.catchUp(h);
    switch (h.op) {
      case Op.Ping:
      case Op.Hello:
        return undefined;
      case Op.Flush:
        await Promise.all([this.opts.storage.flushDirty(), this.opts.missed.sync()]);
        // The writer's watermark: every version below it is on every acting member.
        if (h.version > 0 && h.volume > 0 && versionGeneration(h.version) === h.lease && this.leases.current(h.volume) === h.lease) {
          this.recovery.unsettled.settle(h.volume, h.version);
        }
        return undefined;
      case Op.Lease: {
        if (h.volume < 1 || h.lease < 1) throw new StatusError(Status.Invalid, 'a lease announcement names a volume and a generation >= 1');
        const fence = await this.leases.raise(h.volume, h.lease);
        if (fence) throw new StatusError(Status.Fenced, `lease generation ${h.lease} of volume ${h.volume} is fenced by ${fence}`, fence);
        // Writes of older generations admitted before the raise finish first, so the new
        // writer's Suspects query sees every one of them.
        await this.drainWrites();
        return undefined;
      }
      case Op.Read: {
        if (h.flags & Flag.AsOf) {
          // A snapshot read: read-only, so not fenced, and never NotCurrent (snapshots.ts).
          this.checkData(h, false);
          this.recovery.throttle.foreground();
          return this.snapshots.read(h);
        }
        const recovery = (h.flags & Flag.Recovery) !== 0;
        this.checkData(h, !recovery);
        const a = this.partition(h);
        if (!recovery) {
          this.checkMembers(h);
          this.recovery.throttle.foreground();
          if (!this.recovery.current(h.volume, h.extent, h.partition)) {
            this.recovery.prioritize(h.volume, h.extent);
            throw new StatusError(Status.NotCurrent, `node ${this.opts.nodeId} is ${this.recovery.peering ? 'peering' : 'resyncing this extent'}`);
          }
        }
        try {
          // Large reads go into a reused buffer, given back once the reply is written (send()).
          const into = h.pages * PAGE_SIZE >= POOLED_IO ? this.readBuffers.take(h.pages * PAGE_SIZE) : undefined;
          const data = await a.read(extentKey(h.volume, h.extent), h.firstPage, h.pages, undefined, into);
          if (into) this.pooled.add(into);
          if (recovery) this.recovery.traffic.bytesOut += data.length;
          return data;
        } catch (e) {
          if (recovery || !(e instanceof ChecksumError)) throw e;
          return this.recovery.repairRead(a, h, e);
        }
      }
      case Op.Write:
      case Op.Trim: {
        this.checkData(h, true);
        if (h.op === Op.Write && payload.length !== h.pages * PAGE_SIZE) {
          throw new StatusError(Status.Invalid, `write of ${h.pages} pages carries ${payload.length} bytes`);
        }
        if (h.op === Op.Trim && payload.length !== 0) throw new StatusError(Status.Invalid, 'trim carries a payload');
        if (versionGeneration(h.version) !== h.lease || h.version % VERSION_SEQ_SPAN === 0) {
          throw new StatusError(Status.Invalid, `version ${h.version} was not made by lease generation ${h.lease}`);
        }
        this.checkMembers(h);
        const a = this.partition(h);
        this.recovery.throttle.foreground();
        const p = this.applyHostWrite(a, h, payload);
        this.writing.add(p);
        try {
          await p;
        } finally {
          this.writing.delete(p);
        }
        return undefined;
      }
      case Op.Digest: {
        this.checkExtentPages(h);
        return encodeDigest(extentDigest(this.partition(h), extentKey(h.volume, h.extent), h.pages));
      }
      case Op.Versions: {
        this.checkExtentPages(h);
        return encodeVersions(localVersions(this.partition(h), extentKey(h.volume, h.extent), h.pages));
      }
      case Op.Put: {
        if (h.pages < 1 || h.pages > EXTENT_PAGES_MAX) throw new StatusError(Status.Invalid, `put of ${h.pages} entries`);
        const a = this.partition(h);
        await applyPut(a, extentKey(h.volume, h.extent), decodePut(payload, h.pages, EXTENT_PAGES_MAX));
        this.opts.storage.markDirty(a);
        return undefined;
      }
      case Op.Missed:
        await this.drainWrites();
        return encodeMissed(this.recovery.records.missedFor(h.partition));
      case Op.Resolved:
        this.recovery.records.resolved(h.partition, h.volume, h.extent, h.version);
        return undefined;
      case Op.Reconcile: {
        // The members named come from the writer's map: from an older epoch they may be the
        // wrong set (a copy placed since would be left out), so the writer refreshes first.
        this.checkEpoch(h);
        this.checkExtentPages(h);
        this.checkMembers(h);
        this.partition(h);
        await this.recovery.reconcile(h);
        return undefined;
      }
      case Op.Suspects:
        return encodeU32s(this.recovery.unsettled.list(h.volume));
      case Op.Pin:
      case Op.Unpin: {
        if (h.volume < 1 || !Number.isSafeInteger(h.version) || h.version < 1) throw new StatusError(Status.Invalid, `snapshot version ${h.version} of volume ${h.volume} is invalid`);
        if (h.op === Op.Unpin) {
          await this.snapshots.unpin(h.volume, h.version);
          return undefined;
        }
        await this.drainWrites();
        return encodePinSummary(await this.snapshots.pin(h.volume, h.version));
      }
      case Op.Held:
        return heldPayload(this.opts.storage);
      default:
        throw new StatusError(Status.Invalid, `unknown opcode ${h.op}`);
    }
  }

  private checkExtentPages(h: RequestHeader): void {
    if (h.pages < 1 || h.pages > EXTENT_PAGES_MAX) throw new StatusError(Status.Invalid, `an extent of ${h.pages} pages is invalid`);
  }

  /** `members` must hold the target partition, be distinct, and `absent` name only other slots. */
  private checkMembers(h: RequestHeader): void {
    const n = h.members.length;
    if (n === 0 && !h.absent && h.op === Op.Read) return; // a plain read (no repair sources)
    const slot = h.members.indexOf(h.partition);
    let distinct = true;
    for (let i = 1; i < n && distinct; i++) for (let j = 0; j < i; j++) if (h.members[i] === h.members[j]) distinct = false;
    if (n < 1 || n > MAX_MEMBERS || slot < 0 || !distinct) {
      throw new StatusError(Status.Invalid, 'members must include the target partition and be distinct');
    }
    const absent = h.absent ?? 0;
    if (absent >>> n !== 0 || absent & (1 << slot)) throw new StatusError(Status.Invalid, `absent mask ${absent} does not fit ${n} members or names the target`);
  }

  private async applyHostWrite(a: Allocator, h: RequestHeader, payload: Buffer): Promise<void> {
    const key = extentKey(h.volume, h.extent);
    this.recovery.unsettled.note(h.volume, h.extent, h.version);
    const recorded = this.recovery.records.noteAbsent(h);
    const fua = (h.flags & Flag.Fua) !== 0;
    const applied = h.op === Op.Write ? a.write(key, h.firstPage, payload, h.version) : a.trim(key, h.firstPage, h.pages, h.version);
    // FUA: the flush is asked for at once, so the batch that writes the pages also seals them.
    await (fua ? Promise.all([applied, a.flush()]) : applied);
    if (h.op === Op.Write) this.opts.metrics?.hostWrite(h.members[0] === h.partition ? 'primary' : 'replica', payload.length);
    if (recorded) await recorded;
    if (!fua) this.opts.storage.markDirty(a);
  }

  /**
   * Graceful stop: refuses new requests (ShuttingDown), waits for in-flight ones, closes
   * connections and peer links. Storage is closed by the caller.
   */
  async close(): Promise<void> {
    this.closing = true;
    const recoveryStopped = this.recovery.close();
    const scrubStopped = this.scrub.close();
    this.server?.close();
    this.localServer?.close();
    if (this.inflight > 0) await new Promise<void>((r) => (this.idle = r));
    for (const c of this.conns) c.socket.end();
    this.peers.close();
    await Promise.all([scrubStopped, recoveryStopped, this.snapshots.close()]);
  }
}
