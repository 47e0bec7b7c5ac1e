/**
 * Multi-pick weight corrections. Choosing n distinct failure domains by repeated weighted
 * draws with rejection of repeats (what CRUSH does, and what select.ts does) is successive
 * sampling without replacement: each new domain is drawn with probability proportional to
 * its draw weight among those not yet taken. Its inclusion probabilities are not
 * proportional to the weights — light domains are over-filled, heavy ones under-filled
 * (the "multi-pick anomaly"; +5.8 % / −2.9 % for 3 of 10 hosts with half of them at 2×).
 *
 * This module computes draw weights q whose successive-sampling inclusion probabilities
 * equal the targets n·w/W exactly (to ~1e-12), so no correction is left for a balancer. The
 * inclusion probability of domain d under weights q follows from the exponential-race form
 * of successive sampling (Rosén, "Asymptotic theory for successive sampling", 1972):
 *
 *   π_d = ∫₀^∞ q_d e^{−q_d t} · P[ at most n−1 of the other domains' Exp(q_e) clocks < t ] dt,
 *
 * where the inner probability is a truncated Poisson-binomial sum, computed for every d at
 * once from prefix and suffix products (O(N·n²) per node). The integral uses 16-point
 * Gauss–Legendre panels of doubling width; q is found by the fixed-point iteration
 * q_d ← q_d · target_d / π_d. Everything uses detmath, so every process derives the same
 * bits from the same map.
 */
import { detExp } from './detmath.ts';

/** Gauss–Legendre 16-point nodes (positive half) and weights on [-1, 1]. */
const GL_X = [
  0.0950125098376374, 0.2816035507792589, 0.4580167776572274, 0.6178762444026438, 0.755404408355003, 0.8656312023878318, 0.9445750230732326,
  0.9894009349916499,
];
const GL_W = [
  0.1894506104550685, 0.1826034150449236, 0.1691565193950025, 0.1495959888165767, 0.1246289712555339, 0.0951585116824928, 0.0622535239386479,
  0.0271524594117541,
];

/** 1 − e^{−x} for x >= 0 without cancellation near 0. */
function oneMinusExpNeg(x: number): number {
  if (x < 0.5) {
    // Taylor series of 1 − e^{−x} = x − x²/2 + x³/6 − ...; 20 terms reach 1e-17 at x = 0.5.
    let t = x;
    let s = x;
    for (let k = 2; k <= 20; k++) {
      t *= -x / k;
      s += t;
    }
    return s;
  }
  return 1 - detExp(-x);
}

/**
 * Inclusion probabilities of successive sampling of `n` items without replacement with
 * draw weights `q` (all > 0). Returns π (sums to min(n, N)).
 */
export function inclusionProbabilities(q: ArrayLike<number>, n: number): Float64Array {
  const N = q.length;
  const pi = new Float64Array(N);
  if (n >= N) {
    pi.fill(1);
    return pi;
  }
  let Q = 0;
  for (let i = 0; i < N; i++) Q += q[i];
  // The integrand decays at least like exp(−S t), S = sum of the N−n+1 smallest weights.
  const sorted = Array.from(q).sort((a, b) => a - b);
  let S = 0;
  for (let i = 0; i < N - n + 1; i++) S += sorted[i];
  const h0 = 1 / (4 * Q);
  const tEnd = 45 / S;
  let panels = 1;
  while (h0 * 2 ** (panels - 1) < tEnd) panels++;

  const pre = new Float64Array((N + 1) * n);
  const suf = new Float64Array((N + 1) * n);
  const f = new Float64Array(N);
  const p = new Float64Array(N);
  const g = new Float64Array(n);
  const node = (t: number, wt: number): void => {
    for (let e = 0; e < N; e++) {
      p[e] = oneMinusExpNeg(q[e] * t);
      f[e] = 1 - p[e];
    }
    // pre[i] = Π_{e<i} (f_e + p_e z), truncated to degree n−1; suf[i] = Π_{e>=i}.
    pre.fill(0, 0, n);
    pre[0] = 1;
    for (let e = 0; e < N; e++) {
      const a = e * n;
      const b = a + n;
      pre[b] = pre[a] * f[e];
      for (let j = 1; j < n; j++) pre[b + j] = pre[a + j] * f[e] + pre[a + j - 1] * p[e];
    }
    const last = N * n;
    suf.fill(0, last, last + n);
    suf[last] = 1;
    for (let e = N - 1; e >= 0; e--) {
      const a = (e + 1) * n;
      const b = e * n;
      suf[b] = suf[a] * f[e];
      for (let j = 1; j < n; j++) suf[b + j] = suf[a + j] * f[e] + suf[a + j - 1] * p[e];
    }
    for (let d = 0; d < N; d++) {
      // Coefficients of pre[d] · suf[d+1] up to degree n−1; their sum is P[≤ n−1 others fired].
      const a = d * n;
      const b = (d + 1) * n;
      let F = 0;
      for (let j = 0; j < n; j++) {
        let c = 0;
        for (let i = 0; i <= j; i++) c += pre[a + i] * suf[b + j - i];
        g[j] = c;
        F += c;
      }
      pi[d] += wt * q[d] * f[d] * F;
    }
  };
  for (let panel = 0; panel < panels; panel++) {
    const lo = panel === 0 ? 0 : h0 * 2 ** (panel - 1);
    const hi = h0 * 2 ** panel;
    const mid = (lo + hi) / 2;
    const half = (hi - lo) / 2;
    for (let i = 0; i < GL_X.length; i++) {
      node(mid - half * GL_X[i], half * GL_W[i]);
      node(mid + half * GL_X[i], half * GL_W[i]);
    }
  }
  return pi;
}

/**
 * Target inclusion probabilities n·w_d/W, capped at 1 (a domain cannot hold two members
 * of one set); the excess of capped domains is spread over the others in proportion to
 * their weights. Weights must be > 0.
 */
export function inclusionTargets(w: ArrayLike<number>, n: number): Float64Array {
  const N = w.length;
  const t = new Float64Array(N);
  if (n >= N) return t.fill(1);
  const capped = new Uint8Array(N);
  for (;;) {
    let free = 0;
    let left = n;
    for (let i = 0; i < N; i++) {
      if (capped[i]) left -= 1;
      else free += w[i];
    }
    let changed = false;
    for (let i = 0; i < N; i++) {
      t[i] = capped[i] ? 1 : (left * w[i]) / free;
      if (!capped[i] && t[i] > 1) {
        capped[i] = 1;
        changed = true;
      }
    }
    if (!changed) return t;
  }
}

/** Result of solveCorrections. */
export interface Corrections {
  /** Draw weights to use instead of the raw weights (same scale: they sum to Σw). */
  q: Float64Array;
  /** Largest |π/target − 1| reached. */
  residual: number;
  /** Fixed-point iterations used. */
  iterations: number;
}

/**
 * Draw weights for choosing `n` distinct domains out of domains with weights `w` (all > 0)
 * such that each domain's inclusion probability is n·w/W (capped at 1). Domains whose
 * target is 1 get a draw weight large enough to be taken first.
 */
export function solveCorrections(w: ArrayLike<number>, n: number, tolerance = 1e-12, maxIterations = 200): Corrections {
  const N = w.length;
  const q = Float64Array.from(w);
  let W = 0;
  for (let i = 0; i < N; i++) W += w[i];
  if (n >= N || N <= 1) return { q, residual: 0, iterations: 0 };
  let uniform = true;
  for (let i = 1; i < N; i++) if (w[i] !== w[0]) uniform = false;
  if (uniform) return { q, residual: 0, iterations: 0 };
  const target = inclusionTargets(w, n);
  const free: number[] = [];
  const sure: number[] = [];
  for (let i = 0; i < N; i++) (target[i] >= 1 ? sure : free).push(i);
  let residual = Infinity;
  let it = 0;
  for (; it < maxIterations; it++) {
    // Domains sure to be taken do not compete for the remaining n − |sure| positions.
    const sub = free.map((i) => q[i]);
    const pi = inclusionProbabilities(sub, n - sure.length);
    residual = 0;
    let sum = 0;
    free.forEach((i, j) => {
      const ratio = target[i] / pi[j];
      residual = Math.max(residual, Math.abs(pi[j] / target[i] - 1));
      q[i] *= ratio;
      sum += q[i];
    });
    const scale = (W * free.length) / N / sum;
    for (const i of free) q[i] *= scale;
    if (residual < tolerance) break;
  }
  let freeSum = 0;
  for (const i of free) freeSum += q[i];
  for (const i of sure) q[i] = freeSum * 1e9;
  return { q, residual, iterations: it };
}

/**
 * Inclusion probability of domain `d` alone under successive sampling of `n` with draw
 * weights `q` (entries <= 0 are absent domains). O(N·n) per quadrature node.
 */
export function inclusionOf(q: ArrayLike<number>, n: number, d: number): number {
  const others: number[] = [];
  for (let i = 0; i < q.length; i++) if (i !== d && q[i] > 0) others.push(q[i]);
  if (others.length < n) return 1;
  const qd = q[d];
  let Q = qd;
  for (const v of others) Q += v;
  const sorted = [...others, qd].sort((a, b) => a - b);
  let S = 0;
  for (let i = 0; i < sorted.length - n + 1; i++) S += sorted[i];
  const h0 = 1 / (4 * Q);
  const tEnd = 45 / S;
  let panels = 1;
  while (h0 * 2 ** (panels - 1) < tEnd) panels++;
  const poly = new Float64Array(n);
  let pi = 0;
  const node = (t: number, wt: number): void => {
    poly.fill(0);
    poly[0] = 1;
    for (const v of others) {
      const p = oneMinusExpNeg(v * t);
      const f = 1 - p;
      for (let j = n - 1; j >= 1; j--) poly[j] = poly[j] * f + poly[j - 1] * p;
      poly[0] *= f;
    }
    let F = 0;
    for (let j = 0; j < n; j++) F += poly[j];
    pi += wt * qd * (1 - oneMinusExpNeg(qd * t)) * F;
  };
  for (let panel = 0; panel < panels; panel++) {
    const lo = panel === 0 ? 0 : h0 * 2 ** (panel - 1);
    const hi = h0 * 2 ** panel;
    const mid = (lo + hi) / 2;
    const half = (hi - lo) / 2;
    for (let i = 0; i < GL_X.length; i++) {
      node(mid - half * GL_X[i], half * GL_W[i]);
      node(mid + half * GL_X[i], half * GL_W[i]);
    }
  }
  return pi;
}

/**
 * Extra draw weight e >= 0 for domain `d` such that, with q[d] + e and every other weight
 * unchanged, d's inclusion probability is `target` (n·w/W of d after an addition). Used
 * for grafts: the draw weights of everything already placed stay as they were, so an
 * addition only attracts data to itself (see select.ts). Regula falsi (Illinois) on a
 * bracket found by doubling; deterministic.
 */
export function solveExtraWeight(q: Float64Array, n: number, d: number, target: number, scale: number): number {
  const base = q[d];
  const f = (e: number): number => {
    q[d] = base + e;
    const v = inclusionOf(q, n, d) - target;
    q[d] = base;
    return v;
  };
  if (target >= 1 - 1e-12) return scale * 1e9;
  let lo = 0;
  let flo = base > 0 ? f(0) : -target;
  if (flo >= 0) return 0;
  let hi = scale > 0 ? scale : 1;
  let fhi = f(hi);
  for (let i = 0; fhi < 0 && i < 200; i++) {
    lo = hi;
    flo = fhi;
    hi *= 2;
    fhi = f(hi);
  }
  let side = 0;
  for (let i = 0; i < 100; i++) {
    const m = (lo * fhi - hi * flo) / (fhi - flo);
    const fm = f(m);
    if (Math.abs(fm) <= 1e-13 * target || hi - lo <= 1e-15 * hi) return m;
    if (fm < 0) {
      lo = m;
      flo = fm;
      if (side === -1) fhi /= 2;
      side = -1;
    } else {
      hi = m;
      fhi = fm;
      if (side === 1) flo /= 2;
      side = 1;
    }
  }
  return (lo + hi) / 2;
}
