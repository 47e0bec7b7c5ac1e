/**
 * Deterministic logarithm and exponential. ECMAScript leaves Math.log and Math.exp
 * implementation-defined, so two Node builds may disagree in the last bit and, on a razor's
 * edge, place a key differently. Placement therefore computes ln and exp with + − × ÷ only
 * (IEEE 754 double, correctly rounded, no fused operations in JavaScript), from tables that
 * are themselves built with series arithmetic at module load. Results agree with Math.log to
 * about 1e-15 absolute and are bit-identical on every conforming engine.
 */

/** ln 2 as the double nearest to it. */
const LN2 = 0.6931471805599453;
/** Cody–Waite split of ln 2 for exp's range reduction (LN2_HI has 32 trailing zero bits). */
const LN2_HI = 0.6931471803691238;
const LN2_LO = 1.9082149292705877e-10;

/** ln(x) for x in [1, 2) by the atanh series; converges to double precision in < 40 terms. */
function lnSeries(x: number): number {
  const z = (x - 1) / (x + 1);
  const z2 = z * z;
  let t = z;
  let s = 0;
  for (let k = 1; k < 200; k += 2) {
    const next = s + t / k;
    if (next === s) break;
    s = next;
    t *= z2;
  }
  return 2 * s;
}

const TABLE_BITS = 8;
const TABLE = 1 << TABLE_BITS;
/** LN_T[i] = ln(1 + i/256); RCP_T[i] = 1 / (1 + i/256). */
const LN_T = new Float64Array(TABLE);
const RCP_T = new Float64Array(TABLE);
for (let i = 0; i < TABLE; i++) {
  const c = 1 + i / TABLE;
  LN_T[i] = lnSeries(c);
  RCP_T[i] = 1 / c;
}
/** INV_POW2[e] = 2^-e for e in 0..32 (exact). */
const INV_POW2 = new Float64Array(33);
for (let e = 0, p = 1; e < 33; e++, p /= 2) INV_POW2[e] = p;

/** ln(1 + y) for |y| < 1/256 to ~1e-16 (six series terms). */
function ln1pSmall(y: number): number {
  return y * (1 - y * (1 / 2 - y * (1 / 3 - y * (1 / 4 - y * (1 / 5 - y / 6)))));
}

/**
 * ln(u) for the uniform u = (h + 1) / 2^32 in (0, 1], h an unsigned 32-bit hash. This is
 * the straw2 draw numerator: it is in [-22.18, 0]. Deterministic (see module comment).
 */
export function lnUnit(h: number): number {
  const v = h + 1;
  if (v === 4294967296) return 0;
  const e = 31 - Math.clz32(v);
  const idx = e >= TABLE_BITS ? (v >>> (e - TABLE_BITS)) & (TABLE - 1) : (v << (TABLE_BITS - e)) & (TABLE - 1);
  const y = v * INV_POW2[e] * RCP_T[idx] - 1;
  return (e - 32) * LN2 + LN_T[idx] + ln1pSmall(y);
}

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
/** Index of the high word of a double in `u32` (little- or big-endian host). */
const HI = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;

/**
 * Natural logarithm of a finite x > 0, deterministic. Returns -Infinity for 0 and NaN for
 * negative or non-finite input.
 */
export function detLn(x: number): number {
  if (!(x > 0) || x === Infinity) return x === 0 ? -Infinity : NaN;
  let scale = 0;
  if (x < 2.2250738585072014e-308) {
    x *= 18446744073709551616; // 2^64: make subnormals normal
    scale = -64;
  }
  f64[0] = x;
  const hi = u32[HI];
  const e = ((hi >>> 20) & 0x7ff) - 1023 + scale;
  const idx = (hi >>> (20 - TABLE_BITS)) & (TABLE - 1);
  u32[HI] = (hi & 0x000fffff) | 0x3ff00000; // mantissa in [1, 2)
  const m = f64[0];
  const y = m * RCP_T[idx] - 1;
  return e * LN2 + LN_T[idx] + ln1pSmall(y);
}

/** 2^k as an exact double for integer k in [-1074, 1023]. */
function pow2(k: number): number {
  if (k < -1022) return pow2(k + 64) / 18446744073709551616;
  f64[0] = 0;
  u32[HI] = (k + 1023) << 20;
  u32[1 - HI] = 0;
  return f64[0];
}

/** e^x, deterministic; 0 below -745, Infinity above 709.78. */
export function detExp(x: number): number {
  if (x !== x) return NaN;
  if (x < -745.2) return 0;
  if (x > 709.78) return Infinity;
  const k = Math.round(x / LN2);
  const r = x - k * LN2_HI - k * LN2_LO; // |r| <= 0.35
  // Taylor series to r^14/14!: truncation below 1e-17 relative.
  let t = 1;
  let s = 1;
  for (let i = 1; i <= 14; i++) {
    t = (t * r) / i;
    s += t;
  }
  if (k > 1023) return s * pow2(1023) * pow2(k - 1023);
  return s * pow2(k);
}
