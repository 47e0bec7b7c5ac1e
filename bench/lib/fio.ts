/**
 * Running fio jobs for benchmarks and reducing fio's JSON output to the figures we report:
 * IOPS, MB/s (10^6 bytes/s), mean and p99 completion latency in µs.
 */
import { execFile } from 'node:child_process';

/** Figures of one fio job for one direction (read or write). */
export interface FioFigures {
  iops: number;
  mbps: number;
  meanLatUs: number;
  p99LatUs: number;
  /** fio's completion-latency percentiles (1 … 99.99), µs, keyed by percentile ("50", "99.9"): a latency CDF. */
  latPercentilesUs?: Record<string, number>;
  /** Mean latency of fio's sync requests (fsync=N, fdatasync=N: an NBD flush, an rbd flush), µs; only when the job issued any. */
  syncMeanLatUs?: number;
}

/** A benchmark job: its name and fio arguments (without the target). */
export interface FioJob {
  name: string;
  rw: 'randread' | 'randwrite' | 'read' | 'write';
  bs: string;
  iodepth: number;
}

/** Rounds to `d` decimals. */
export function round(n: number, d = 1): number {
  const f = 10 ** d;
  return Math.round(n * f) / f;
}

/**
 * Runs fio with `args` (plus --output-format=json --lat_percentiles=1) and returns the
 * figures of its only job, for `dir`. `opts.env` replaces fio's environment (e.g. CEPH_CONF
 * for the rbd engine; default: this process's); `opts.signal` kills fio when aborted.
 * @throws Error with fio's stderr when it fails or is aborted.
 */
export function fio(args: string[], dir: 'read' | 'write', opts: { env?: NodeJS.ProcessEnv; signal?: AbortSignal } = {}): Promise<FioFigures> {
  return new Promise((resolve, reject) => {
    execFile('fio', [...args, '--output-format=json', '--lat_percentiles=1'], { maxBuffer: 64 << 20, ...opts }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`fio ${args.join(' ')} failed: ${stderr || err.message}`));
      const job = JSON.parse(stdout.slice(stdout.indexOf('{'))).jobs[0];
      const j = job[dir];
      const sync = job.sync as { total_ios?: number; lat_ns?: { mean: number } } | undefined;
      resolve({
        iops: round(j.iops, 0),
        mbps: round(j.bw_bytes / 1e6, 1),
        meanLatUs: round(j.lat_ns.mean / 1000, 1),
        p99LatUs: round((j.lat_ns.percentile?.['99.000000'] ?? 0) / 1000, 1),
        latPercentilesUs: Object.fromEntries(Object.entries((j.lat_ns.percentile ?? {}) as Record<string, number>).map(([k, v]) => [String(Number(k)), round(v / 1000, 1)])),
        ...(sync?.total_ios && sync.lat_ns ? { syncMeanLatUs: round(sync.lat_ns.mean / 1000, 1) } : {}),
      });
    });
  });
}
