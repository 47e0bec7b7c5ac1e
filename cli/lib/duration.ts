/**
 * Durations on the command line: "30s", "10m", "12h", "7d", "250ms" or plain milliseconds
 * ("90000"). Decimals are allowed ("1.5h"); the result is whole milliseconds.
 */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60000, h: 3600000, d: 86400000 };

/**
 * Parses a duration into milliseconds (rounded to a whole number).
 * @throws Error with a one-line message when `text` is not a non-negative duration.
 */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/i.exec(text.trim());
  const ms = m ? Math.round(Number(m[1]) * UNIT_MS[(m[2] ?? 'ms').toLowerCase()]) : NaN;
  if (!Number.isSafeInteger(ms)) throw new Error(`'${text}' is not a duration (try 30s, 10m, 12h, 7d or milliseconds)`);
  return ms;
}

/**
 * Formats milliseconds in the largest unit that divides them exactly: 604800000 → "7d",
 * 43200000 → "12h", 90000 → "90s", 250 → "250ms", 0 → "0".
 */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0';
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    if (ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  }
  return `${ms}ms`;
}
