/**
 * Deriving the placement topology (placement/'s TopologyMap) from the map's nodes, and the
 * two ways the data path looks at it: placement (weights and in/out only) and routing
 * (up/down).
 */
import { partitionLeafId, type Bucket, type Leaf, type TopologyMap } from '../../placement/index.ts';
import type { ClusterMap, MapNode } from './types.ts';

const TIB = 2 ** 40;

/**
 * Builds root -> host -> device -> partition for `nodes` at `epoch`. Leaf weight =
 * partition bytes in TiB × node reweight × device reweight; leaf up = node up; leaf in =
 * node in and device in. Leaf ids are partitionLeafId(node, device id, partition).
 */
export function buildTopology(nodes: MapNode[], epoch: number): TopologyMap {
  const root: Bucket = { id: -1, name: 'root', type: 'root', children: [] };
  const buckets: Bucket[] = [root];
  const leaves: Leaf[] = [];
  let next = -2;
  for (const n of [...nodes].sort((a, b) => a.id - b.id)) {
    const hb: Bucket = { id: next--, name: `node${n.id}`, type: 'host', children: [] };
    buckets.push(hb);
    root.children.push(hb.id);
    for (const d of [...n.devices].sort((a, b) => a.id - b.id)) {
      const db: Bucket = { id: next--, name: `node${n.id}.dev${d.id}`, type: 'device', children: [] };
      buckets.push(db);
      hb.children.push(db.id);
      for (let p = 0; p < d.partitions; p++) {
        const id = partitionLeafId(n.id, d.id, p);
        leaves.push({ id, name: `${db.name}.p${p}`, weight: (d.sizeBytes / d.partitions / TIB) * n.reweight * d.reweight, up: n.up, in: n.in && d.in });
        db.children.push(id);
      }
    }
  }
  return { epoch, root: -1, buckets, leaves };
}

/**
 * The topology used for data placement: every leaf counted as up, so that marking a node
 * down (a routing fact) never moves data; only weights and in/out change placement.
 */
export function placementTopology(map: ClusterMap): TopologyMap {
  return { ...map.topology, leaves: map.topology.leaves.map((l) => (l.up ? l : { ...l, up: true })) };
}

/** Node `id` of `map`, or undefined. */
export function mapNode(map: ClusterMap, id: number): MapNode | undefined {
  return map.nodes.find((n) => n.id === id);
}
