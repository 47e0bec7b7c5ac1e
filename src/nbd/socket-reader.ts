/**
 * Exact-length reads from a socket for the NBD handshake phase: `read(n)` resolves with
 * exactly n bytes, or rejects when the socket ends first. `detach()` hands back whatever
 * arrived beyond the last read, for the transmission phase's parser.
 */
import type { Socket } from 'node:net';

/** Thrown when the peer closed the connection in the middle of a handshake read. */
export class PeerClosedError extends Error {
  override name = 'PeerClosedError';
}

/**
 * Buffered, promise-based reader over a socket's 'data' events — or, with `manual`, over
 * the chunks given to push() (a socket read through a reused buffer, see net/read-buffer).
 */
export class SocketReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private want: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  private ended = false;
  private readonly onData = (c: Buffer): void => {
    this.chunks.push(c);
    this.buffered += c.length;
    this.tryServe();
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    if (this.want) {
      this.want.reject(new PeerClosedError('peer closed the connection'));
      this.want = null;
    }
  };

  constructor(private readonly socket: Socket, o: { manual?: boolean } = {}) {
    if (!o.manual) socket.on('data', this.onData);
    socket.on('close', this.onEnd);
    socket.on('end', this.onEnd);
  }

  /** Adds bytes read from the socket (manual mode); `chunk` is copied, it may be reused after the call. */
  push(chunk: Buffer): void {
    if (chunk.length) this.onData(Buffer.from(chunk));
  }

  /** Resolves with exactly `n` bytes. Only one read may be pending at a time. */
  read(n: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (this.ended && this.buffered < n) return reject(new PeerClosedError('peer closed the connection'));
      this.want = { n, resolve, reject };
      this.tryServe();
    });
  }

  private tryServe(): void {
    const w = this.want;
    if (!w || this.buffered < w.n) return;
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.buffered);
    const out = Buffer.from(all.subarray(0, w.n));
    const rest = all.subarray(w.n);
    this.chunks = rest.length ? [rest] : [];
    this.buffered = rest.length;
    this.want = null;
    w.resolve(out);
  }

  /** Stops listening and returns the unread bytes. */
  detach(): Buffer {
    this.socket.off('data', this.onData);
    this.socket.off('close', this.onEnd);
    this.socket.off('end', this.onEnd);
    const rest = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.buffered);
    this.chunks = [];
    this.buffered = 0;
    return rest;
  }
}
