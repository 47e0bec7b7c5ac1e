/**
 * Hashing for placement. Every draw hashes three unsigned 32-bit words (x, item, r) with
 * xxHash32 (seed 0, the 12 words little-endian). The draw loops run an inlined arithmetic
 * copy of xxHash32 because calling into xxhash-wasm costs ~100 ns per 12-byte input while
 * the inlined form costs ~5 ns; the test suite checks both give the same bits. Byte strings
 * (volume ids, record names) are hashed with xxhash-wasm, loaded once with a top-level await
 * so that every placement function stays synchronous.
 *
 * Source: xxHash specification (Collet), XXH32 for inputs shorter than 16 bytes.
 */
import xxhash from 'xxhash-wasm';

const hasher = await xxhash();

/** XXH32 primes (as signed 32-bit for Math.imul). */
const P2 = 0x85ebca77 | 0;
const P3 = 0xc2b2ae3d | 0;
const P4 = 0x27d4eb2f | 0;
const P5 = 0x165667b1 | 0;

/**
 * The XXH32 state after absorbing the first word `x` of a 12-byte input (seed 0). Per
 * placement input this is computed once and shared by every draw.
 */
export function hashStart(x: number): number {
  let h = (P5 + 12 + Math.imul(x | 0, P3)) | 0;
  h = (h << 17) | (h >>> 15);
  return Math.imul(h, P4);
}

/** `word * PRIME32_3` as a signed 32-bit integer: precomputed per item and per r. */
export function premul(word: number): number {
  return Math.imul(word | 0, P3);
}

/**
 * Finishes XXH32 of (x, item, r) from `hashStart(x)`, `premul(item)` and `premul(r)`.
 * Returns an unsigned 32-bit integer.
 */
export function hashFinish(start: number, itemP3: number, rP3: number): number {
  return (hashKey(start, itemP3, rP3) ^ 0x80000000) >>> 0;
}

/**
 * The XXH32 of (x, item, r) as hashFinish computes it, but with its top bit flipped as a signed 32-bit
 * integer: comparing these keys as signed numbers orders the hashes as unsigned ones, and
 * keeps the draw loops in 32-bit integer arithmetic. `keyToHash` undoes it.
 */
export function hashKey(start: number, itemP3: number, rP3: number): number {
  let h = (start + itemP3) | 0;
  h = Math.imul((h << 17) | (h >>> 15), P4);
  h = (h + rP3) | 0;
  h = Math.imul((h << 17) | (h >>> 15), P4);
  h ^= h >>> 15;
  h = Math.imul(h, P2);
  h ^= h >>> 13;
  h = Math.imul(h, P3);
  h ^= h >>> 16;
  return h ^ 0x80000000;
}

/** The unsigned hash of a key from hashKey. */
export function keyToHash(key: number): number {
  return (key ^ 0x80000000) >>> 0;
}

/**
 * xxHash32 of three unsigned 32-bit integers (12 bytes little-endian), seed 0; the draw
 * input hash(x, item, r). Returns an unsigned 32-bit integer. Same bits as
 * `hashBytes` of the 12-byte encoding.
 */
export function hash3(a: number, b: number, c: number): number {
  return hashFinish(hashStart(a), premul(b), premul(c));
}

/**
 * xxHash32 of arbitrary bytes with an optional seed (xxhash-wasm); returns an unsigned
 * 32-bit integer. Used to turn names (volume id + extent index, catalog record names) into
 * placement inputs.
 */
export function hashBytes(bytes: Uint8Array, seed = 0): number {
  return hasher.h32Raw(bytes, seed) >>> 0;
}
