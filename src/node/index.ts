/**
 * src/node: the storage node daemon (run as its own process via main.ts): local partitions,
 * the data-path server, recovery (resync, peering, read repair) and lease fencing.
 */
import { entryPath } from '../runtime/index.ts';
export { NodeServer, staticMapView, type NodeServerOptions, type NodeMapView } from './server.ts';
export { NodeStorage, partitionBytes } from './storage.ts';
export { LeaseTable } from './fencing.ts';

/** Path of the node daemon's entry module, for launching it as a child process. */
export const NODE_MAIN = entryPath('./main', import.meta.url);
