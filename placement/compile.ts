/**
 * A topology map compiled for fast selection: per bucket, child ids and weights as
 * typed arrays, and derived bucket weights (sum of children).
 */
import { validateMap, type TopologyMap } from './map.ts';

/** One bucket ready for straw2: children and their weights in the same order. */
export interface CompiledBucket {
  id: number;
  type: string;
  children: Int32Array;
  weights: Float64Array;
  weight: number;
}

/** The compiled map. Built once per epoch; selection reads it without allocating. */
export interface CompiledMap {
  map: TopologyMap;
  buckets: Map<number, CompiledBucket>;
  /** leaf id -> usable (up and in) */
  usable: Map<number, boolean>;
  /** node id (bucket or leaf) -> type name; leaves have type "leaf". */
  typeOf: Map<number, string>;
}

/**
 * Validates and compiles `map`.
 * @throws MapValidationError if the map is malformed.
 */
export function compileMap(map: TopologyMap): CompiledMap {
  validateMap(map);
  const byId = new Map(map.buckets.map((b) => [b.id, b]));
  const leafWeight = new Map(map.leaves.map((l) => [l.id, l.weight]));
  const usable = new Map(map.leaves.map((l) => [l.id, l.up && l.in]));
  const typeOf = new Map<number, string>();
  for (const l of map.leaves) typeOf.set(l.id, 'leaf');
  const buckets = new Map<number, CompiledBucket>();
  const weightOf = (id: number): number => {
    if (id >= 0) return leafWeight.get(id) ?? 0;
    const done = buckets.get(id);
    if (done) return done.weight;
    const b = byId.get(id)!;
    typeOf.set(id, b.type);
    const weights = Float64Array.from(b.children, weightOf);
    const cb: CompiledBucket = {
      id,
      type: b.type,
      children: Int32Array.from(b.children),
      weights,
      weight: weights.reduce((s, w) => s + w, 0),
    };
    buckets.set(id, cb);
    return cb.weight;
  };
  weightOf(map.root);
  return { map, buckets, usable, typeOf };
}
