/** src/net: socket helpers shared by the data-path protocol, NBD and NVMe/TCP. */
export { TickCork, type CorkRelease } from './tick-cork.ts';
export { BufferPool, writeHeld, type BufferPoolOptions } from './buffer-pool.ts';
export { adoptWithReadBuffer, type TransientChunk } from './read-buffer.ts';
