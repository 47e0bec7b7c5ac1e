/**
 * The reference for the write-amplification figures: an in-memory LFS cleaning simulation
 * in the spirit of Rosenblum & Ousterhout (SOSP 1991, §5.3) over the same geometry as the
 * real run — `segments` segments of `S` pages, the same utilisation (live pages ÷ all
 * segment pages), the same workload and the same victim policy (allocator/victim.ts
 * formulas; 'lfs-cost-benefit' is LFS's own, with age = time since the segment's youngest
 * write, kept for comparison) — but with no summary blocks, no group commit, no fdatasync and no free-pool
 * slack: the cleaner empties one victim into a cold stream whenever fewer than `keepFree`
 * segments are free (2: one for each stream). What the real allocator loses against it is
 * its own overhead (headers, free pool, segments waiting for fdatasync).
 */

/** One simulated configuration. */
export interface IdealResult {
  writeAmplification: number;
  cleanedUtilization: number;
}

/**
 * Simulates `overwriteFactor` × live random 4 KiB overwrites (uniform, or hot/cold: 90 % of
 * writes to 10 % of pages), measuring over the second half.
 */
export function idealCleaning(segments: number, S: number, utilization: number, workload: 'uniform' | 'hot-cold', policy: 'greedy' | 'cost-benefit' | 'lfs-cost-benefit', overwriteFactor: number, keepFree = 2): IdealResult {
  const N = segments;
  const L = Math.floor(utilization * N * S);
  const where = new Int32Array(L).fill(-1);
  const owner = new Int32Array(N * S).fill(-1);
  const live = new Int32Array(N);
  const sealedAt = new Float64Array(N);
  /** Host clock of the youngest page in each segment (LFS's age, for 'lfs-cost-benefit'). */
  const youngest = new Float64Array(N);
  const written = new Float64Array(L);
  const state = new Uint8Array(N); // 0 free, 1 open, 2 sealed
  const free: number[] = [];
  for (let s = N - 1; s >= 0; s--) free.push(s);
  const streams = [{ seg: -1, pos: 0 }, { seg: -1, pos: 0 }];
  let clock = 0;
  let dev = 0;
  let cleaned = 0;
  let cleanedLive = 0;
  const append = (stream: number, page: number): void => {
    const st = streams[stream];
    if (st.seg < 0 || st.pos >= S) {
      if (st.seg >= 0) {
        state[st.seg] = 2;
        sealedAt[st.seg] = clock;
      }
      const s = free.pop();
      if (s === undefined) throw new Error('ideal cleaning ran out of segments');
      st.seg = s;
      st.pos = 0;
      state[s] = 1;
    }
    const b = st.seg * S + st.pos++;
    const old = where[page];
    if (old >= 0) {
      live[(old / S) | 0]--;
      owner[old] = -1;
    }
    where[page] = b;
    owner[b] = page;
    live[st.seg]++;
    if (stream === 0) written[page] = clock;
    if (written[page] > youngest[st.seg] || st.pos === 1) youngest[st.seg] = written[page];
    dev++;
  };
  const clean = (): void => {
    let best = -1;
    let bestScore = -Infinity;
    for (let s = 0; s < N; s++) {
      if (state[s] !== 2 || live[s] >= S) continue;
      const u = live[s] / S;
      const score = policy === 'greedy' ? 1 - u
        : policy === 'lfs-cost-benefit' ? ((1 - u) * (clock - youngest[s] + 1)) / (1 + u)
          : u <= 0.15 ? 1e300 * (1 - u)
            : ((1 - u) * Math.sqrt((clock - sealedAt[s] + 1) / (S - live[s] + 1))) / (1 + u);
      if (score > bestScore) {
        bestScore = score;
        best = s;
      }
    }
    if (best < 0) throw new Error('ideal cleaning found no victim');
    const items: number[] = [];
    for (let i = 0; i < S; i++) {
      const p = owner[best * S + i];
      if (p >= 0) items.push(p);
    }
    cleaned++;
    cleanedLive += items.length;
    state[best] = 3;
    for (const p of items) append(1, p);
    live[best] = 0;
    state[best] = 0;
    free.push(best);
  };
  let x = 0x9e3779b9 ^ Math.floor(utilization * 1000);
  const rnd = (): number => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x / 4294967296;
  };
  const hot = Math.max(1, Math.floor(L / 10));
  const pick = (): number => (workload === 'uniform' ? Math.floor(rnd() * L) : rnd() < 0.9 ? Math.floor(rnd() * hot) : hot + Math.floor(rnd() * (L - hot)));
  for (let p = 0; p < L; p++) {
    clock++;
    append(0, p);
  }
  const total = Math.floor(overwriteFactor * L);
  let d0 = 0;
  let c0 = 0;
  let l0 = 0;
  for (let i = 0; i < total; i++) {
    if (i === Math.floor(total / 2)) {
      d0 = dev;
      c0 = cleaned;
      l0 = cleanedLive;
    }
    while (free.length < keepFree) clean();
    clock++;
    append(0, pick());
  }
  const host = total - Math.floor(total / 2);
  return {
    writeAmplification: Math.round(((dev - d0) / host) * 1000) / 1000,
    cleanedUtilization: cleaned > c0 ? Math.round(((cleanedLive - l0) / (cleaned - c0) / S) * 1000) / 1000 : 0,
  };
}
