/**
 * Summaries of repeated timings for the volumes bench: min, median, p90 (nearest rank), max
 * and mean of a sample, in milliseconds rounded to 0.01.
 */

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

/** The `p`-th percentile (0 < p ≤ 100) of `xs` by nearest rank on the sorted sample; NaN when empty. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** The median of `xs` (mean of the middle two for an even count); NaN when empty. */
export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
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
    mean: round(xs.reduce((a, b) => a + b, 0) / xs.length),
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
