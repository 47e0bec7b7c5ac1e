/**
 * The comparison table and the targets, from the figures of one run (one or more
 * rounds). Pure: no I/O, so it is tested from synthetic figures.
 */
import { median } from 'simple-statistics';
import { round } from '../lib/fio.ts';
import { JOBS, type JobFigures, type Metric } from './jobs.ts';

/** The systems compared. */
export type System = 'nbdkit' | 'ceph' | 'cairn';

/** Figures per system and job name; a system that was skipped or failed has no entry (or lacks the job). */
export type Results = Partial<Record<System, Record<string, JobFigures>>>;

/** One row of the table: a job's figure on each system and Cairn's ratios to the others (null where a figure is missing). */
export interface Row {
  job: string;
  metric: Metric;
  unit: 'IOPS' | 'MB/s' | 'µs';
  /** 'higher' for IOPS and MB/s; 'lower' for latency, where a ratio below 1 means Cairn is faster. */
  better: 'higher' | 'lower';
  nbdkit: number | null;
  ceph: number | null;
  cairn: number | null;
  /** Cairn's figure ÷ Ceph's. */
  cairnOverCeph: number | null;
  /** Cairn's figure ÷ nbdkit's. */
  cairnOverNbdkit: number | null;
  /** With several rounds (tableOfRounds): each round's own ratios, in round order (null where a figure is missing). */
  rounds?: { cairnOverCeph: Array<number | null>; cairnOverNbdkit: Array<number | null> };
}

const UNIT: Record<Metric, Row['unit']> = { iops: 'IOPS', mbps: 'MB/s', meanLatUs: 'µs', writePlusSyncMeanUs: 'µs' };

function figure(r: Results, s: System, job: string, m: Metric): number | null {
  const v = r[s]?.[job]?.[m];
  return typeof v === 'number' && v > 0 ? v : null;
}

function ratio(a: number | null, b: number | null): number | null {
  return a === null || b === null ? null : round(a / b, 3);
}

/** The table: one row per job of JOBS that `only` names (default all), in JOBS' order. */
export function table(r: Results, only?: readonly string[]): Row[] {
  return JOBS.filter((j) => !only || only.includes(j.name)).map((j) => {
    const [nbdkit, ceph, cairn] = (['nbdkit', 'ceph', 'cairn'] as const).map((s) => figure(r, s, j.name, j.metric));
    return {
      job: j.name, metric: j.metric, unit: UNIT[j.metric], better: j.metric === 'iops' || j.metric === 'mbps' ? 'higher' : 'lower',
      nbdkit, ceph, cairn, cairnOverCeph: ratio(cairn, ceph), cairnOverNbdkit: ratio(cairn, nbdkit),
    };
  });
}

/**
 * Figures of several rounds reduced to one: per system, job and field, the median over the
 * rounds that have it (a system or job missing from every round stays missing).
 */
export function medianResults(rounds: readonly Results[]): Results {
  const out: Results = {};
  for (const s of ['nbdkit', 'ceph', 'cairn'] as const) {
    const jobs = new Set(rounds.flatMap((r) => Object.keys(r[s] ?? {})));
    if (jobs.size === 0) continue;
    const sys: Record<string, JobFigures> = {};
    for (const job of jobs) {
      const per = rounds.map((r) => r[s]?.[job]).filter((f): f is JobFigures => f !== undefined);
      const fields = new Set(per.flatMap((f) => Object.keys(f))) as Set<keyof JobFigures>;
      const f: Partial<Record<keyof JobFigures, number>> = {};
      for (const k of fields) {
        const v = per.map((x) => x[k]).filter((x): x is number => typeof x === 'number');
        if (v.length) f[k] = round(median(v), 1);
      }
      sys[job] = f as JobFigures;
    }
    out[s] = sys;
  }
  return out;
}

/**
 * The table of several rounds (each round runs every system once, side by side): figures
 * are the medians of medianResults; a ratio is the median of the rounds' own ratios (each
 * pairs figures measured minutes apart on the same machine, so a machine that slows down
 * between rounds moves both sides of a round's ratio), and `rounds` lists them. With one
 * round this is table() of that round.
 */
export function tableOfRounds(rounds: readonly Results[], only?: readonly string[]): Row[] {
  const per = rounds.map((r) => table(r, only));
  const mid = (v: Array<number | null>): number | null => {
    const n = v.filter((x): x is number => x !== null);
    return n.length ? round(median(n), 3) : null;
  };
  return table(medianResults(rounds), only).map((row, i) => {
    if (rounds.length < 2) return row;
    const cairnOverCeph = per.map((p) => p[i].cairnOverCeph);
    const cairnOverNbdkit = per.map((p) => p[i].cairnOverNbdkit);
    return { ...row, cairnOverCeph: mid(cairnOverCeph), cairnOverNbdkit: mid(cairnOverNbdkit), rounds: { cairnOverCeph, cairnOverNbdkit } };
  });
}

/** One target of issue 15: Cairn ÷ `against` on `job` must be `op` `bound`. */
export interface Target {
  name: string;
  job: string;
  against: 'ceph' | 'nbdkit';
  op: '>=' | '<=';
  bound: number;
}

/** The targets. */
export const TARGETS: readonly Target[] = [
  { name: '1 MiB sequential read ≥ 1.5× Ceph', job: 'read-1m-qd8', against: 'ceph', op: '>=', bound: 1.5 },
  { name: '1 MiB sequential write ≥ 1.5× Ceph', job: 'write-1m-qd8', against: 'ceph', op: '>=', bound: 1.5 },
  { name: '4 KiB random read QD32 ≥ 5× Ceph', job: 'randread-4k-qd32', against: 'ceph', op: '>=', bound: 5 },
  { name: '4 KiB random read QD32 ≥ 0.4× nbdkit', job: 'randread-4k-qd32', against: 'nbdkit', op: '>=', bound: 0.4 },
  { name: '4 KiB random write QD32 ≥ 15× Ceph', job: 'randwrite-4k-qd32', against: 'ceph', op: '>=', bound: 15 },
  { name: '4 KiB random write QD32 ≥ 0.15× nbdkit', job: 'randwrite-4k-qd32', against: 'nbdkit', op: '>=', bound: 0.15 },
  { name: '4 KiB random read QD1 mean latency ≤ 2.5× nbdkit', job: 'randread-4k-qd1', against: 'nbdkit', op: '<=', bound: 2.5 },
  { name: '4 KiB QD1 fsync\'d write (write + flush) mean latency ≤ 1/5 of Ceph', job: 'randwrite-4k-qd1-fsync', against: 'ceph', op: '<=', bound: 0.2 },
];

/**
 * What Cairn's measured CPU cost per request allows on this machine, for one target: a
 * bound from CPU time alone (it ignores fio's own CPU and assumes perfect overlap, so the
 * real limit is lower for rates and higher for latencies).
 */
export interface CpuLimit {
  /** CPU µs per request of Cairn's processes (the gateway plus every node), from the results. */
  cairnCpuUsPerRequest: number;
  /** The machine's busy CPU share during Cairn's job, %. */
  machineBusyPct: number | null;
  /** The figure the target needs, in the row's unit: bound × the reference system's figure. */
  needed: number;
  /**
   * The best figure that CPU cost allows on `cores` CPUs, in the row's unit: for a rate,
   * cores × 10^6 ÷ CPU µs per request (IOPS; × the request size for MB/s); for a latency,
   * CPU µs per request ÷ cores (a floor).
   */
  bestAtThisCpu: number;
  /** Whether `needed` is within bestAtThisCpu: false means the target cannot be met without cutting CPU per request (or adding cores). */
  reachable: boolean;
}

/** A target checked: the measured ratio and whether it is met (null when a figure is missing: a system skipped or failed, or the job not run). */
export interface TargetResult extends Target {
  ratio: number | null;
  met: boolean | null;
  /** withCpuLimits: the CPU bound on this target, when Cairn's CPU and the reference's figure were measured. */
  cpuLimit?: CpuLimit;
}

/** Checks every target against the table's ratios. */
export function checkTargets(rows: readonly Row[]): TargetResult[] {
  return TARGETS.map((t) => {
    const row = rows.find((r) => r.job === t.job);
    const ratio = row ? (t.against === 'ceph' ? row.cairnOverCeph : row.cairnOverNbdkit) : null;
    return { ...t, ratio, met: ratio === null ? null : t.op === '>=' ? ratio >= t.bound : ratio <= t.bound };
  });
}

/** Bytes per request of each job's block size. */
const REQUEST_BYTES: Record<string, number> = { '4k': 4096, '1m': 1 << 20 };

/**
 * Adds to each checked target the bound that Cairn's CPU µs per request (gateway + nodes,
 * medians in `results`) puts on its figure with `cores` CPUs (see CpuLimit). Targets whose
 * Cairn CPU or reference figure is missing are returned unchanged.
 */
export function withCpuLimits(checks: readonly TargetResult[], results: Results, cores: number): TargetResult[] {
  return checks.map((c) => {
    const job = JOBS.find((j) => j.name === c.job);
    const f = results.cairn?.[c.job];
    if (!job || !f || f.gatewayCpuUs === undefined || f.nodesCpuUs === undefined || !(cores > 0)) return c;
    const ref = figure(results, c.against, c.job, job.metric);
    if (ref === null) return c;
    const cpu = round(f.gatewayCpuUs + f.nodesCpuUs, 1);
    if (!(cpu > 0)) return c;
    const needed = round(c.bound * ref, 1);
    const higher = job.metric === 'iops' || job.metric === 'mbps';
    const perSec = (cores * 1e6) / cpu;
    const best = round(!higher ? cpu / cores : job.metric === 'mbps' ? (perSec * REQUEST_BYTES[job.bs]) / 1e6 : perSec, 1);
    return { ...c, cpuLimit: { cairnCpuUsPerRequest: cpu, machineBusyPct: f.machineBusyPct ?? null, needed, bestAtThisCpu: best, reachable: higher ? best >= needed : best <= needed } };
  });
}
