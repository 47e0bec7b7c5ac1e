/**
 * Placement's own prediction of the data a map change moves: for each extent, the members
 * the new map places it on that the old map did not (each must copy the extent). Compared in
 * tests and benchmarks with what rebalance and backfill actually copied — computed placement
 * should move exactly these and nothing else.
 */
import type { ClusterView } from '../initiator/index.ts';

/** A volume's extents to count: id, pool, and the extent indexes holding data. */
export interface VolumeExtents {
  id: number;
  pool: number;
  extents: Iterable<number>;
}

/** What placement predicts. */
export interface PredictedMoves {
  /** (extent, new member) pairs: extent copies to make. */
  copies: number;
  /** Extents with at least one new member. */
  extents: number;
  /** Extents counted. */
  total: number;
}

/**
 * Counts the extent copies that moving from `before` to `after` creates (see module comment).
 * Extents placement cannot place in either map are skipped.
 */
export function predictMoves(before: ClusterView, after: ClusterView, volumes: VolumeExtents[]): PredictedMoves {
  const out: PredictedMoves = { copies: 0, extents: 0, total: 0 };
  for (const v of volumes) {
    for (const x of v.extents) {
      let was: number[];
      let now: number[];
      try {
        was = before.members(v.id, x, v.pool);
        now = after.members(v.id, x, v.pool);
      } catch {
        continue;
      }
      out.total++;
      const fresh = now.filter((m) => !was.includes(m)).length;
      out.copies += fresh;
      if (fresh) out.extents++;
    }
  }
  return out;
}
