/**
 * Byte sizes on the command line: "4GiB", "512MiB", "1G" (binary, like dd/qemu-img),
 * "1GB" (decimal, SI) or plain bytes. Parsed with bytes-iec.
 */
import bytes from 'bytes-iec';
import { Flags } from '@oclif/core';

/**
 * Parses a size. Single-letter suffixes (K, M, G, T) are binary, as in qemu-img.
 * @throws Error with a one-line message on anything else.
 */
export function parseSize(text: string): number {
  const t = text.trim();
  const short = /^(\d+(?:\.\d+)?)\s*([KMGTP])$/i.exec(t);
  const n = short ? bytes.parse(`${short[1]}${short[2].toUpperCase()}iB`) : bytes.parse(t);
  if (n === null || !Number.isFinite(n) || n < 0) throw new Error(`'${text}' is not a size (try 4GiB, 512M or 1073741824)`);
  return Math.round(n);
}

/** Formats bytes as binary units, e.g. 1073741824 -> "1 GiB". */
export function formatSize(n: number): string {
  return bytes.format(n, { mode: 'binary', unitSeparator: ' ' }) ?? `${n} B`;
}

/** An oclif flag holding a byte size. */
export const sizeFlag = Flags.custom<number>({
  parse: async (input) => parseSize(input),
  helpValue: '<size>',
});
