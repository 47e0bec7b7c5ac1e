/**
 * Cluster-wide figures for a namespace's SMART / Health log page (NVMe Base 2.0, 5.16.1.3):
 * the free share of the pool that backs a cluster volume, from the storage nodes' latest
 * heartbeats as the management API reports them (GET /v1/nodes). Read when a host asks for
 * the log page (rarely), never on the I/O path.
 */
import { ApiClient } from '../api/index.ts';
import type { ClusterMap } from '../clustermap/index.ts';
import type { VolumeHealth } from './subsystem.ts';

/** One node row of GET /v1/nodes, as far as the free share needs it. */
interface NodeSpace {
  in: boolean;
  capacityBytes: number;
  liveBytes: number;
}

/**
 * The pool's free share, 0..1: 1 − live bytes ÷ capacity bytes summed over the nodes that
 * are in (live, not allocated: the cleaner returns dead log space to the free pool), as
 * `poolFreeFraction` (reported as Available Spare). Asks the management API of the first up
 * node of `map` that has one, within `timeoutMs` (default 2000).
 * @throws ApiError when no node answers (the caller falls back to its own figures).
 */
export async function poolHealth(map: ClusterMap, token: string, timeoutMs = 2000): Promise<VolumeHealth> {
  const n = map.nodes.find((x) => x.up && x.apiPort);
  if (!n) throw new Error('no up node with a management API in the map');
  const api = new ApiClient(`http://${n.host}:${n.apiPort}`, token, timeoutMs);
  const r = await api.call<{ nodes: NodeSpace[] }>('GET', '/v1/nodes');
  let capacity = 0;
  let live = 0;
  for (const x of r.nodes) {
    if (!x.in) continue;
    capacity += x.capacityBytes;
    live += x.liveBytes;
  }
  return { poolFreeFraction: capacity > 0 ? Math.max(0, 1 - live / capacity) : 0 };
}
