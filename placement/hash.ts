/**
 * Hashing for placement: xxHash32 (xxhash-wasm), loaded once at module load with a
 * top-level await so that every placement function stays synchronous.
 */
import xxhash from 'xxhash-wasm';

const hasher = await xxhash();
const scratch = new Uint8Array(12);
const view = new DataView(scratch.buffer);

/**
 * xxHash32 of three unsigned 32-bit integers (little-endian, 12 bytes), seed 0.
 * Used as the straw2 draw input hash(x, item, r). Returns an unsigned 32-bit integer.
 */
export function hash3(a: number, b: number, c: number): number {
  view.setUint32(0, a >>> 0, true);
  view.setUint32(4, b >>> 0, true);
  view.setUint32(8, c >>> 0, true);
  return hasher.h32Raw(scratch, 0) >>> 0;
}

/**
 * xxHash32 of arbitrary bytes with an optional seed; returns an unsigned 32-bit integer.
 * Used to turn names (volume id + extent index, catalog record names) into placement inputs.
 */
export function hashBytes(bytes: Uint8Array, seed = 0): number {
  return hasher.h32Raw(bytes, seed) >>> 0;
}
