/**
 * The fio jobs of `npm run bench -- compare` and the fio arguments that run them against
 * an NBD export or an RBD image: the same job, byte for byte, on every system.
 */
import type { FioFigures } from '../lib/fio.ts';

/** The figure a job is judged by: IOPS, MB/s (10^6 B/s), or a mean latency in µs. */
export type Metric = 'iops' | 'mbps' | 'meanLatUs' | 'writePlusSyncMeanUs';

/** One job of the comparison. */
export interface CompareJob {
  /** Job name, as in the output and --only. */
  name: string;
  rw: 'randread' | 'randwrite' | 'read' | 'write';
  bs: '4k' | '1m';
  iodepth: number;
  /** fio's fsync=N: a flush after every N writes (1: every write is made durable). */
  fsync?: number;
  /** What the job is judged by. */
  metric: Metric;
}

/** The six jobs, in the order they run on each system. */
export const JOBS: readonly CompareJob[] = [
  { name: 'randread-4k-qd1', rw: 'randread', bs: '4k', iodepth: 1, metric: 'meanLatUs' },
  { name: 'randread-4k-qd32', rw: 'randread', bs: '4k', iodepth: 32, metric: 'iops' },
  { name: 'randwrite-4k-qd1-fsync', rw: 'randwrite', bs: '4k', iodepth: 1, fsync: 1, metric: 'writePlusSyncMeanUs' },
  { name: 'randwrite-4k-qd32', rw: 'randwrite', bs: '4k', iodepth: 32, metric: 'iops' },
  { name: 'read-1m-qd8', rw: 'read', bs: '1m', iodepth: 8, metric: 'mbps' },
  { name: 'write-1m-qd8', rw: 'write', bs: '1m', iodepth: 8, metric: 'mbps' },
];

/** How fio reaches a system: its engine arguments and environment. */
export interface FioTarget {
  /** e.g. ['--ioengine=nbd', '--uri=nbd://…'] or the rbd engine's arguments. */
  engine: string[];
  /** fio's environment (the rbd engine needs CEPH_CONF); undefined: this process's. */
  env?: NodeJS.ProcessEnv;
}

/** Engine arguments for an NBD export at `uri` (fio's nbd engine, libnbd). */
export function nbdTarget(uri: string): FioTarget {
  return { engine: ['--ioengine=nbd', `--uri=${uri}`] };
}

/** Engine arguments for RBD image `pool/image` as client.admin through librbd, with `env` carrying CEPH_CONF. */
export function rbdTarget(pool: string, image: string, env: NodeJS.ProcessEnv): FioTarget {
  return { engine: ['--ioengine=rbd', '--clientname=admin', `--pool=${pool}`, `--rbdname=${image}`, '--invalidate=0'], env };
}

/**
 * fio arguments of `job` over the first `sizeBytes` of the target, time-based for
 * `runtimeS` seconds after a 1 s ramp.
 */
export function jobArgs(t: FioTarget, job: CompareJob, sizeBytes: number, runtimeS: number): string[] {
  return [`--name=${job.name}`, ...t.engine, `--rw=${job.rw}`, `--bs=${job.bs}`, `--iodepth=${job.iodepth}`,
    ...(job.fsync ? [`--fsync=${job.fsync}`] : []),
    `--size=${sizeBytes}`, '--time_based', `--runtime=${runtimeS}`, '--ramp_time=1', '--randrepeat=0'];
}

/** fio arguments that write the first `sizeBytes` of the target once, 1 MiB at QD8, so that reads hit written data. */
export function fillArgs(t: FioTarget, sizeBytes: number): string[] {
  return ['--name=fill', ...t.engine, '--rw=write', '--bs=1m', '--iodepth=8', `--size=${sizeBytes}`];
}

/** The figures reported for one system and job. Rates in IOPS and MB/s; latencies in µs (fio's total latency, submission to completion). */
export interface JobFigures {
  iops: number;
  mbps: number;
  meanLatUs: number;
  p50LatUs: number;
  p99LatUs: number;
  /** fsync jobs: mean latency of the flushes, and write + flush: the mean time to make one write durable. */
  syncMeanLatUs?: number;
  writePlusSyncMeanUs?: number;
  /**
   * Cairn only: user + system CPU µs per request of the gateway (`cairn up`) and of the node
   * processes together (/proc/PID/stat; a fsync job's request is one write and its flush),
   * and the share of the whole machine's CPU time that was busy during the job, %.
   */
  gatewayCpuUs?: number;
  nodesCpuUs?: number;
  machineBusyPct?: number;
}

/** Reduces fio's figures to the reported ones (adds write + flush for fsync jobs). */
export function jobFigures(f: FioFigures): JobFigures {
  const out: JobFigures = { iops: f.iops, mbps: f.mbps, meanLatUs: f.meanLatUs, p50LatUs: f.latPercentilesUs?.['50'] ?? 0, p99LatUs: f.p99LatUs };
  if (f.syncMeanLatUs !== undefined) {
    out.syncMeanLatUs = f.syncMeanLatUs;
    out.writePlusSyncMeanUs = Math.round((f.meanLatUs + f.syncMeanLatUs) * 10) / 10;
  }
  return out;
}

/**
 * Parses a size: plain bytes, or a number with k, m, g or t (binary units; `iB` or `B`
 * may follow, any case), e.g. `1g`, `512MiB`.
 * @throws Error for anything else, or a size that is not a positive multiple of 1 MiB.
 */
export function parseSize(s: string): number {
  const m = /^(\d+)\s*([kmgt]?)(i?b)?$/i.exec(s.trim());
  if (!m) throw new Error(`size ${JSON.stringify(s)}: expected bytes or a number with k, m, g or t (e.g. 1g)`);
  const bytes = Number(m[1]) * 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase());
  if (bytes <= 0 || bytes % 2 ** 20) throw new Error(`size ${s}: must be a positive multiple of 1 MiB`);
  return bytes;
}
