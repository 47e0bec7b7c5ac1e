/**
 * Cleaner victim selection over sealed segments.
 *
 * - greedy: the segment with the fewest live blocks.
 * - cost-benefit (Rosenblum & Ousterhout, SOSP 1991, §5.4): maximise
 *   benefit / cost = (1 − u) · age / (1 + u), where u is the fraction of the segment still
 *   live and age is the time (here: log clock, blocks appended) since its youngest data
 *   was written. Cold segments are cleaned at higher utilisation than hot ones, which
 *   leaves a bimodal segment distribution and lowers write amplification under skew.
 */
import { SEALED, type SegmentTable } from './segments.ts';

/** Victim selection policy. */
export type CleanerPolicy = 'cost-benefit' | 'greedy';

/**
 * Returns up to `max` victim segment numbers, best first. Only SEALED segments with at
 * least `minGarbage` dead blocks are considered (cleaning must gain space).
 */
export function pickVictims(segs: SegmentTable, policy: CleanerPolicy, clock: number, max: number, minGarbage: number): number[] {
  const S = segs.blocks;
  const best: Array<{ s: number; score: number }> = [];
  let worst = -Infinity;
  for (let s = 0; s < segs.count; s++) {
    if (segs.state[s] !== SEALED) continue;
    const live = segs.live[s];
    if (S - live < minGarbage) continue;
    const u = live / S;
    const score = policy === 'greedy' ? 1 - u : ((1 - u) * (clock - segs.age[s] + 1)) / (1 + u);
    if (best.length < max) {
      best.push({ s, score });
      if (best.length === max) worst = Math.min(...best.map((b) => b.score));
    } else if (score > worst) {
      let wi = 0;
      for (let i = 1; i < best.length; i++) if (best[i].score < best[wi].score) wi = i;
      best[wi] = { s, score };
      worst = Math.min(...best.map((b) => b.score));
    }
  }
  best.sort((a, b) => b.score - a.score);
  return best.map((b) => b.s);
}
