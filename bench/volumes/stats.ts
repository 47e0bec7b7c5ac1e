/**
 * Summaries of repeated timings for the volumes bench: min, median, p90, max and mean of a
 * sample (simple-statistics), in milliseconds rounded to 0.01.
 */
import { mean, median as ssMedian, quantile } from 'simple-statistics';

/** A sample's summary (ms). */
export interface Summary {
  n: number;
  min: number;
  median: number;
  p90: number;
  max: number;
  mean: number;
}

/** `x` rounded to `digits` decimals. */
export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** The `p`-th percentile (0 < p ≤ 100) of `xs` (simple-statistics' quantile); NaN when empty. */
export function percentile(xs: number[], p: number): number {
  return xs.length === 0 ? NaN : quantile(xs, p / 100);
}

/** The median of `xs` (simple-statistics); NaN when empty. */
export function median(xs: number[]): number {
  return xs.length === 0 ? NaN : ssMedian(xs);
}

/** Min, median, p90, max and mean of `xs`. @throws Error on an empty sample (a figure of nothing). */
export function summarize(xs: number[]): Summary {
  if (xs.length === 0) throw new Error('no samples to summarize');
  return {
    n: xs.length,
    min: round(Math.min(...xs)),
    median: round(median(xs)),
    p90: round(percentile(xs, 90)),
    max: round(Math.max(...xs)),
    mean: round(mean(xs)),
  };
}

/** `a / b` rounded, or null when `b` is not a positive number. */
export function ratio(a: number, b: number, digits = 2): number | null {
  return b > 0 && Number.isFinite(a) ? round(a / b, digits) : null;
}

/** Runs `fn` and returns how long it took (ms, sub-millisecond precision). */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}
