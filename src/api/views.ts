/** Shapes the management API returns, computed from a map and the latest heartbeats. */
import type { ClusterMap } from '../clustermap/index.ts';
import type { HeartbeatRecord } from '../gossip/index.ts';
import { decodePartitionLeafId } from '../../placement/index.ts';

/** One row of `GET /v1/nodes` (bytes; weight in TiB-equivalents). */
export interface NodeRow {
  id: number;
  address: string;
  up: boolean;
  in: boolean;
  reweight: number;
  /** Sum of the node's leaf weights in the map (0 when out). */
  weight: number;
  devices: number;
  capacityBytes: number;
  usedBytes: number;
  liveBytes: number;
  /** Milliseconds since its last heartbeat reached this node, or null if none yet. */
  heartbeatAgeMs: number | null;
  /** The epoch the node reported in its last heartbeat, or null. */
  epochSeen: number | null;
  /** Bytes of each volume's mapped pages this node stores (every copy counts), from its last heartbeat. */
  volumes: Array<{ volume: number; storedBytes: number }>;
}

/** The node table of `map`, with space figures from the latest heartbeats. */
export function nodeList(map: ClusterMap, heartbeats: Map<number, HeartbeatRecord>, now: number): NodeRow[] {
  return map.nodes.map((n) => {
    const r = heartbeats.get(n.id);
    const parts = r?.hb.partitions ?? [];
    const leaves = map.topology.leaves.filter((l) => decodePartitionLeafId(l.id).host === n.id);
    return {
      id: n.id,
      address: `${n.host}:${n.port}`,
      up: n.up,
      in: n.in,
      reweight: n.reweight,
      weight: leaves.reduce((s, l) => s + (l.in ? l.weight : 0), 0),
      devices: n.devices.length,
      capacityBytes: parts.length ? parts.reduce((s, p) => s + p.capacityBytes, 0) : n.devices.reduce((s, d) => s + d.sizeBytes, 0),
      usedBytes: parts.reduce((s, p) => s + p.usedBytes, 0),
      liveBytes: parts.reduce((s, p) => s + p.liveBytes, 0),
      heartbeatAgeMs: r ? now - r.receivedAt : null,
      epochSeen: r ? r.hb.epoch : null,
      volumes: r?.hb.volumes ?? [],
    };
  });
}
