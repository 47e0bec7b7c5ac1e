/**
 * The storage node's data-path server. Serves its partitions over the wire protocol
 * (src/wire/protocol.ts): authenticates each connection with the cluster token, checks
 * epoch and lease generation on every request, and as primary of an extent writes locally
 * and forwards to the other members in parallel, replying once every member has the data.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { AllocatorFullError, AllocatorStateError, ChecksumError, type Allocator } from '../../allocator/index.ts';
import { decodePartitionLeafId } from '../../placement/index.ts';
import type { ClusterConfig } from '../config/index.ts';
import {
  ConnectionPool, Flag, type NodeAddress, FrameReader, MAX_FRAME, MAX_MEMBERS, Op, PAGE_SIZE, REQ_HEADER, Status, decodeRequest, encodeReply,
  extentKey, type RequestHeader,
} from '../wire/index.ts';
import { VersionClock } from './clock.ts';
import { LeaseTable } from './fencing.ts';
import type { NodeStorage } from './storage.ts';

/** Most pages one request may name (a 1 MiB extent). */
const MAX_PAGES = 256;

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
}

/** A map view fixed at cluster.json's creation map (no control plane). */
export function staticMapView(config: ClusterConfig): NodeMapView {
  const byId = new Map(config.nodes.map((n) => [n.id, n]));
  return { epoch: () => config.map.epoch, ensure: async (e) => e <= config.map.epoch, address: (id) => byId.get(id) };
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
}

interface Conn {
  socket: Socket;
  authed: boolean;
  corked: boolean;
}

class StatusError extends Error {
  constructor(readonly status: number, message: string, readonly aux = 0) {
    super(message);
  }
}

function statusOf(e: unknown): StatusError {
  if (e instanceof StatusError) return e;
  if (e instanceof AllocatorFullError) return new StatusError(Status.NoSpace, e.message);
  if (e instanceof ChecksumError) return new StatusError(Status.BadChecksum, e.message);
  if (e instanceof AllocatorStateError) return new StatusError(Status.Invalid, e.message);
  return new StatusError(Status.Io, (e as Error).message ?? String(e));
}

/** The data-path TCP server of one storage node. */
export class NodeServer {
  private server: Server | null = null;
  private readonly conns = new Set<Conn>();
  private readonly clock = new VersionClock();
  private readonly leases: LeaseTable;
  private readonly peers: ConnectionPool;
  private readonly map: NodeMapView;
  private inflight = 0;
  private idle: (() => void) | null = null;
  private closing = false;

  constructor(private readonly opts: NodeServerOptions) {
    this.map = opts.map ?? staticMapView(opts.config);
    this.leases = opts.leases ?? new LeaseTable();
    this.peers = new ConnectionPool({ token: opts.config.token, address: (id) => this.map.address(id) });
  }

  /** Starts listening; resolves with the bound port. */
  listen(host: string, port: number): Promise<number> {
    const server = createServer({ noDelay: true }, (s) => this.accept(s));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve((server.address() as { port: number }).port);
      });
    });
  }

  private accept(socket: Socket): void {
    const conn: Conn = { socket, authed: false, corked: false };
    this.conns.add(conn);
    const reader = new FrameReader(REQ_HEADER, MAX_FRAME, (f) => this.onFrame(conn, f));
    socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (e) {
        this.opts.log.warn({ peer: socket.remoteAddress, err: (e as Error).message }, 'protocol error; closing connection');
        socket.destroy();
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.conns.delete(conn));
  }

  private send(conn: Conn, h: RequestHeader, status: number, aux: number, payload?: Buffer): void {
    const s = conn.socket;
    if (s.destroyed) return;
    if (!conn.corked) {
      conn.corked = true;
      s.cork();
      process.nextTick(() => {
        conn.corked = false;
        s.uncork();
      });
    }
    s.write(encodeReply(h.op, status, h.id, this.map.epoch(), aux, payload ? payload.length : 0));
    if (payload && payload.length) s.write(payload);
  }

  private onFrame(conn: Conn, frame: Buffer): void {
    const { h, payload } = decodeRequest(frame);
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
    this.handle(h, payload).then(
      (data) => this.send(conn, h, Status.Ok, 0, data),
      (e: unknown) => {
        const se = statusOf(e);
        if (se.status === Status.Io) this.opts.log.error({ op: h.op, volume: h.volume, extent: h.extent, err: se.message }, 'request failed');
        this.send(conn, h, se.status, se.aux);
      },
    ).finally(() => {
      if (--this.inflight === 0 && this.idle) this.idle();
    });
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

  private checkData(h: RequestHeader): void {
    const epoch = this.map.epoch();
    if (h.epoch < epoch) throw new StatusError(Status.StaleEpoch, `epoch ${h.epoch} is older than ${epoch}`, epoch);
    if (h.pages < 1 || h.pages > MAX_PAGES || h.firstPage + h.pages > 0x10000) {
      throw new StatusError(Status.Invalid, `page range ${h.firstPage}+${h.pages} is invalid`);
    }
    const fence = this.leases.admit(h.volume, h.lease);
    if (fence) throw new StatusError(Status.Fenced, `lease generation ${h.lease} of volume ${h.volume} is fenced by ${fence}`, fence);
  }

  private async handle(h: RequestHeader, payload: Buffer): Promise<Buffer | undefined> {
    switch (h.op) {
      case Op.Ping:
      case Op.Hello:
        return undefined;
      case Op.Flush:
        await this.opts.storage.flushDirty();
        return undefined;
      case Op.Lease: {
        if (h.volume < 1 || h.lease < 1) throw new StatusError(Status.Invalid, 'a lease announcement names a volume and a generation >= 1');
        const fence = await this.leases.raise(h.volume, h.lease);
        if (fence) throw new StatusError(Status.Fenced, `lease generation ${h.lease} of volume ${h.volume} is fenced by ${fence}`, fence);
        return undefined;
      }
      case Op.Read: {
        if (h.epoch > this.map.epoch()) await this.catchUp(h);
        this.checkData(h);
        return this.partition(h).read(extentKey(h.volume, h.extent), h.firstPage, h.pages);
      }
      case Op.Write:
      case Op.Trim: {
        if (h.epoch > this.map.epoch()) await this.catchUp(h);
        this.checkData(h);
        if (h.op === Op.Write && payload.length !== h.pages * PAGE_SIZE) {
          throw new StatusError(Status.Invalid, `write of ${h.pages} pages carries ${payload.length} bytes`);
        }
        if (h.op === Op.Trim && payload.length !== 0) throw new StatusError(Status.Invalid, 'trim carries a payload');
        const a = this.partition(h);
        if (h.flags & Flag.Replica) {
          await this.apply(a, h, payload, h.version);
          return undefined;
        }
        if (h.members.length < 1 || h.members[0] !== h.partition || new Set(h.members).size !== h.members.length) {
          throw new StatusError(Status.Invalid, 'members must start with the target partition and be distinct');
        }
        if (h.members.length > MAX_MEMBERS) throw new StatusError(Status.Invalid, 'too many members');
        const version = this.clock.next();
        const results = await Promise.allSettled([
          this.apply(a, h, payload, version),
          ...h.members.slice(1).map((m) => this.forward(m, h, payload, version)),
        ]);
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw statusOf(failed.reason);
        return undefined;
      }
      default:
        throw new StatusError(Status.Invalid, `unknown opcode ${h.op}`);
    }
  }

  private async apply(a: Allocator, h: RequestHeader, payload: Buffer, version: number): Promise<void> {
    const key = extentKey(h.volume, h.extent);
    if (h.op === Op.Write) await a.write(key, h.firstPage, payload, version);
    else await a.trim(key, h.firstPage, h.pages, version);
    if (h.flags & Flag.Fua) await a.flush();
    else this.opts.storage.markDirty(a);
  }

  private async forward(member: number, h: RequestHeader, payload: Buffer, version: number): Promise<void> {
    const node = decodePartitionLeafId(member).host;
    let reply;
    try {
      const client = await this.peers.get(node);
      reply = await client.request(
        { ...h, flags: h.flags | Flag.Replica, partition: member, members: [], version },
        h.op === Op.Write ? payload : undefined,
      );
    } catch (e) {
      throw new StatusError(Status.Io, `replica on node ${node}: ${(e as Error).message}`);
    }
    if (reply.h.status !== Status.Ok) throw new StatusError(reply.h.status, `replica on node ${node} answered status ${reply.h.status}`, reply.h.aux);
  }

  /**
   * Graceful stop: refuses new requests (ShuttingDown), waits for in-flight ones, closes
   * connections and peer links. Storage is closed by the caller.
   */
  async close(): Promise<void> {
    this.closing = true;
    this.server?.close();
    if (this.inflight > 0) await new Promise<void>((r) => (this.idle = r));
    for (const c of this.conns) c.socket.end();
    this.peers.close();
  }
}
