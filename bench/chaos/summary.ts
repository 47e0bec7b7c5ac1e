/**
 * The chaos suite's results: what each round found, and the one JSON summary printed at the
 * end (with heal-time percentiles).
 */

/** What one round found. */
export interface RoundResult {
  round: number;
  fault: string;
  /** Human-readable target, e.g. "node 2" or "gateway (generation 4)". */
  target: string;
  /** Milliseconds from the fault's last action (see notes) until the cluster was healed; null if it never was. */
  healMs: number | null;
  /** Bad blocks found by the verify pass (any data). */
  verifyErrors: number;
  /** Bad blocks among data that had been flushed before this round's fault. */
  lostFlushedWrites: number;
  /** Extents whose member copies differ (versions, bytes, or a member that cannot serve its copy). */
  replicaMismatches: number;
  /** Why the round failed; empty when it passed. */
  reasons: string[];
}

/** The JSON summary of a run. */
export interface ChaosSummary {
  seed: number;
  rounds: number;
  faults: Record<string, number>;
  verifyErrors: number;
  lostFlushedWrites: number;
  replicaMismatches: number;
  timeToHealMs: { p50: number | null; p99: number | null; max: number | null };
  failedRounds: Array<{ round: number; fault: string; target: string; reasons: string[] }>;
  durationMs: number;
  notes: string[];
}

/** The `p`-th percentile (0..100) of `values` by the nearest-rank method; null for no values. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}

/** Builds the run's summary from its rounds. */
export function summarize(seed: number, results: readonly RoundResult[], durationMs: number, notes: string[]): ChaosSummary {
  const faults: Record<string, number> = {};
  for (const r of results) faults[r.fault] = (faults[r.fault] ?? 0) + 1;
  const heals = results.flatMap((r) => (r.healMs === null ? [] : [r.healMs]));
  const sum = (f: (r: RoundResult) => number): number => results.reduce((s, r) => s + f(r), 0);
  return {
    seed,
    rounds: results.length,
    faults,
    verifyErrors: sum((r) => r.verifyErrors),
    lostFlushedWrites: sum((r) => r.lostFlushedWrites),
    replicaMismatches: sum((r) => r.replicaMismatches),
    timeToHealMs: { p50: percentile(heals, 50), p99: percentile(heals, 99), max: heals.length ? Math.max(...heals) : null },
    failedRounds: results.filter((r) => r.reasons.length > 0).map((r) => ({ round: r.round, fault: r.fault, target: r.target, reasons: r.reasons })),
    durationMs: Math.round(durationMs),
    notes,
  };
}

/** Seconds with one decimal, for progress lines ("6.1 s"). */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
