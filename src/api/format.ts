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
