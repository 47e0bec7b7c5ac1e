/**
 * straw2 selection (Weil et al., "CRUSH", SC 2006; Ceph's straw2 bucket): each child
 * draws ln(u)/w with u uniform in (0,1] from hash(x, child, r); the largest draw wins.
 * Changing one child's weight only moves inputs to or from that child.
 */
import { hash3 } from './hash.ts';

const TWO_POW_32 = 4294967296;

/**
 * Picks one of `ids` for input `x` and attempt `r`, weighted by `weights` (same order).
 * Children with weight <= 0 are never picked. Returns the winning index into `ids`,
 * or -1 when every weight is zero.
 */
export function straw2Index(ids: ArrayLike<number>, weights: ArrayLike<number>, x: number, r: number): number {
  let best = -1;
  let bestDraw = -Infinity;
  for (let i = 0; i < ids.length; i++) {
    const w = weights[i];
    if (!(w > 0)) continue;
    const u = (hash3(x, ids[i], r) + 1) / TWO_POW_32; // (0, 1]
    const draw = Math.log(u) / w;
    if (draw > bestDraw) {
      bestDraw = draw;
      best = i;
    }
  }
  return best;
}
