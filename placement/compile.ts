/**
 * A topology map compiled for fast selection: typed arrays in compressed-sparse-row form,
 * built once per epoch, read by select.ts without allocating.
 *
 * Node references: a bucket is its index (>= 0) into the bucket arrays, a leaf is
 * ~index (< 0). Two trees are compiled:
 * - the *draw* tree: children excluding grafted nodes (they are drawn separately, see
 *   map.ts Graft), weights = leaves' drawWeight summed upwards; zero-weight children left
 *   out. The first choice of every position descends it.
 * - the *current* tree: all children, weights = leaves' weight when up and in, else 0. In-
 *   place replacements descend it.
 * Children are sorted by id, so placement does not depend on the order a map lists them.
 */
import { premul } from './hash.ts';
import type { Rule, TopologyMap } from './map.ts';
import { validateMap } from './validate.ts';

/** First synthetic hash id of extra-weight grafts (below every bucket id). */
const EXTRA_GRAFT_HASH_BASE = -(2 ** 30) - 1;

/** One draw-tree or current-tree CSR structure. */
export interface CompiledTree {
  /** Per bucket: first and one-past-last index into the child arrays. */
  start: Int32Array;
  end: Int32Array;
  /** Per child slot: node reference, premul(id), 1/weight. */
  ref: Int32Array;
  hash: Int32Array;
  invWeight: Float64Array;
  /** Per bucket: 1 when all its children weigh the same (the draw then compares raw hashes). */
  uniform: Uint8Array;
  /** Per bucket: total weight of its children. */
  weight: Float64Array;
}

/** A graft as a draw item. */
export interface CompiledGraft {
  /** Node reference the item stands for (the grafted bucket or leaf, or the grown leaf). */
  ref: number;
  /** premul of the id hashed for this item (the node's id, or a synthetic id for extras). */
  hash: number;
  /** Draw weight of the item. */
  weight: number;
  /** True for an extra-weight graft of a leaf. */
  extra: boolean;
}

/** The compiled map. Built once per epoch; placement reads it without allocating. */
export interface CompiledMap {
  map: TopologyMap;
  epoch: number;
  bucketCount: number;
  leafCount: number;
  bucketId: Int32Array;
  leafId: Int32Array;
  /** Per bucket: index of its type in map.types. */
  bucketType: Int32Array;
  /** Per bucket and per leaf: reference of the parent (-1 for the root; the root's ref is 0..). */
  bucketParent: Int32Array;
  leafParent: Int32Array;
  bucketIndex: Map<number, number>;
  leafIndex: Map<number, number>;
  /** Index of the root bucket. */
  root: number;
  /** Type name -> index in map.types; the leaf type maps to -1. */
  typeIndex: Map<string, number>;
  draw: CompiledTree;
  current: CompiledTree;
  /** Per leaf: premul(id). */
  leafHash: Int32Array;
  /** Per leaf: total draw weight (drawWeight + extra grafts). */
  leafDrawTotal: Float64Array;
  /**
   * Per leaf acceptance of a first choice: 0 = never (down, out or weight 0), 1 = always,
   * 2 = when the leaf's coin hash is below `leafThreshold` (weight below draw weight).
   */
  leafAccept: Uint8Array;
  leafThreshold: Float64Array;
  grafts: CompiledGraft[];
  /** Rules of the map by name and by id. */
  rules: Map<string | number, Rule>;
  /** Prepared rules, filled lazily by rule.ts. */
  prepared: Map<string, unknown>;
}

/** Encodes a leaf index as a node reference. */
export function leafRef(index: number): number {
  return ~index;
}

function buildTree(
  bucketCount: number,
  kids: number[][],
  weightOf: (ref: number) => number,
  idOf: (ref: number) => number,
): CompiledTree {
  const start = new Int32Array(bucketCount);
  const end = new Int32Array(bucketCount);
  const weight = new Float64Array(bucketCount);
  const uniform = new Uint8Array(bucketCount);
  let total = 0;
  for (const k of kids) total += k.length;
  const ref = new Int32Array(total);
  const hash = new Int32Array(total);
  const invWeight = new Float64Array(total);
  let at = 0;
  for (let b = 0; b < bucketCount; b++) {
    start[b] = at;
    let sum = 0;
    let first = -1;
    let same = 1;
    for (const c of kids[b]) {
      const w = weightOf(c);
      if (!(w > 0)) continue;
      ref[at] = c;
      hash[at] = premul(idOf(c));
      invWeight[at] = 1 / w;
      if (first < 0) first = w;
      else if (w !== first) same = 0;
      sum += w;
      at++;
    }
    end[b] = at;
    weight[b] = sum;
    uniform[b] = same;
  }
  return { start, end, ref: ref.subarray(0, at), hash: hash.subarray(0, at), invWeight: invWeight.subarray(0, at), uniform, weight };
}

/**
 * Validates and compiles `map`.
 * @throws MapValidationError if the map is malformed.
 */
export function compileMap(map: TopologyMap): CompiledMap {
  validateMap(map);
  const bucketCount = map.buckets.length;
  const leafCount = map.leaves.length;
  const bucketIndex = new Map<number, number>();
  const leafIndex = new Map<number, number>();
  map.buckets.forEach((b, i) => bucketIndex.set(b.id, i));
  map.leaves.forEach((l, i) => leafIndex.set(l.id, i));
  const typeIndex = new Map<string, number>(map.types.map((t, i) => [t, i]));
  typeIndex.set(map.leafType, -1);
  const refOf = (id: number): number => (id < 0 ? bucketIndex.get(id)! : ~leafIndex.get(id)!);
  const idOf = (ref: number): number => (ref >= 0 ? map.buckets[ref].id : map.leaves[~ref].id);

  const bucketId = Int32Array.from(map.buckets, (b) => b.id);
  const leafId = Int32Array.from(map.leaves, (l) => l.id);
  const bucketType = Int32Array.from(map.buckets, (b) => typeIndex.get(b.type)!);
  const bucketParent = new Int32Array(bucketCount).fill(-1);
  const leafParent = new Int32Array(leafCount).fill(-1);
  const children: number[][] = map.buckets.map((b) =>
    [...b.children].sort((x, y) => x - y).map((c) => {
      const r = refOf(c);
      return r;
    }),
  );
  children.forEach((kids, b) => {
    for (const r of kids) {
      if (r >= 0) bucketParent[r] = b;
      else leafParent[~r] = b;
    }
  });

  // Grafted nodes leave their parent's draw children; they are drawn as items of their own.
  const graftedNode = new Set<number>();
  const extraByLeaf = new Float64Array(leafCount);
  for (const g of map.grafts) {
    if (g.extra === undefined) graftedNode.add(refOf(g.node));
    else extraByLeaf[leafIndex.get(g.node)!] += g.extra;
  }
  const drawKids = children.map((kids) => kids.filter((r) => !graftedNode.has(r)));

  // Draw weights bottom-up over the draw tree (memoized; the tree is acyclic).
  const drawBucketWeight = new Float64Array(bucketCount).fill(-1);
  const drawWeightOf = (ref: number): number => {
    if (ref < 0) return map.leaves[~ref].drawWeight;
    if (drawBucketWeight[ref] >= 0) return drawBucketWeight[ref];
    // Iterative post-order to stay clear of deep recursion.
    const stack = [ref];
    while (stack.length > 0) {
      const b = stack[stack.length - 1];
      let ready = true;
      for (const c of drawKids[b]) {
        if (c >= 0 && drawBucketWeight[c] < 0) {
          stack.push(c);
          ready = false;
        }
      }
      if (!ready) continue;
      stack.pop();
      let s = 0;
      for (const c of drawKids[b]) s += c >= 0 ? drawBucketWeight[c] : map.leaves[~c].drawWeight;
      drawBucketWeight[b] = s;
    }
    return drawBucketWeight[ref];
  };
  for (let b = 0; b < bucketCount; b++) drawWeightOf(b);
  const draw = buildTree(bucketCount, drawKids, drawWeightOf, idOf);

  const usable = (i: number): number => {
    const l = map.leaves[i];
    return l.up && l.in ? l.weight : 0;
  };
  const curBucketWeight = new Float64Array(bucketCount).fill(-1);
  const curWeightOf = (ref: number): number => {
    if (ref < 0) return usable(~ref);
    if (curBucketWeight[ref] >= 0) return curBucketWeight[ref];
    const stack = [ref];
    while (stack.length > 0) {
      const b = stack[stack.length - 1];
      let ready = true;
      for (const c of children[b]) {
        if (c >= 0 && curBucketWeight[c] < 0) {
          stack.push(c);
          ready = false;
        }
      }
      if (!ready) continue;
      stack.pop();
      let s = 0;
      for (const c of children[b]) s += c >= 0 ? curBucketWeight[c] : usable(~c);
      curBucketWeight[b] = s;
    }
    return curBucketWeight[ref];
  };
  for (let b = 0; b < bucketCount; b++) curWeightOf(b);
  const current = buildTree(bucketCount, children, curWeightOf, idOf);

  const leafHash = Int32Array.from(map.leaves, (l) => premul(l.id));
  const leafDrawTotal = new Float64Array(leafCount);
  const leafAccept = new Uint8Array(leafCount);
  const leafThreshold = new Float64Array(leafCount);
  map.leaves.forEach((l, i) => {
    const total = l.drawWeight + extraByLeaf[i];
    leafDrawTotal[i] = total;
    const w = usable(i);
    if (!(w > 0) || !(total > 0)) leafAccept[i] = 0;
    else if (w >= total) leafAccept[i] = 1;
    else {
      leafAccept[i] = 2;
      leafThreshold[i] = (w / total) * 4294967296;
    }
  });

  const grafts: CompiledGraft[] = [];
  map.grafts.forEach((g, i) => {
    const ref = refOf(g.node);
    if (g.extra === undefined) {
      const w = drawWeightOf(ref);
      if (w > 0) grafts.push({ ref, hash: premul(g.node), weight: w, extra: false });
    } else if (g.extra > 0) {
      grafts.push({ ref, hash: premul(EXTRA_GRAFT_HASH_BASE - i), weight: g.extra, extra: true });
    }
  });

  const rules = new Map<string | number, Rule>();
  for (const r of map.rules) {
    rules.set(r.name, r);
    rules.set(r.id, r);
  }
  return {
    map,
    epoch: map.epoch,
    bucketCount,
    leafCount,
    bucketId,
    leafId,
    bucketType,
    bucketParent,
    leafParent,
    bucketIndex,
    leafIndex,
    root: bucketIndex.get(map.root)!,
    typeIndex,
    draw,
    current,
    leafHash,
    leafDrawTotal,
    leafAccept,
    leafThreshold,
    grafts,
    rules,
    prepared: new Map(),
  };
}

/** True when node `ref` is `ancestor` or lies below it. */
export function isUnder(cm: CompiledMap, ref: number, ancestor: number): boolean {
  let b = ref >= 0 ? ref : cm.leafParent[~ref];
  if (ref === ancestor) return true;
  while (b >= 0) {
    if (b === ancestor) return true;
    b = cm.bucketParent[b];
  }
  return false;
}

/**
 * The closest node of type index `type` at or above `ref` (-1 = the leaf type: the leaf
 * itself), stopping at `limit` (exclusive: the limit itself does not count). Returns the
 * node reference, or null if there is none.
 */
export function domainOf(cm: CompiledMap, ref: number, type: number, limit: number): number | null {
  if (type === -1) return ref < 0 ? ref : null;
  let b = ref >= 0 ? ref : cm.leafParent[~ref];
  while (b >= 0 && b !== limit) {
    if (cm.bucketType[b] === type) return b;
    b = cm.bucketParent[b];
  }
  return null;
}
