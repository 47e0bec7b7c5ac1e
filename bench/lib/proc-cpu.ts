/**
 * CPU time of processes from /proc (Linux): user + system time of a process and its threads,
 * for CPU-per-request figures that, unlike IOPS, do not depend on how much of the machine
 * the benchmark got (still inflated by contention, so compare runs of one benchmark only).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

let ticksPerSecond = 0;

/** Clock ticks per second of /proc/PID/stat's utime and stime (getconf CLK_TCK; 100 if unknown). */
function clockTicks(): number {
  if (!ticksPerSecond) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/**
 * User + system CPU time of process `pid` so far, µs (0 when it is gone).
 * Follows proc(5): fields 14 and 15 of /proc/PID/stat, counted after the command's ')'.
 */
export function cpuMicros(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1e6) / clockTicks();
  } catch {
    return 0;
  }
}

/** The node processes of a `cairn up` data directory: their pids from DATA-DIR/run/node*.pid. */
export function nodePids(dataDir: string, nodes = 3): number[] {
  const out: number[] = [];
  for (let i = 0; i < nodes; i++) {
    try {
      out.push(Number(readFileSync(join(dataDir, 'run', `node${i}.pid`), 'utf8')));
    } catch {
      // not running
    }
  }
  return out;
}

/** CPU µs per request of a gateway and its nodes over one measured run. */
export interface CpuPerRequest {
  /** The `cairn up` process (gateway, NBD server, initiator). */
  gatewayUs: number;
  /** Each node process, in node order. */
  nodesUs: number[];
  /** All of them together. */
  totalUs: number;
  /** The busy share of the whole machine's CPU time meanwhile, % (0 when /proc/stat is unreadable). */
  machineBusyPct: number;
}

/**
 * Runs `work` and returns its result with the CPU µs per request that `pids[0]` (gateway) and
 * `pids[1..]` (nodes) spent meanwhile; `requests(result, seconds)` says how many requests the
 * work made (e.g. IOPS × the run's wall seconds).
 */
export async function measureCpu<T>(pids: number[], work: () => Promise<T>, requests: (r: T, seconds: number) => number): Promise<{ result: T; cpu: CpuPerRequest }> {
  const before = pids.map(cpuMicros);
  const m0 = machineCpu();
  const t0 = performance.now();
  const result = await work();
  const seconds = (performance.now() - t0) / 1000;
  const used = pids.map((p, i) => cpuMicros(p) - before[i]);
  const m1 = machineCpu();
  const total = m1.totalUs - m0.totalUs;
  const n = Math.max(1, requests(result, seconds));
  const per = used.map((u) => Math.round((u / n) * 10) / 10);
  return {
    result,
    cpu: {
      gatewayUs: per[0], nodesUs: per.slice(1), totalUs: Math.round((used.reduce((a, b) => a + b, 0) / n) * 10) / 10,
      machineBusyPct: total > 0 ? Math.round(((m1.busyUs - m0.busyUs) / total) * 1000) / 10 : 0,
    },
  };
}

/** The machine's CPU time so far from /proc/stat's first line, µs summed over all CPUs: busy (user, nice, system, irq, softirq, steal) and total (those plus idle and iowait). */
export interface MachineCpu {
  busyUs: number;
  totalUs: number;
}

/**
 * Reads the machine's CPU time so far (proc(5): the `cpu` line of /proc/stat, in clock
 * ticks; guest time is already inside user). Zeros when /proc/stat cannot be read.
 */
export function machineCpu(): MachineCpu {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
    const us = 1e6 / clockTicks();
    const busy = user + nice + system + irq + softirq + steal;
    return { busyUs: busy * us, totalUs: (busy + idle + iowait) * us };
  } catch {
    return { busyUs: 0, totalUs: 0 };
  }
}

