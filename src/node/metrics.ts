/**
 * The storage node's Prometheus source (src/metrics NodeMetricsSource): partitions from the
 * allocators, fsyncs, connections, the map and the recovery state this node holds.
 */
import { syncCount, syncIoFigures } from '../../allocator/index.ts';
import type { ClusterMap } from '../clustermap/index.ts';
import type { NodeMetricsSource } from '../metrics/index.ts';
import type { MissedLog } from '../recovery/index.ts';
import type { NodeServer } from './server.ts';
import type { NodeStorage } from './storage.ts';

/**
 * A NodeMetricsSource over a node's parts. `server` is read at scrape time (the server is
 * made after the metrics it reports to); before it exists, connections and recovery read 0.
 */
export function nodeMetricsSource(o: { storage: NodeStorage; server: () => NodeServer | undefined; map: () => ClusterMap; missed: MissedLog }): NodeMetricsSource {
  return {
    partitions: () => [...o.storage.partitions].map(([leaf, a]) => ({ leaf, ...a.stats() })),
    fsyncs: syncCount,
    syncIo: syncIoFigures,
    connections: () => o.server()?.connections() ?? { in: 0, out: 0 },
    epoch: () => o.map().epoch,
    nodes: () => {
      const n = o.map().nodes;
      const up = n.filter((x) => x.up).length;
      const inn = n.filter((x) => x.in).length;
      return { up, down: n.length - up, in: inn, out: n.length - inn };
    },
    recovery: () => o.server()?.recovery.progress.snapshot() ?? [],
    staleExtents: () => o.server()?.recovery.staleCount() ?? 0,
    degradedExtents: () => new Set(o.missed.all().map((m) => `${m.volume}/${m.extent}`)).size,
    volumeIo: () => o.server()?.volumeIo() ?? [],
  };
}
