/**
 * Connections to storage nodes by node id: connected lazily, one connection per node,
 * shared by every caller; a node that refused a connection is not retried for a short
 * back-off so a dead node costs one refused connect, not one per I/O.
 */
import { ConnectionError, WireClient } from './client.ts';

/** Where a node listens. */
export interface NodeAddress {
  host: string;
  port: number;
}

/** Pool options. */
export interface ConnectionPoolOptions {
  token: string;
  /** Resolves a node id to its address (undefined: unknown node). */
  address: (node: number) => NodeAddress | undefined;
  /** Milliseconds to wait before retrying a node that refused (default 500). */
  backoffMs?: number;
  /** Per-request timeout in ms (default 15000). */
  timeoutMs?: number;
}

/** A pool of WireClients keyed by node id. */
export class ConnectionPool {
  private readonly clients = new Map<number, WireClient>();
  private readonly connecting = new Map<number, Promise<WireClient>>();
  private readonly downUntil = new Map<number, number>();
  private closed = false;

  constructor(private readonly opts: ConnectionPoolOptions) {}

  /**
   * The connected client for `node` when there is one now, else undefined (then use get()).
   * Synchronous, for the per-request path: no promise to await when the connection is up.
   */
  ready(node: number): WireClient | undefined {
    const c = this.clients.get(node);
    return c && c.alive ? c : undefined;
  }

  /**
   * A connected client for `node`.
   * @throws ConnectionError when the node is unknown, refuses, or was refused recently.
   */
  get(node: number): Promise<WireClient> {
    const c = this.ready(node);
    if (c) return Promise.resolve(c);
    const pending = this.connecting.get(node);
    if (pending) return pending;
    if (this.closed) return Promise.reject(new ConnectionError('ECONNLOST', 'connection pool is closed'));
    const until = this.downUntil.get(node) ?? 0;
    if (until > Date.now()) return Promise.reject(new ConnectionError('ECONNREFUSED', `node ${node} is unreachable (retry after back-off)`));
    const addr = this.opts.address(node);
    if (!addr) return Promise.reject(new ConnectionError('ECONNREFUSED', `node ${node} is not in the map`));
    const client = new WireClient({ host: addr.host, port: addr.port, token: this.opts.token, timeoutMs: this.opts.timeoutMs });
    const p = client.connect().then(
      () => {
        this.connecting.delete(node);
        if (this.closed) {
          client.close();
          throw new ConnectionError('ECONNLOST', 'connection pool is closed');
        }
        this.clients.set(node, client);
        this.downUntil.delete(node);
        client.once('close', () => {
          if (this.clients.get(node) === client) this.clients.delete(node);
        });
        return client;
      },
      (e: unknown) => {
        this.connecting.delete(node);
        this.downUntil.set(node, Date.now() + (this.opts.backoffMs ?? 500));
        throw e;
      },
    );
    this.connecting.set(node, p);
    return p;
  }

  /** Connections open now (one per node at most). */
  get size(): number {
    let n = 0;
    for (const c of this.clients.values()) if (c.alive) n++;
    return n;
  }

  /** Forgets the back-off of `node` (e.g. after it was seen up again). */
  forgive(node: number): void {
    this.downUntil.delete(node);
  }

  /**
   * Closes the connection to `node`, if any: its pending requests fail at once with
   * ConnectionError (used when the map marks the node down, so that I/O waiting on a
   * stopped or partitioned node moves on instead of waiting for the request timeout).
   */
  drop(node: number): void {
    const c = this.clients.get(node);
    if (!c) return;
    this.clients.delete(node);
    c.close();
  }

  /** Closes every connection; later get() calls fail. */
  close(): void {
    this.closed = true;
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
