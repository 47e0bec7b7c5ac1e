/** The creation map (epoch 1), derived from cluster.json the same way on every peer. */
import type { ClusterConfig } from '../config/index.ts';
import { buildTopology } from './topology.ts';
import type { ClusterMap, MapNode } from './types.ts';

/**
 * The epoch-1 map of `config`: every node up and in, weights from capacity. Deterministic
 * (createdAt 0), so every peer derives identical bytes from the same cluster.json.
 * @throws Error when a node lacks its gossip or API port (run upgradeConfig first).
 */
export function initialMap(config: ClusterConfig): ClusterMap {
  const nodes: MapNode[] = config.nodes.map((n) => {
    if (n.gossipPort === undefined || n.apiPort === undefined) throw new Error(`node ${n.id} has no gossip or API port in cluster.json`);
    return {
      id: n.id,
      host: n.host,
      port: n.port,
      gossipPort: n.gossipPort,
      apiPort: n.apiPort,
      devices: n.devices.map((d, i) => ({ id: i, path: d.path, sizeBytes: d.sizeBytes, partitions: d.partitions, in: true, reweight: 1 })),
      up: true,
      in: true,
      reweight: 1,
      downSince: null,
      autoOut: false,
    };
  });
  return { format: 1, clusterId: config.clusterId, epoch: 1, createdAt: 0, change: 'cluster created', nodes, topology: buildTopology(nodes, 1) };
}
