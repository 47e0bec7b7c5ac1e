/**
 * The NBD server: accepts TCP (or Unix socket) connections, runs the fixed-newstyle
 * handshake and then a transmission session per connection against the chosen export.
 * Any number of clients at once; one misbehaving client only loses its own connection.
 * Exports are the static ones (addExport) and, for names not among them, those of an
 * optional provider, so exports that appear later (new volumes) are served without a
 * restart.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { pino, type Logger } from 'pino';
import type { BlockDevice } from '../volume/index.ts';
import { serverHandshake, type ExportSource, type NbdExport } from './handshake.ts';
import { SocketReader } from './socket-reader.ts';
import { adoptWithReadBuffer } from '../net/index.ts';
import { NbdSession } from './transmission.ts';

/**
 * Exports beyond the static ones, looked up per connection (NBD_OPT_LIST, NBD_OPT_INFO/GO,
 * NBD_OPT_EXPORT_NAME and the meta-context options). `open` is called at most once per name
 * and connection, but once for every connection that names it: return a shared device (e.g.
 * one attachment per volume), not a new one per call. The server never closes the devices
 * it gets: their lifetime is the provider's.
 */
export interface NbdExportProvider {
  /** Name and description of every export the provider offers now. */
  list(): Promise<Array<{ name: string; description: string }>>;
  /** Export `name` ('' = the default, when no static export exists), or undefined when unknown. */
  open(name: string): Promise<NbdExport | undefined>;
}

/** Options of an NBD server. */
export interface NbdServerOptions {
  /** Consulted for names that are not static exports (see NbdExportProvider). */
  exports?: NbdExportProvider;
  /**
   * pino logger for handshakes, protocol errors and failed requests; each connection logs
   * through a child with `conn` (a number) and `peer` bound. Default: silent.
   */
  log?: Logger;
  /** Milliseconds a client may take to finish the handshake (default 10000). */
  handshakeTimeoutMs?: number;
}

/** Serves BlockDevices as NBD exports. */
export class NbdServer {
  private readonly exports = new Map<string, NbdExport>();
  private defaultExport: string | null = null;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly sessions = new Set<NbdSession>();
  private readonly log: Logger;
  private accepted = 0;

  constructor(private readonly opts: NbdServerOptions = {}) {
    this.log = opts.log ?? pino({ level: 'silent' });
  }

  /** Adds (or replaces) export `name`. The first export added is also the default (''). */
  addExport(name: string, device: BlockDevice, description = ''): void {
    this.exports.set(name, { name, description, device });
    this.defaultExport ??= name;
  }

  /** Removes export `name`; existing sessions keep their device. */
  removeExport(name: string): void {
    this.exports.delete(name);
    if (this.defaultExport === name) this.defaultExport = this.exports.keys().next().value ?? null;
  }

  /** Static export `name` ('' = the default), else the provider's. */
  private async lookup(name: string): Promise<NbdExport | undefined> {
    const own = this.exports.get(name === '' && this.defaultExport ? this.defaultExport : name);
    return own ?? this.opts.exports?.open(name);
  }

  /** Static exports, then the provider's whose names are not static. */
  private async list(): Promise<Array<{ name: string; description: string }>> {
    const out = [...this.exports.values()].map((e) => ({ name: e.name, description: e.description }));
    if (!this.opts.exports) return out;
    for (const e of await this.opts.exports.list()) if (!this.exports.has(e.name)) out.push({ name: e.name, description: e.description });
    return out;
  }

  /** The handshake's view of the exports. */
  private readonly source: ExportSource = { lookup: (n) => this.lookup(n), list: () => this.list() };

  /**
   * Listens on `port` at `host` (TCP) or, when `port` is a string, on that Unix socket path.
   * @returns the bound TCP port (0 for a Unix socket).
   */
  listen(port: number | string, host = '127.0.0.1'): Promise<number> {
    // Paused on accept: accept() moves each connection to a socket that reads into a reused buffer.
    const server = createServer({ noDelay: true, pauseOnConnect: true }, (s) => void this.accept(s));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      const done = (): void => {
        server.off('error', reject);
        const a = server.address();
        resolve(typeof a === 'object' && a ? a.port : 0);
      };
      if (typeof port === 'string') server.listen(port, done);
      else server.listen(port, host, done);
    });
  }

  private async accept(accepted: Socket): Promise<void> {
    // Reads land in one reused buffer per connection and go to the handshake's reader, then
    // to the session (each copies what it keeps); see net/read-buffer.ts.
    let session: NbdSession | null = null;
    let reader: SocketReader | null = null;
    const adopted = adoptWithReadBuffer(accepted, (c) => (session ? session.push(c) : reader!.push(c)));
    const socket = adopted ?? accepted;
    if (!adopted) accepted.resume();
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
    reader = new SocketReader(socket, { manual: adopted !== null });
    const log = this.log.child({ conn: ++this.accepted, peer: `${socket.remoteAddress}:${socket.remotePort}` });
    const timer = setTimeout(() => {
      log.warn('NBD handshake timed out');
      socket.destroy();
    }, this.opts.handshakeTimeoutMs ?? 10000);
    let negotiated;
    try {
      negotiated = await serverHandshake(socket, reader, this.source);
    } catch (e) {
      negotiated = null;
      log.info({ err: (e as Error).message }, 'NBD handshake ended without a transmission phase');
    } finally {
      clearTimeout(timer);
    }
    if (!negotiated) {
      socket.end();
      return;
    }
    const s = new NbdSession(socket, {
      device: negotiated.export.device,
      structured: negotiated.structuredReplies,
      allocationContext: negotiated.allocationContext,
      log: log.child({ export: negotiated.export.name }),
      manual: adopted !== null,
    }, reader.detach());
    session = s;
    log.info({ export: negotiated.export.name, structured: negotiated.structuredReplies }, 'NBD client attached');
    this.sessions.add(s);
    socket.on('close', () => this.sessions.delete(s));
  }

  /** Number of connections in the transmission phase. */
  get connections(): number {
    return this.sessions.size;
  }

  /**
   * Stops accepting, lets in-flight requests finish (new ones get ESHUTDOWN), then closes
   * every connection.
   */
  async close(): Promise<void> {
    const closed = new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    await Promise.all([...this.sessions].map((s) => s.shutdown()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}
