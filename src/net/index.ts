/** src/net: socket helpers shared by the data-path protocol, NBD and NVMe/TCP, and fixed-port picking for servers. */
export { TickCork, type CorkRelease } from './tick-cork.ts';
export { BufferPool, writeHeld, type BufferPoolOptions } from './buffer-pool.ts';
export { CopySlab, SLAB_BYTES } from './copy-slab.ts';
export { adoptWithReadBuffer, type TransientChunk } from './read-buffer.ts';
export { freePorts, RESERVE_MS } from './ports.ts';
export { DEFAULT_NODE_POLL_US, DEFAULT_POLL_US, NODE_POLL_MIN_CPUS, POLL_MAX_INFLIGHT, LoopPoller, defaultNodePollUs, loopPoll, pollFromEnv } from './loop-poll.ts';
export { isLoopback, localSocketPath, localSocketsEnabled } from './local-socket.ts';
