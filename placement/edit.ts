/**
 * Map edits: pure functions from one map to the next epoch's map. They encode the policy
 * that keeps data movement minimal:
 * - additions become grafts (drawn beside the compacted tree: data only flows to them);
 * - lowering a weight, marking out/down or removing a host leaves draw weights alone (the
 *   affected positions are replaced in place);
 * - raising a weight past the draw weight grafts the excess;
 * - compaction folds everything back (draw weights := weights, no grafts), which is the one
 *   edit that moves data like a fresh map would, and is run when the operator chooses.
 */
import { hostBucketId, hostSubtree, rackBucketId, type HostSpec } from './build.ts';
import type { Bucket, Graft, Leaf, TopologyMap } from './map.ts';
import { validateMap } from './validate.ts';

function clone(map: TopologyMap): TopologyMap {
  return structuredClone(map);
}

function finish(map: TopologyMap, base: TopologyMap): TopologyMap {
  map.epoch = base.epoch + 1;
  validateMap(map);
  return map;
}

function leafOf(map: TopologyMap, id: number): Leaf {
  const l = map.leaves.find((x) => x.id === id);
  if (!l) throw new RangeError(`no leaf with id ${id}`);
  return l;
}

/**
 * Adds hosts (ids, racks and devices as in buildMap). A host joining an existing rack is
 * grafted itself; a host in a new rack grafts the new rack. Returns the next epoch.
 * @throws RangeError for a host id already present or out of range;
 *   MapValidationError if the result is invalid.
 */
export function addHosts(map: TopologyMap, hosts: HostSpec[]): TopologyMap {
  const next = clone(map);
  const byId = new Map(next.buckets.map((b) => [b.id, b]));
  const root = byId.get(next.root)!;
  for (const h of hosts) {
    if (byId.has(hostBucketId(h.id))) throw new RangeError(`host ${h.id} is already in the map`);
    const sub = hostSubtree(h);
    let parent: Bucket = root;
    let graft = sub.buckets[0].id;
    if (h.rack !== undefined) {
      const rid = rackBucketId(h.rack);
      let rb = byId.get(rid);
      if (!rb) {
        rb = { id: rid, name: `rack${h.rack}`, type: 'rack', children: [] };
        next.buckets.push(rb);
        byId.set(rid, rb);
        root.children.push(rid);
        next.grafts.push({ node: rid });
      }
      parent = rb;
      // Inside a rack added by this or an earlier edit the rack graft already covers the host.
      if (next.grafts.some((g) => g.node === rid && g.extra === undefined)) graft = 0;
    }
    parent.children.push(sub.buckets[0].id);
    for (const b of sub.buckets) byId.set(b.id, b);
    next.buckets.push(...sub.buckets);
    next.leaves.push(...sub.leaves);
    if (graft !== 0) next.grafts.push({ node: graft });
  }
  return finish(next, map);
}

/**
 * Retires host `hostId` (a host number of the build id scheme): every leaf below it gets
 * weight 0 and is marked out. The buckets stay until compaction, so nothing else moves.
 * @throws RangeError if the host is not in the map.
 */
export function removeHost(map: TopologyMap, hostId: number): TopologyMap {
  const next = clone(map);
  const hb = next.buckets.find((b) => b.id === hostBucketId(hostId));
  if (!hb) throw new RangeError(`host ${hostId} is not in the map`);
  const byId = new Map(next.buckets.map((b) => [b.id, b]));
  const leaves = new Map(next.leaves.map((l) => [l.id, l]));
  const stack = [hb.id];
  while (stack.length > 0) {
    const b = byId.get(stack.pop()!)!;
    for (const c of b.children) {
      if (c < 0) stack.push(c);
      else {
        const l = leaves.get(c)!;
        l.weight = 0;
        l.in = false;
      }
    }
  }
  return finish(next, map);
}

/**
 * Sets leaf `leafId`'s target weight. Up to its draw weight (plus earlier growth) only the
 * weight changes; beyond it, the excess is grafted as extra draw weight.
 * @throws RangeError for an unknown leaf or a weight that is not finite and >= 0.
 */
export function setLeafWeight(map: TopologyMap, leafId: number, weight: number): TopologyMap {
  if (!(Number.isFinite(weight) && weight >= 0)) throw new RangeError(`weight ${weight} must be finite and >= 0`);
  const next = clone(map);
  const l = leafOf(next, leafId);
  let extra = 0;
  let g: Graft | undefined;
  for (const x of next.grafts) {
    if (x.node === leafId && x.extra !== undefined) {
      extra += x.extra;
      g = x;
    }
  }
  l.weight = weight;
  const excess = weight - (l.drawWeight + extra);
  if (excess > 0) {
    if (g) g.extra = g.extra! + excess;
    else next.grafts.push({ node: leafId, extra: excess });
  }
  return finish(next, map);
}

/**
 * Sets leaf `leafId`'s up/down and in/out state (fields left undefined keep their value).
 * @throws RangeError for an unknown leaf.
 */
export function setLeafState(map: TopologyMap, leafId: number, state: { up?: boolean; in?: boolean }): TopologyMap {
  const next = clone(map);
  const l = leafOf(next, leafId);
  if (state.up !== undefined) l.up = state.up;
  if (state.in !== undefined) l.in = state.in;
  return finish(next, map);
}

/**
 * Compacts the map: drops leaves that are out with weight 0 and buckets left empty (never
 * the root), sets every draw weight to the leaf's weight and clears the grafts. The next
 * epoch then places data exactly like a freshly built map with these weights.
 */
export function compactMap(map: TopologyMap): TopologyMap {
  const next = clone(map);
  const gone = new Set(next.leaves.filter((l) => l.weight === 0 && !l.in).map((l) => l.id));
  next.leaves = next.leaves.filter((l) => !gone.has(l.id));
  for (const l of next.leaves) l.drawWeight = l.weight;
  // Remove emptied buckets bottom-up until nothing changes.
  for (;;) {
    for (const b of next.buckets) b.children = b.children.filter((c) => !gone.has(c));
    const empty = next.buckets.filter((b) => b.id !== next.root && b.children.length === 0 && !gone.has(b.id));
    if (empty.length === 0) break;
    for (const b of empty) gone.add(b.id);
    next.buckets = next.buckets.filter((b) => !gone.has(b.id));
  }
  next.grafts = [];
  return finish(next, map);
}
