/**
 * A pipelined data-path connection to one storage node: many requests in flight, replies
 * matched by request id, socket writes batched per event-loop tick (cork/uncork).
 */
import { connect, type Socket } from 'node:net';
import { EventEmitter } from 'node:events';
import { TickCork, localSocketPath, loopPoll, writeHeld } from '../net/index.ts';
import { FrameReader } from './frame-reader.ts';
import {
  MAX_FRAME, Op, REP_HEADER, Status, decodeReply, encodeRequest, statusName, type ReplyHeader, type RequestHeader,
} from './protocol.ts';

/** The connection failed or closed, or a request timed out. `code` is 'ECONNLOST' or 'ETIMEDOUT'. */
export class ConnectionError extends Error {
  override name = 'ConnectionError';
  constructor(readonly code: 'ECONNLOST' | 'ETIMEDOUT' | 'ECONNREFUSED' | 'EAUTH', message: string) {
    super(message);
  }
}

/** A reply: decoded header and payload (a view; valid as long as you hold it). */
export interface Reply {
  h: ReplyHeader;
  payload: Buffer;
}

interface Pending {
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
  deadline: number;
  /** Where an Ok reply's payload of exactly this size goes (request's `into`). */
  into?: Buffer;
}

/** Bytes the socket reads into at a time (one buffer per connection, reused). */
const READ_BUFFER = 256 * 1024;

/** Options of a client connection. */
export interface WireClientOptions {
  host: string;
  port: number;
  /** Cluster token sent in Hello. */
  token: string;
  /** Per-request timeout in ms (default 15000). */
  timeoutMs?: number;
  /** Connect timeout in ms (default 3000). */
  connectTimeoutMs?: number;
}

/**
 * One authenticated connection. Emits 'close' once when the connection is gone; a closed
 * client rejects every pending and future request with ConnectionError.
 */
export class WireClient extends EventEmitter {
  private socket: Socket | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private cork: TickCork | null = null;
  private readonly reader = new FrameReader(REP_HEADER, MAX_FRAME, (f, placed) => this.onFrame(f, placed), {
    transient: true,
    place: (head, len) => this.place(head, len),
  });
  /** The request whose reply payload is arriving into its `into` (not timed out meanwhile). */
  private placing: Pending | null = null;
  private closed = false;
  private sweeper: NodeJS.Timeout | null = null;
  private readonly timeoutMs: number;

  constructor(private readonly opts: WireClientOptions) {
    super();
    this.timeoutMs = opts.timeoutMs ?? 15000;
  }

  private via: 'tcp' | 'unix' = 'tcp';

  /** How the connection runs: 'unix' to a node on this host that serves its local socket, else 'tcp'. */
  get transport(): 'tcp' | 'unix' {
    return this.via;
  }

  /** True until the connection closes. */
  get alive(): boolean {
    return !this.closed;
  }

  /**
   * Connects and authenticates.
   * @throws ConnectionError ('ECONNREFUSED' when nothing listens, 'ETIMEDOUT', 'EAUTH' on a rejected token).
   */
  async connect(): Promise<void> {
    const { host, port } = this.opts;
    // A node on this host is reached over its local Unix socket when it serves one
    // (net/local-socket.ts); else, or when that fails, over TCP.
    const path = localSocketPath(host, port);
    let socket: Socket | null = null;
    if (path) {
      try {
        socket = await this.open({ path }, `${host}:${port} (local socket)`);
        this.via = 'unix';
      } catch {
        // not served there (an older node, or the name taken): TCP below
      }
    }
    socket ??= await this.open({ host, port, noDelay: true }, `${host}:${port}`);
    this.socket = socket;
    this.cork = new TickCork(socket);
    socket.on('error', (e) => this.fail(new ConnectionError('ECONNLOST', `${host}:${port}: ${e.message}`)));
    socket.on('close', () => this.fail(new ConnectionError('ECONNLOST', `connection to ${host}:${port} closed`)));
    this.sweeper = setInterval(() => this.sweep(), 1000);
    this.sweeper.unref();
    const token = Buffer.from(this.opts.token, 'utf8');
    const r = await this.request(
      { op: Op.Hello, flags: 0, epoch: 0, volume: 0, extent: 0, partition: 0, firstPage: 0, pages: 0, lease: 0, version: 0, members: [] },
      token,
    );
    if (r.h.status !== Status.Ok) {
      this.close();
      throw new ConnectionError('EAUTH', `${host}:${port} refused the cluster token (${statusName(r.h.status)})`);
    }
  }

  /**
   * Opens the socket to `at` (TCP host and port, or a Unix socket path), reading into one
   * reused buffer.
   * @throws ConnectionError 'ECONNREFUSED' or 'ETIMEDOUT'.
   */
  private open(at: { host: string; port: number; noDelay: boolean } | { path: string }, name: string): Promise<Socket> {
    return new Promise<Socket>((resolve, reject) => {
      // Reads land in one reused buffer (no allocation per read); the frame reader copies
      // each frame out of it, or each read reply's pages straight to the caller's buffer.
      const buffer = Buffer.allocUnsafe(READ_BUFFER);
      const s = connect({ ...at, onread: { buffer, callback: (n) => this.onRead(buffer.subarray(0, n)) } });
      const t = setTimeout(() => {
        s.destroy();
        reject(new ConnectionError('ETIMEDOUT', `connect to ${name} timed out`));
      }, this.opts.connectTimeoutMs ?? 3000);
      s.once('connect', () => {
        clearTimeout(t);
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (e) => {
        clearTimeout(t);
        reject(new ConnectionError('ECONNREFUSED', `connect to ${name}: ${(e as Error).message}`));
      });
    });
  }

  /**
   * Sends one request (`payload`: pages for Write, token for Hello) and resolves with the
   * reply, whatever its status. With `into` (a Read's destination), an Ok reply whose payload
   * has exactly `into.length` bytes is copied straight from the socket into it, and the
   * reply's payload is `into` itself; any other reply brings its own payload. A `payload`
   * lent from a BufferPool is held until the socket has sent it (writeHeld), so its owner may
   * release it as soon as the request's outcome is known.
   * @throws ConnectionError when the connection is or becomes unusable, or on timeout.
   */
  request(h: Omit<RequestHeader, 'id'>, payload?: Buffer, into?: Buffer): Promise<Reply> {
    if (this.closed || !this.socket) return Promise.reject(new ConnectionError('ECONNLOST', `connection to ${this.opts.host}:${this.opts.port} is closed`));
    const id = this.nextId;
    this.nextId = this.nextId === 0xffffffff ? 1 : this.nextId + 1;
    const head = encodeRequest(h, id, payload ? payload.length : 0);
    const s = this.socket;
    this.cork!.hold();
    s.write(head);
    // A lent payload (a frontend's pooled write buffer) stays out of its pool until this write calls back.
    if (payload && payload.length) writeHeld(s, payload);
    return new Promise<Reply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, deadline: Date.now() + this.timeoutMs, into });
      loopPoll.inflight++;
    });
  }

  private onRead(chunk: Buffer): boolean {
    try {
      this.reader.push(chunk);
    } catch (e) {
      this.fail(new ConnectionError('ECONNLOST', `bad reply stream from ${this.opts.host}:${this.opts.port}: ${(e as Error).message}`));
    }
    return true;
  }

  /** The payload of an Ok reply goes to its request's `into` when the sizes agree. */
  private place(head: Buffer, frameLength: number): Buffer | undefined {
    if (head.readUInt16LE(6) !== Status.Ok) return undefined;
    const p = this.pending.get(head.readUInt32LE(8));
    if (!p?.into || p.into.length !== frameLength - REP_HEADER) return undefined;
    this.placing = p;
    return p.into;
  }

  private onFrame(frame: Buffer, placed?: Buffer): void {
    this.placing = null;
    const r = decodeReply(frame);
    const p = this.pending.get(r.h.id);
    if (!p) return; // timed out earlier
    this.pending.delete(r.h.id);
    loopPoll.inflight--;
    if (placed) r.payload = placed;
    p.resolve(r);
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, p] of this.pending) {
      if (p.deadline <= now && p !== this.placing) {
        this.pending.delete(id);
        loopPoll.inflight--;
        p.reject(new ConnectionError('ETIMEDOUT', `request to ${this.opts.host}:${this.opts.port} timed out after ${this.timeoutMs} ms`));
      }
    }
  }

  private fail(e: ConnectionError): void {
    if (this.closed) return;
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    this.socket?.destroy();
    for (const p of this.pending.values()) p.reject(e);
    loopPoll.inflight -= this.pending.size;
    this.pending.clear();
    this.emit('close', e);
  }

  /** Closes the connection; pending requests fail with ConnectionError. */
  close(): void {
    this.fail(new ConnectionError('ECONNLOST', `connection to ${this.opts.host}:${this.opts.port} closed by us`));
  }
}
