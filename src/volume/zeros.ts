/** Checking data for zeros (a copy-up or a rollback trims instead of writing zeros). */

const ZEROS = Buffer.alloc(64 * 1024);

/** True when every byte of `b` is zero (compared natively, 64 KiB at a time). */
export function isAllZero(b: Buffer): boolean {
  for (let o = 0; o < b.length; o += ZEROS.length) {
    const n = Math.min(ZEROS.length, b.length - o);
    if (!b.subarray(o, o + n).equals(n === ZEROS.length ? ZEROS : ZEROS.subarray(0, n))) return false;
  }
  return true;
}
