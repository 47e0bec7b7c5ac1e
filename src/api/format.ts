/**
 * Text formatting shared by the management API's status checks and `cairn status`: kept
 * free of heavy imports so the CLI can load it without the cluster machinery.
 */
import bytes from 'bytes-iec';

/**
 * Bytes in binary units with one decimal (bytes-iec), e.g. 12582912 → "12.0 MiB"; below
 * 1 KiB plain bytes ("512 B").
 */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  return bytes.format(n, { mode: 'binary', decimalPlaces: 1, fixedDecimals: true, unitSeparator: ' ' }) ?? `${n} B`;
}

/** "1 node", "3 nodes": `n` and `word`, with an s unless n is 1. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** A rate in bytes per second as formatBytes + "/s", e.g. 47185920 → "45.0 MiB/s" (rounded to whole bytes). */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

/**
 * A duration in seconds, rounded up to whole seconds, with at most two units: "12 s",
 * "2 min 5 s", "1 h 3 min", "2 d 4 h". Negative or non-finite input gives "unknown".
 */
export function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return 'unknown';
  let s = Math.ceil(seconds);
  const units: Array<[string, number]> = [['d', 86400], ['h', 3600], ['min', 60], ['s', 1]];
  const parts: string[] = [];
  for (const [name, size] of units) {
    const n = Math.floor(s / size);
    s -= n * size;
    if (n > 0 || (parts.length === 0 && size === 1)) parts.push(`${n} ${name}`);
    else if (parts.length) break; // a zero unit after a non-zero one ends it ("1 h", not "1 h 0 min 5 s")
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

/** The fields of a recovery kind's cluster-wide progress that formatProgress shows (ProgressSummary of src/api/status.ts). */
export interface ProgressFigures {
  active: boolean;
  extentsDone: number;
  extentsTotal: number;
  bytesDone: number;
  bytesTotal: number;
  /** Bytes per second. */
  rate: number;
  /** Seconds to completion, or null when unknown. */
  etaSeconds: number | null;
}

/**
 * One kind's progress as text, without the kind's name: "idle" when not active, else
 * "120/300 extents, 45.0 MiB/s, ETA 12 s" (ETA "unknown" when it is null); with
 * `opts.bytes`, the bytes done/total follow the extents ("120/300 extents, 45.0 MiB/120.0 MiB, …";
 * the total is "?" while it is 0 and extents remain, as for a resync that has yet to compare them).
 */
export function formatProgress(p: ProgressFigures, opts: { bytes?: boolean } = {}): string {
  if (!p.active) return 'idle';
  const parts = [`${p.extentsDone}/${p.extentsTotal} extents`];
  if (opts.bytes) {
    const unknownTotal = p.bytesTotal === 0 && p.extentsDone < p.extentsTotal;
    parts.push(`${formatBytes(p.bytesDone)}/${unknownTotal ? '?' : formatBytes(p.bytesTotal)}`);
  }
  parts.push(formatRate(p.rate), `ETA ${p.etaSeconds === null ? 'unknown' : formatSeconds(p.etaSeconds)}`);
  return parts.join(', ');
}

/**
 * Misplaced copies as text: "5 extents, 6 copies (5.0 MiB) await trimming", or "none".
 * `m.bytes` in bytes.
 */
export function formatMisplaced(m: { extents: number; copies: number; bytes: number }): string {
  if (!m.copies) return 'none';
  return `${plural(m.extents, 'extent')}, ${plural(m.copies, 'copy').replace(/copys$/, 'copies')} (${formatBytes(m.bytes)}) await trimming`;
}
