/**
 * The chaos suite's seeded randomness: every choice of a run (fault kind, target, timings,
 * fio seeds, corrupted byte) comes from here, so `--seed S` replays the same sequence.
 * Each round draws from its own generator, derived from (seed, round), so a round's choices
 * do not depend on how many numbers earlier rounds happened to draw.
 */

/** SplitMix32-style mixing of a 32-bit value (Stafford variant 13 finaliser on 32 bits). */
function mix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** A mulberry32 generator: small, fast, 32-bit state, good enough for test choices. */
export class Rng {
  private state: number;

  /** A generator seeded with the 32-bit value `seed`. */
  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** The generator of round `round` of a run seeded with `seed`. */
  static forRound(seed: number, round: number): Rng {
    return new Rng(mix32(mix32(seed >>> 0) ^ Math.imul(round + 1, 0x27d4eb2d)));
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [lo, hi] (both included). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** A float in [lo, hi). */
  range(lo: number, hi: number): number {
    return lo + this.next() * (hi - lo);
  }

  /** One element of the non-empty `items`. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[Math.floor(this.next() * items.length)];
  }
}
