/**
 * Socket reads into one reused buffer for accepted connections. net.connect() takes an
 * `onread` option (reads land in a buffer the caller owns, no allocation per read), but
 * net.Server does not: each read of an accepted socket allocates a fresh 64 KiB Buffer.
 * At hundreds of MB/s of NBD writes that is thousands of short-lived ArrayBuffers per
 * second, and V8 answers the external-memory growth with full mark-compact collections of
 * the whole heap (about ten per second in `cairn up`, measured with --trace-gc). This moves
 * an accepted socket's handle into a socket created with `onread`, so the frontend reads
 * into its own buffer and copies only what it keeps (DESIGN "Performance principles").
 */
import { Socket } from 'node:net';

/** A chunk as read: valid only during the call (the buffer is reused for the next read). */
export type TransientChunk = (chunk: Buffer) => void;

/**
 * Takes over `accepted` (a socket from a net.Server created with `pauseOnConnect: true`,
 * nothing read from it yet) and returns a socket on the same connection whose reads go to
 * `onChunk` through a reused buffer of `bufferBytes`. 'end', 'close', 'error', pause(),
 * resume() and writes behave as usual on the returned socket; `accepted` must not be used
 * again (it is destroyed, without closing the connection, when the new socket closes, so the
 * server's connection count stays right). Returns null when the socket has no handle to
 * move (then keep using `accepted` with 'data' events).
 */
export function adoptWithReadBuffer(accepted: Socket, onChunk: TransientChunk, bufferBytes = 256 * 1024): Socket | null {
  const holder = accepted as unknown as { _handle?: object | null };
  const handle = holder._handle;
  if (!handle) return null;
  holder._handle = null; // the old socket no longer owns the connection
  const buffer = Buffer.allocUnsafe(bufferBytes);
  const s = new Socket({
    handle,
    readable: true,
    writable: true,
    onread: { buffer, callback: (n: number, b: Uint8Array) => (onChunk((b as Buffer).subarray(0, n)), true) },
  } as ConstructorParameters<typeof Socket>[0] & { handle: object });
  s.once('close', () => accepted.destroy());
  return s;
}
