/**
 * Hand-made clusters for tests of the cluster status (src/api/status.ts): a small config,
 * the placement of its volume, each node's recovery report, and map edits (down, out).
 */
import { createClusterConfig, DEFAULT_LAYOUT } from '../../src/cluster/create.ts';
import { buildTopology, type ClusterMap, type MapNode } from '../../src/clustermap/index.ts';
import type { ClusterConfig } from '../../src/config/index.ts';
import { ClusterView } from '../../src/initiator/index.ts';
import { RECOVERY_KINDS, type NodeRecoveryReport, type RecoveryProgress } from '../../src/recovery/report.ts';

/** Bytes in a MiB. */
export const MIB = 2 ** 20;
/** Extents of volume 1 in makeConfig's cluster (1 MiB each). */
export const EXTENTS = 24;

/** A config of `nodes` nodes, 3 replicas, min_size 2, one volume (id 1) of EXTENTS 1 MiB extents. */
export async function makeConfig(nodes = 3): Promise<ClusterConfig> {
  const config = await createClusterConfig({
    ...DEFAULT_LAYOUT,
    nodes,
    devicesPerNode: 1,
    deviceBytes: 64 * MIB,
    partitionsPerDevice: 4,
    volumeBytes: EXTENTS * MIB,
    extentBytes: MIB,
    basePort: 20000,
  });
  config.pools[0].minSize = 2;
  // As cluster.json listed volumes before the catalog: computeStatus still reads them from it.
  config.volumes.push({ id: 1, name: 'vol0', sizeBytes: EXTENTS * MIB, pool: 0, extentBytes: MIB, thin: true, lease: 0 });
  return config;
}

/** Node ids holding each extent of volume 1 (placement of the creation map), by extent index. */
export function placement(config: ClusterConfig): Map<number, number[]> {
  const view = ClusterView.fromConfig(config);
  const out = new Map<number, number[]>();
  for (let e = 0; e < EXTENTS; e++) out.set(e, view.members(1, e, 0).map((l) => view.nodeOf(l)));
  return out;
}

/** Every kind idle, never run (a report's `progress` with nothing to do). */
export function idleKinds(): RecoveryProgress[] {
  return RECOVERY_KINDS.map((kind) => ({ kind, active: false, startedAt: null, finishedAt: null, extentsTotal: 0, extentsDone: 0, bytesTotal: 0, bytesDone: 0, rate: 0 }));
}

/**
 * Each node's report (nodes in `only`, or all): it holds every extent placed on it (bytes =
 * 1 MiB − 4 KiB × extent), nothing missed, every kind idle, no traffic, no rate limit.
 */
export function reports(config: ClusterConfig, only?: number[]): NodeRecoveryReport[] {
  const placed = placement(config);
  return config.nodes
    .filter((n) => !only || only.includes(n.id))
    .map((n) => ({
      node: n.id,
      epoch: 1,
      held: [...placed].filter(([, members]) => members.includes(n.id)).map(([e]) => [1, e, MIB - 4096 * e] as [number, number, number]),
      missed: [],
      stale: [],
      peering: false,
      recovered: { extents: 0, pages: 0, repairs: 0 },
      progress: idleKinds(),
      traffic: { bytesIn: 0, bytesOut: 0, trimmedExtents: 0, trimmedBytes: 0, trimPasses: 0 },
      rateLimit: 0,
    }));
}

/** The next epoch of `map` with `edit` applied to its nodes (topology rebuilt as the authority does). */
export function nextMap(map: ClusterMap, edit: (n: MapNode) => void): ClusterMap {
  const nodes = structuredClone(map.nodes);
  nodes.forEach(edit);
  const epoch = map.epoch + 1;
  return { ...map, epoch, change: 'test', nodes, topology: buildTopology(nodes, epoch, map.topology) };
}

/** `map` with nodes `down` marked down. */
export const withDown = (map: ClusterMap, down: number[]): ClusterMap => nextMap(map, (n) => {
  if (down.includes(n.id)) {
    n.up = false;
    n.downSince = 1;
  }
});

/** Sum of the bytes of extents 0..n−1 as reports() holds them. */
export const totalBytes = (n: number): number => Array.from({ length: n }, (_, e) => MIB - 4096 * e).reduce((a, b) => a + b, 0);
