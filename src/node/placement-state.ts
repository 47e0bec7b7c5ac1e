/**
 * What a node has caught up with, in terms of placement: the fingerprint of what placement
 * computes from a map, and whether a partition is out of placement.
 */
import { crc32c } from '@node-rs/crc32';
import { decodePartitionLeafId } from '../../placement/index.ts';
import { canonical, placementTopology, type ClusterMap } from '../clustermap/index.ts';

/** Placement fingerprint of a node that never caught up with any placement (matches none). */
export const UNKNOWN_PLACEMENT = -1;
/**
 * What a node has caught up with: the inEpoch of its last full peering (0 forces one, e.g.
 * after a crash) and the placement (fingerprint of the map's placement topology) whose
 * extents it has pulled.
 */
export interface PeeringState {
  fullPeeredAt: number;
  placement: number;
}

/**
 * Fingerprint of what placement computes from `map`: crc32c of its placement topology
 * (weights, in/out, tree) without the epoch, in canonical JSON (sorted keys), so that a map
 * built in memory and the same map decoded from the wire agree. Equal fingerprints place
 * every extent alike.
 */
export function placementFingerprint(map: ClusterMap): number {
  return crc32c(Buffer.from(canonical({ ...placementTopology(map), epoch: 0 })));
}

/** Whether partition `leaf` is out of placement in `map` (its node or device is out or gone). */
export function leafOut(map: ClusterMap, leaf: number): boolean {
  const { host, device } = decodePartitionLeafId(leaf);
  const n = map.nodes.find((x) => x.id === host);
  const d = n?.devices.find((x) => x.id === device);
  return !n || !n.in || !d || !d.in;
}

