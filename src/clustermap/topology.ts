/**
 * Deriving the placement topology (placement/'s TopologyMap) from the map's nodes, and the
 * two ways the data path looks at it: placement (weights and in/out only) and routing
 * (up/down).
 *
 * A topology is not a pure function of the nodes: placement/ keeps draw weights and grafts
 * so that an epoch moves only the data that must move (a lowered weight or an out leaf is
 * replaced in place; an addition is grafted and only attracts data). buildTopology
 * therefore edits the previous epoch's topology when it is given one, and checkTopology
 * verifies that a received topology carries exactly what its nodes say.
 */
import {
  MAP_FORMAT,
  defaultRules,
  deviceBucketId,
  hostBucketId,
  partitionLeafId,
  setLeafWeight,
  validateMap,
  type Bucket,
  type Leaf,
  type TopologyMap,
} from '../../placement/index.ts';
import type { ClusterMap, MapNode } from './types.ts';

const TIB = 2 ** 40;
const ROOT = -1;

/**
 * A fresh (compacted) topology of `nodes`: leaf weight = partition bytes in TiB × node
 * reweight × device reweight, draw weight = weight; leaf up = node up; leaf in = node in
 * and device in. Device ids may be sparse (they stay stable when a device is removed).
 */
function freshTopology(nodes: MapNode[], epoch: number): TopologyMap {
  const root: Bucket = { id: ROOT, name: 'root', type: 'root', children: [] };
  const buckets: Bucket[] = [root];
  const leaves: Leaf[] = [];
  for (const n of [...nodes].sort((a, b) => a.id - b.id)) {
    const hb: Bucket = { id: hostBucketId(n.id), name: `node${n.id}`, type: 'host', children: [] };
    buckets.push(hb);
    root.children.push(hb.id);
    for (const d of [...n.devices].sort((a, b) => a.id - b.id)) {
      const db: Bucket = { id: deviceBucketId(n.id, d.id), name: `node${n.id}.dev${d.id}`, type: 'device', children: [] };
      buckets.push(db);
      hb.children.push(db.id);
      const capacityBytes = Math.floor(d.sizeBytes / d.partitions);
      const weight = (capacityBytes / TIB) * n.reweight * d.reweight;
      for (let p = 0; p < d.partitions; p++) {
        const id = partitionLeafId(n.id, d.id, p);
        leaves.push({ id, name: `${db.name}.p${p}`, capacityBytes, weight, drawWeight: weight, up: n.up, in: n.in && d.in });
        db.children.push(id);
      }
    }
  }
  return { format: MAP_FORMAT, epoch, types: ['root', 'rack', 'host', 'device'], leafType: 'partition', root: ROOT, buckets, leaves, rules: defaultRules(false), grafts: [] };
}

/**
 * Builds root -> host -> device -> partition for `nodes` at `epoch`. Leaf weight =
 * partition bytes in TiB × node reweight × device reweight; leaf up = node up; leaf in =
 * node in and device in. Leaf ids are partitionLeafId(node, device id, partition).
 *
 * With `previous` (the topology of the epoch before), the result is `previous` edited so
 * that only data that must move moves (placement/'s edit policy): new hosts and new devices
 * of existing hosts are grafted (they only attract data); partitions of removed devices
 * and nodes are retired in place (weight 0, out; kept until a compaction, so nothing else
 * moves); up/in states are set directly, and weights go through placement/'s setLeafWeight
 * (growth past the draw weight is grafted). Without `previous`, a fresh compacted map.
 * @throws RangeError on node or device ids outside placement/'s id scheme;
 *   MapValidationError if the result is not a valid map.
 */
export function buildTopology(nodes: MapNode[], epoch: number, previous?: TopologyMap): TopologyMap {
  const target = freshTopology(nodes, epoch);
  if (!previous) {
    validateMap(target);
    return target;
  }
  const map = structuredClone(previous);
  const buckets = new Map(map.buckets.map((b) => [b.id, b]));
  const targetBuckets = new Map(target.buckets.map((b) => [b.id, b]));
  const targetLeaves = new Map(target.leaves.map((l) => [l.id, l]));
  // Additions: a new host is grafted whole; a new device of a known host is grafted alone.
  for (const hb of target.buckets.filter((b) => b.type === 'host')) {
    const known = buckets.get(hb.id);
    const host = known ?? { ...hb, children: [] };
    if (!known) {
      map.buckets.push(host);
      buckets.set(host.id, host);
      buckets.get(map.root)!.children.push(host.id);
      map.grafts.push({ node: host.id });
    }
    for (const dbId of hb.children) {
      if (buckets.has(dbId)) continue;
      const db = structuredClone(targetBuckets.get(dbId)!);
      map.buckets.push(db);
      buckets.set(db.id, db);
      host.children.push(db.id);
      for (const leafId of db.children) map.leaves.push({ ...targetLeaves.get(leafId)! });
      if (known) map.grafts.push({ node: db.id });
    }
  }
  // Removals are retired in place; up/in states are plain facts (draws never read them).
  for (const l of map.leaves) {
    const t = targetLeaves.get(l.id);
    if (!t) {
      l.weight = 0;
      l.in = false;
    } else {
      l.up = t.up;
      l.in = t.in;
    }
  }
  map.epoch = epoch;
  validateMap(map);
  // Weights go through placement/'s edit, which grafts growth beyond the draw weight.
  let edited = map;
  const current = new Map(map.leaves.map((l) => [l.id, l]));
  for (const t of target.leaves) {
    if (current.get(t.id)!.weight !== t.weight) edited = setLeafWeight(edited, t.id, t.weight);
  }
  return edited === map ? map : { ...edited, epoch };
}

/**
 * Checks that `map.topology` carries what `map.nodes` say: every partition of the nodes
 * with the weight, capacity and up/in state buildTopology derives, and any other partition
 * retired (weight 0, out). Draw weights and grafts are history and are not checked here
 * (the map is signed by the authority).
 * @returns a description of the first mismatch, or null when consistent.
 */
export function checkTopology(map: ClusterMap): string | null {
  const target = freshTopology(map.nodes, map.epoch);
  const t = map.topology;
  if (t.epoch !== map.epoch) return `topology epoch ${t.epoch} is not the map's ${map.epoch}`;
  const have = new Map(t.leaves.map((l) => [l.id, l]));
  for (const w of target.leaves) {
    const l = have.get(w.id);
    if (!l) return `partition ${w.name} of the nodes is missing from the topology`;
    if (l.weight !== w.weight || l.capacityBytes !== w.capacityBytes || l.up !== w.up || l.in !== w.in) {
      return `partition ${w.name}: topology says weight ${l.weight} up ${l.up} in ${l.in}, the nodes weight ${w.weight} up ${w.up} in ${w.in}`;
    }
    have.delete(w.id);
  }
  for (const l of have.values()) {
    if (l.weight !== 0 || l.in) return `partition ${l.name} belongs to no node but is not retired (weight 0, out)`;
  }
  return null;
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
