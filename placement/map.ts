/**
 * The topology map: a tree of typed buckets whose leaves are device partitions.
 * Weights live on leaves (derived from capacity); a bucket's weight is the sum of its
 * children's. Bucket ids are negative, leaf ids are non-negative (as in CRUSH).
 */

/** A leaf of the tree: one partition of one device. `weight` is relative (e.g. TiB). */
export interface Leaf {
  /** Non-negative, unique among leaves. */
  id: number;
  name: string;
  /** Relative weight, finite and >= 0; 0 means "receives nothing". */
  weight: number;
  /** Reachable (up) or not (down). A down leaf is skipped by selection. */
  up: boolean;
  /** Part of data placement (in) or drained (out). An out leaf is skipped by selection. */
  in: boolean;
}

/** An interior node of the tree (root, zone, rack, host, device, ...). */
export interface Bucket {
  /** Negative, unique among buckets. */
  id: number;
  name: string;
  /** Free-form type name, e.g. "root", "host", "device"; rules select by it. */
  type: string;
  /** Ids of child buckets (< 0) or leaves (>= 0). */
  children: number[];
}

/** The whole map, versioned by a monotonically increasing epoch. */
export interface TopologyMap {
  epoch: number;
  /** Id of the root bucket. */
  root: number;
  buckets: Bucket[];
  leaves: Leaf[];
}

/** Thrown for a structurally invalid map (dangling child, duplicate id, bad weight). */
export class MapValidationError extends Error {
  override name = 'MapValidationError';
}

/**
 * Checks the map's structure: unique ids, every child resolvable, finite non-negative
 * weights, a root that exists, no cycles (every node reached at most once from the root).
 * @throws MapValidationError naming the first problem found.
 */
export function validateMap(map: TopologyMap): void {
  const buckets = new Map<number, Bucket>();
  const leaves = new Map<number, Leaf>();
  for (const b of map.buckets) {
    if (!(b.id < 0)) throw new MapValidationError(`bucket ${b.name}: id ${b.id} must be negative`);
    if (buckets.has(b.id)) throw new MapValidationError(`duplicate bucket id ${b.id}`);
    buckets.set(b.id, b);
  }
  for (const l of map.leaves) {
    if (!(l.id >= 0) || !Number.isInteger(l.id)) throw new MapValidationError(`leaf ${l.name}: id ${l.id} must be a non-negative integer`);
    if (leaves.has(l.id)) throw new MapValidationError(`duplicate leaf id ${l.id}`);
    if (!Number.isFinite(l.weight) || l.weight < 0) throw new MapValidationError(`leaf ${l.name}: weight ${l.weight} must be finite and >= 0`);
    leaves.set(l.id, l);
  }
  if (!buckets.has(map.root)) throw new MapValidationError(`root bucket ${map.root} does not exist`);
  const seen = new Set<number>();
  const visit = (id: number): void => {
    if (seen.has(id)) throw new MapValidationError(`node ${id} is reachable twice (cycle or shared child)`);
    seen.add(id);
    if (id >= 0) {
      if (!leaves.has(id)) throw new MapValidationError(`dangling reference to leaf ${id}`);
      return;
    }
    const b = buckets.get(id);
    if (!b) throw new MapValidationError(`dangling reference to bucket ${id}`);
    for (const c of b.children) visit(c);
  };
  visit(map.root);
}
