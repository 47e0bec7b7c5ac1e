/**
 * Small numeric helpers of the recovery bench: units (MB = 10^6 bytes, as fio reports) and
 * medians of repeated figures.
 */
import { median as ssMedian } from 'simple-statistics';
export { round } from '../lib/fio.ts';

/** Bytes in a MiB (sizes and rate limits are configured in MiB). */
export const MiB = 1024 * 1024;

/** `bytes` over `seconds` in MB/s (10^6 bytes per second); 0 when no time passed. */
export function mbps(bytes: number, seconds: number): number {
  return seconds > 0 ? bytes / 1e6 / seconds : 0;
}

/** The median of `xs` (simple-statistics; the mean of the middle two for an even count); NaN when empty. */
export function median(xs: number[]): number {
  return xs.length === 0 ? NaN : ssMedian(xs);
}

/** `a / b`, or null when `b` is not a positive number (a ratio against nothing says nothing). */
export function ratio(a: number, b: number): number | null {
  return b > 0 && Number.isFinite(a) ? a / b : null;
}

/** Parses a size such as `256m`, `1g`, `512k` or a plain byte count. @throws Error on anything else. */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([kmg]?)i?b?$/i.exec(s.trim());
  if (!m) throw new Error(`bad size '${s}' (e.g. 256m, 1g)`);
  const mult = { '': 1, k: 1024, m: MiB, g: 1024 * MiB }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Math.round(Number(m[1]) * mult);
}
