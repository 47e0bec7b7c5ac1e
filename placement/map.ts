/**
 * The topology map model: a tree of typed buckets whose leaves are device partitions, the
 * placement rules, and the record of what was added since the map was last compacted.
 * Bucket ids are negative and leaf ids non-negative, as in CRUSH (Weil et al., SC 2006).
 *
 * Weights. A leaf has three numbers:
 * - `capacityBytes`: the partition's size in bytes (a fact);
 * - `weight`: the share of data it should hold (relative; the builder derives it from
 *   capacity in TiB, an operator may override it; 0 = hold nothing);
 * - `drawWeight`: the weight the selection draws with. It is the leaf's weight as of the
 *   last compaction (or of its addition) and is changed only by compaction. When `weight`
 *   is lower (a drain, a weight set to 0) the leaf keeps the draw and hands the excess to
 *   in-place replacements, which moves only the data that must move; see select.ts.
 * A bucket's weight is the sum of its leaves'.
 */

/** Version of the map encoding produced by this code. */
export const MAP_FORMAT = 1;

/** Placeholder for an unfilled position of an `indep` placement (CRUSH_ITEM_NONE). */
export const NONE = -1;

/** A leaf of the tree: one partition of one device. */
export interface Leaf {
  /** Non-negative integer below 2^31, unique among leaves. */
  id: number;
  /** Unique among leaves and buckets. */
  name: string;
  /** Size of the partition in bytes (an integer >= 0). */
  capacityBytes: number;
  /** Target relative weight, finite and >= 0; 0 means "receives nothing". */
  weight: number;
  /** Weight the draw uses until the next compaction; finite and >= 0. */
  drawWeight: number;
  /** Reachable (up) or not (down). A down leaf's positions are replaced in place. */
  up: boolean;
  /** Part of data placement (in) or drained (out). An out leaf's positions are replaced in place. */
  in: boolean;
}

/** An interior node of the tree (root, zone, rack, host, device, ...). */
export interface Bucket {
  /** Negative integer in [-2^30, -1], unique among buckets. */
  id: number;
  /** Unique among leaves and buckets; rules `take` buckets by name. */
  name: string;
  /** One of the map's declared `types`. */
  type: string;
  /** Ids of child buckets (< 0) or leaves (>= 0); each node has exactly one parent. */
  children: number[];
}

/**
 * A change recorded since the last compaction, drawn beside the compacted tree so that the
 * data it attracts comes only from elsewhere (never a shuffle inside the old tree).
 * - `{ node }`: the bucket or leaf `node` (and its subtree) was added.
 * - `{ node, extra }`: leaf `node` gained `extra` draw weight (its weight grew past its
 *   drawWeight).
 */
export interface Graft {
  node: number;
  extra?: number;
}

/** `take`: start from the named bucket. */
export interface TakeStep {
  op: 'take';
  bucket: string;
}

/**
 * `choose` / `chooseleaf`: for every item in the working set, pick `count` distinct
 * buckets of `type` below it (`chooseleaf`: then one leaf inside each). `count` 0 means the
 * pool size, a negative count means pool size minus |count|. `firstn` suits replicas
 * (result compacted when short), `indep` suits erasure-coded stripes (positions are fixed;
 * an unfilled one is NONE).
 */
export interface ChooseStep {
  op: 'choose' | 'chooseleaf';
  mode: 'firstn' | 'indep';
  count: number;
  type: string;
}

/** `emit`: append the working set to the result. */
export interface EmitStep {
  op: 'emit';
}

/** One step of a rule (CRUSH rule language: take / choose / chooseleaf / emit). */
export type Step = TakeStep | ChooseStep | EmitStep;

/** A placement rule; pools name the rule they use. */
export interface Rule {
  /** Non-negative integer, unique among rules. */
  id: number;
  /** Unique among rules. */
  name: string;
  steps: Step[];
}

/** The whole map, versioned by a monotonically increasing epoch. */
export interface TopologyMap {
  /** Encoding version: MAP_FORMAT. */
  format: number;
  /** Non-negative integer; every change makes a new map with a higher epoch. */
  epoch: number;
  /** Declared bucket type names (e.g. root, rack, host, device); a bucket's type must be one. */
  types: string[];
  /** Type name of the leaves (e.g. "partition"); rules may choose it. Not in `types`. */
  leafType: string;
  /** Id of the root bucket; every node must be reachable from it. */
  root: number;
  buckets: Bucket[];
  leaves: Leaf[];
  rules: Rule[];
  /** Additions since the last compaction, oldest first. */
  grafts: Graft[];
}
