/**
 * Reference straw2 draw (Ceph's straw2 bucket; Weil et al., "CRUSH", SC 2006): each child
 * draws ln(u)/w with u uniform in (0, 1] from hash(x, child, r); the largest draw wins.
 * Changing one child's weight only moves inputs to or from that child. select.ts runs the
 * same draw on compiled arrays; this plain form is kept for readers and for tests.
 */
import { lnUnit } from './detmath.ts';
import { hash3 } from './hash.ts';

/**
 * Picks one of `ids` for input `x` and attempt `r`, weighted by `weights` (same order).
 * Children with weight <= 0 are never picked. Returns the winning index into `ids`,
 * or -1 when every weight is zero. Ties go to the earlier index.
 */
export function straw2Index(ids: ArrayLike<number>, weights: ArrayLike<number>, x: number, r: number): number {
  let best = -1;
  let bestDraw = -Infinity;
  for (let i = 0; i < ids.length; i++) {
    const w = weights[i];
    if (!(w > 0)) continue;
    const draw = lnUnit(hash3(x, ids[i], r)) / w;
    if (draw > bestDraw) {
      bestDraw = draw;
      best = i;
    }
  }
  return best;
}
