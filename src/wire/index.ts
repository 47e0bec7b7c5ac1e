/** src/wire: the binary, pipelined data-path protocol (codec, frame splitter, client, pool). */
export * from './protocol.ts';
export { FrameReader } from './frame-reader.ts';
export { ConnectionError, WireClient, type Reply, type WireClientOptions } from './client.ts';
export { ConnectionPool, type ConnectionPoolOptions, type NodeAddress } from './pool.ts';
