/**
 * Measurements of a placement: per-leaf utilization against weights, and data movement
 * between two placements of the same keys. Used by `cairn placement test`, by
 * bench/placement and by the tests; they work on plain arrays of leaf ids so that any
 * placement (ours, or crushtool's output) can be measured the same way.
 *
 * Definitions (also used for CRUSH's published gaps):
 * - utilization of a leaf = its count / its expected count, expected = keys · n · w/W;
 *   CV = standard deviation / mean of utilization over leaves with weight > 0; the ideal is
 *   that of independent random placement, √(mean over leaves of 1/expected) (= √(1/λ) on
 *   uniform maps, λ = mean placements per leaf).
 * - movement is counted per (key, slot): a slot moved ("set" count) when its leaf did not
 *   hold the key before — the copies that must be made; the "positional" count also
 *   counts a leaf that merely changed slot (what matters for erasure-coded shards).
 * - the optimum is Σ over leaves of the growth of their count: data that must arrive
 *   somewhere (e.g. exactly the pairs landing on an added host).
 */
import type { PreparedRule } from './rule.ts';
import { NONE } from './map.ts';

/** A batch of placements: `keys` rows of `width` leaf ids (NONE for holes) in one array. */
export interface Mappings {
  keys: number;
  width: number;
  leaves: Int32Array;
}

/**
 * Places inputs `first`..`first + keys - 1` with `pr` and returns the rows (firstn rows
 * shorter than `width` are padded with NONE).
 */
export function mapKeys(pr: PreparedRule, first: number, keys: number): Mappings {
  const width = pr.width;
  const leaves = new Int32Array(keys * width).fill(NONE);
  const row = new Int32Array(width);
  for (let i = 0; i < keys; i++) {
    const n = pr.placeInto((first + i) >>> 0, row);
    leaves.set(row.subarray(0, n), i * width);
  }
  return { keys, width, leaves };
}

/** Per-leaf utilization statistics (see module comment). */
export interface Utilization {
  keys: number;
  /** Placements counted (filled slots). */
  placements: number;
  /** Leaves with weight > 0. */
  leaves: number;
  /** Mean placements per leaf. */
  lambda: number;
  /** Coefficient of variation of count/expected over leaves with weight > 0. */
  cv: number;
  /** CV of independent random placement with the same expectations. */
  idealCv: number;
  /** cv / idealCv. */
  cvRatio: number;
  /** Largest and smallest count/expected. */
  maxUtilization: number;
  minUtilization: number;
  /** Placements on leaves of weight 0 (should be 0). */
  onZeroWeight: number;
  /** Per leaf id: count and expected count. */
  perLeaf: Map<number, { count: number; expected: number }>;
}

/**
 * Utilization of `m` against `weights` (leaf id -> target weight). Expected counts are
 * proportional to weight and sum to the filled placements.
 */
export function utilization(m: Mappings, weights: Map<number, number>): Utilization {
  const counts = new Map<number, number>();
  let placements = 0;
  for (const l of m.leaves) {
    if (l === NONE) continue;
    placements++;
    counts.set(l, (counts.get(l) ?? 0) + 1);
  }
  let W = 0;
  for (const w of weights.values()) if (w > 0) W += w;
  const perLeaf = new Map<number, { count: number; expected: number }>();
  let n = 0;
  let sum = 0;
  let sumSq = 0;
  let invSum = 0;
  let maxU = -Infinity;
  let minU = Infinity;
  let onZero = 0;
  for (const [id, w] of weights) {
    const count = counts.get(id) ?? 0;
    if (!(w > 0)) {
      onZero += count;
      continue;
    }
    const expected = (placements * w) / W;
    perLeaf.set(id, { count, expected });
    const u = count / expected;
    n++;
    sum += u;
    sumSq += u * u;
    invSum += 1 / expected;
    maxU = Math.max(maxU, u);
    minU = Math.min(minU, u);
  }
  const mean = sum / n;
  const cv = Math.sqrt(Math.max(0, sumSq / n - mean * mean)) / mean;
  const idealCv = Math.sqrt(invSum / n);
  return {
    keys: m.keys,
    placements,
    leaves: n,
    lambda: placements / n,
    cv,
    idealCv,
    cvRatio: cv / idealCv,
    maxUtilization: maxU,
    minUtilization: minU,
    onZeroWeight: onZero,
    perLeaf,
  };
}

/** Movement between two mappings of the same keys (see module comment). */
export interface Movement {
  /** (key, slot) pairs compared. */
  pairs: number;
  /** Slots whose leaf did not hold the key before. */
  moved: number;
  /** Slots whose leaf changed. */
  movedPositional: number;
  /** Σ over leaves of the growth of their count. */
  optimal: number;
  /** moved / optimal and movedPositional / optimal (1 when nothing had to move and nothing did). */
  ratio: number;
  positionalRatio: number;
  /** moved / pairs. */
  movedFraction: number;
}

/**
 * Compares mapping `a` (before) with `b` (after) of the same keys.
 * @throws RangeError if the two do not have the same keys and width.
 */
export function movement(a: Mappings, b: Mappings): Movement {
  if (a.keys !== b.keys || a.width !== b.width) throw new RangeError('mappings of different shapes');
  const w = a.width;
  let moved = 0;
  let positional = 0;
  let pairs = 0;
  const delta = new Map<number, number>();
  for (let i = 0; i < a.keys; i++) {
    const o = i * w;
    for (let k = 0; k < w; k++) {
      const before = a.leaves[o + k];
      const after = b.leaves[o + k];
      if (before !== NONE) delta.set(before, (delta.get(before) ?? 0) - 1);
      if (after !== NONE) delta.set(after, (delta.get(after) ?? 0) + 1);
      if (after === NONE && before === NONE) continue;
      pairs++;
      if (after !== before) positional++;
      if (after === NONE) continue;
      let held = false;
      for (let j = 0; j < w; j++) if (a.leaves[o + j] === after) held = true;
      if (!held) moved++;
    }
  }
  let optimal = 0;
  for (const d of delta.values()) if (d > 0) optimal += d;
  const ratio = optimal > 0 ? moved / optimal : moved === 0 ? 1 : Infinity;
  const positionalRatio = optimal > 0 ? positional / optimal : positional === 0 ? 1 : Infinity;
  return { pairs, moved, movedPositional: positional, optimal, ratio, positionalRatio, movedFraction: pairs > 0 ? moved / pairs : 0 };
}
