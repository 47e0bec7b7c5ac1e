/**
 * `npm run -s bench -- compare [--runtime S] [--size SIZE] [--rounds N] [--skip-ceph] [--only JOB,...]`
 * (issue 15): the same fio jobs, in one run, against `nbdkit memory` (the NBD protocol
 * ceiling), Ceph RBD (3 OSDs, size 3) and `cairn up` (3 nodes, 3 replicas), started one
 * after the other, each filled over SIZE (default 1 GiB) before it is measured. Prints one
 * JSON object on stdout: machine and load, figures per system and job, the table of
 * Cairn ÷ Ceph and Cairn ÷ nbdkit ratios, and the issue's targets checked. Progress on
 * stderr. Ceph is skipped, with a line on stderr, when its packages are missing; a busy
 * monitor port (3300, 6789) fails the run before anything starts. Every process and temp
 * directory is removed on exit, also on SIGINT/SIGTERM. Exit 1 when a system or job failed.
 * `--rounds N` (default 1) runs the three systems N times in turn and reports the medians
 * (tableOfRounds): on a small shared machine one 15 s sample of a job moves by ±25 % from
 * one run to the next, enough to carry a ratio across a target's bound either way.
 */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { busyMonPorts, missingTools } from '../ceph/cluster.ts';
import { cleanupAll, cleanupSignal } from '../lib/cleanup.ts';
import { fio, round, type FioFigures } from '../lib/fio.ts';
import { measureCpu } from '../lib/proc-cpu.ts';
import { fillArgs, jobArgs, jobFigures, JOBS, parseSize, type JobFigures } from './jobs.ts';
import { DESCRIPTIONS, upCairn, upCeph, upNbdkit, type Running } from './systems.ts';
import { checkTargets, medianResults, tableOfRounds, withCpuLimits, type Results, type System } from './table.ts';

const log = (s: string): void => void process.stderr.write(`[bench compare] ${s}\n`);
const usage = 'usage: npm run -s bench -- compare [--runtime S] [--size SIZE] [--rounds N] [--skip-ceph] [--only JOB,...]';

let values: { runtime?: string; size?: string; rounds?: string; 'skip-ceph'?: boolean; only?: string };
try {
  ({ values } = parseArgs({ options: { runtime: { type: 'string', default: '15' }, size: { type: 'string', default: '1g' }, rounds: { type: 'string', default: '1' }, 'skip-ceph': { type: 'boolean', default: false }, only: { type: 'string' } } }));
} catch (e) {
  log(`${(e as Error).message}\n${usage}`);
  process.exit(2);
}
const runtime = Number(values.runtime);
let sizeBytes = 0;
try {
  sizeBytes = parseSize(values.size!);
} catch (e) {
  log((e as Error).message);
  process.exit(2);
}
const only = values.only?.split(',').map((s) => s.trim()).filter(Boolean);
const unknown = (only ?? []).filter((n) => !JOBS.some((j) => j.name === n));
const nRounds = Number(values.rounds);
if (!Number.isFinite(runtime) || runtime < 1 || unknown.length || !Number.isInteger(nRounds) || nRounds < 1 || nRounds > 9) {
  log(`${unknown.length ? `unknown job(s) ${unknown.join(', ')}; jobs: ${JOBS.map((j) => j.name).join(', ')}` : !(runtime >= 1) ? `--runtime must be ≥ 1 s` : `--rounds must be an integer from 1 to 9`}\n${usage}`);
  process.exit(2);
}
const jobs = JOBS.filter((j) => !only || only.includes(j.name));

/** Version line of a tool, or null when it is missing. */
function version(cmd: string, args: string[]): string | null {
  try {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'], timeout: 10000 }).toString().split('\n')[0].trim();
  } catch {
    return null;
  }
}
const load = (): number[] => loadavg().map((l) => round(l, 2));

// Preflight: Ceph's packages and its monitor ports, before anything starts.
const skipped: Partial<Record<System, string>> = {};
if (values['skip-ceph']) skipped.ceph = '--skip-ceph';
else {
  const missing = await missingTools();
  if (missing.length) {
    skipped.ceph = `Ceph packages missing (${missing.join(', ')}): apt-get install -y ceph-mon ceph-osd ceph-mgr ceph-common ceph-base`;
    log(`ceph: SKIPPED: ${skipped.ceph}`);
  } else {
    const busy = await busyMonPorts();
    if (busy.length) {
      log(`ceph: port(s) ${busy.join(', ')} on 127.0.0.1 already in use; the Ceph monitor needs 3300 and 6789 free (stop whatever listens there, or pass --skip-ceph)`);
      process.exit(1);
    }
  }
}

const machine = {
  cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memGiB: round(totalmem() / 2 ** 30, 1), node: process.version,
  fio: version('fio', ['--version']), nbdkit: version('nbdkit', ['--version']), ceph: skipped.ceph ? null : version('ceph', ['--version']),
  loadavgStart: load(), loadavgAfter: {} as Partial<Record<System, number[][]>>, loadavgEnd: [] as number[],
};
const rounds: Results[] = [];
const fill: Partial<Record<System, Array<{ seconds: number; mbps: number }>>> = {};
const errors: Record<string, string> = {};
const starts: Record<System, () => Promise<Running>> = {
  nbdkit: () => upNbdkit(sizeBytes),
  ceph: () => upCeph(sizeBytes, log),
  cairn: () => upCairn(sizeBytes),
};
log(`${machine.cpus} cpus, load ${machine.loadavgStart.join(' ')}; ${jobs.length} jobs × ${runtime} s on nbdkit, ceph${skipped.ceph ? ' (skipped)' : ''}, cairn over ${sizeBytes / 2 ** 20} MiB${nRounds > 1 ? `, ${nRounds} rounds` : ''}`);

/** Stops here for good once cleanup has begun (a signal): the handler exits the process. */
async function haltIfAborted(): Promise<void> {
  if (cleanupSignal.aborted) await new Promise(() => {});
}

/** One round: each system started, filled, measured on every job and stopped, in turn. */
async function runRound(k: number): Promise<Results> {
  const results: Results = {};
  const tag = nRounds > 1 ? `round ${k}/${nRounds}: ` : '';
  const key = (s: string): string => (nRounds > 1 ? `round${k}/${s}` : s);
  for (const sys of ['nbdkit', 'ceph', 'cairn'] as const) {
    if (skipped[sys]) continue;
    await haltIfAborted();
    const say = (m: string): void => log(`${tag}${sys}: ${m}`);
    say('starting');
    const t0 = Date.now();
    let running: Running;
    try {
      running = await starts[sys]();
    } catch (e) {
      await haltIfAborted();
      errors[key(sys)] = `start failed: ${(e as Error).message}`;
      say(`START FAILED: ${(e as Error).message}`);
      continue;
    }
    await haltIfAborted();
    say(`up after ${((Date.now() - t0) / 1000).toFixed(1)} s; filling ${sizeBytes / 2 ** 20} MiB (1 MiB writes, QD8)`);
    const figures: Record<string, JobFigures> = {};
    results[sys] = figures;
    try {
      const f0 = Date.now();
      await fio(fillArgs(running.target, sizeBytes), 'write', { env: running.target.env, signal: cleanupSignal });
      const seconds = (Date.now() - f0) / 1000;
      (fill[sys] ??= []).push({ seconds: round(seconds, 1), mbps: round(sizeBytes / 1e6 / seconds, 1) });
      for (const job of jobs) {
        await haltIfAborted();
        say(job.name);
        try {
          const pids = running.pids?.() ?? [];
          const run = (): Promise<FioFigures> => fio(jobArgs(running.target, job, sizeBytes, runtime), job.rw.includes('read') ? 'read' : 'write', { env: running.target.env, signal: cleanupSignal });
          const { result, cpu } = await measureCpu(pids, run, (r, seconds) => r.iops * seconds);
          const f = jobFigures(result);
          if (pids.length > 0) {
            f.gatewayCpuUs = cpu.gatewayUs;
            f.nodesCpuUs = round(cpu.totalUs - cpu.gatewayUs, 1);
            f.machineBusyPct = cpu.machineBusyPct;
          }
          figures[job.name] = f;
          say(`${job.name}: ${f.iops} IOPS, ${f.mbps} MB/s, mean ${f.meanLatUs} µs, p99 ${f.p99LatUs} µs${f.syncMeanLatUs !== undefined ? `, flush mean ${f.syncMeanLatUs} µs` : ''}`);
        } catch (e) {
          await haltIfAborted();
          errors[key(`${sys}/${job.name}`)] = (e as Error).message.slice(0, 2000);
          say(`${job.name} FAILED: ${(e as Error).message.slice(0, 500)}`);
        }
      }
    } catch (e) {
      await haltIfAborted();
      errors[key(`${sys}/fill`)] = (e as Error).message.slice(0, 2000);
      say(`fill FAILED: ${(e as Error).message.slice(0, 500)}`);
    } finally {
      say('stopping');
      await running.stop();
    }
    (machine.loadavgAfter[sys] ??= []).push(load());
  }
  return results;
}

for (let k = 1; k <= nRounds; k++) rounds.push(await runRound(k));
const results = medianResults(rounds);
machine.loadavgEnd = load();

const rows = tableOfRounds(rounds, only);
const checks = withCpuLimits(checkTargets(rows), results, machine.cpus);
const judged = checks.filter((c) => c.met !== null);
console.log(JSON.stringify({
  bench: 'compare',
  setup: {
    sizeBytes, runtimeSeconds: runtime, rampSeconds: 1, order: ['nbdkit', 'ceph', 'cairn'], oneSystemAtATime: true, rounds: nRounds,
    ...(nRounds > 1 ? { medians: 'each round starts, fills and measures every system in turn; results holds each figure\'s median over the rounds, rounds each round\'s figures, and a table ratio is the median of the rounds\' own ratios (listed in its rounds field)' } : {}),
    fill: 'each system is written once over sizeBytes (1 MiB, QD8) before its jobs, so reads hit written data',
    systems: DESCRIPTIONS,
    jobs: jobs.map((j) => ({ ...j })),
    cpu: 'Cairn\'s jobs carry gatewayCpuUs and nodesCpuUs: user + system CPU µs per request of the cairn up process and of the three node processes together (/proc/PID/stat over the fio run ÷ IOPS × its wall seconds; it includes the gateway\'s polling), and machineBusyPct, the busy share of all CPUs meanwhile (/proc/stat). Each target carries cpuLimit: the best figure that CPU cost allows on machine.cpus CPUs against the figure the target needs',
    fsyncJob: 'randwrite-4k-qd1-fsync: fio fsync=1 sends a flush (NBD FLUSH, rbd flush) after every write; meanLatUs is the write alone, writePlusSyncMeanUs the write plus its flush: the mean time to make one 4 KiB write durable (the figure compared)',
  },
  machine,
  ...(Object.keys(skipped).length ? { skipped } : {}),
  results,
  ...(nRounds > 1 ? { rounds } : {}),
  fill,
  table: {
    note: 'ratios are Cairn ÷ Ceph and Cairn ÷ nbdkit of each row\'s metric from this one run (with rounds: the median of the rounds\' ratios); for rows with better = "lower" (latency, µs) a ratio below 1 means Cairn is faster; for "higher" (IOPS, MB/s) above 1',
    rows,
  },
  targets: {
    summary: `${judged.filter((c) => c.met).length} of ${judged.length} checked targets met${checks.length > judged.length ? ` (${checks.length - judged.length} not checked: a figure is missing)` : ''}`,
    allMet: judged.length === checks.length ? judged.every((c) => c.met) : null,
    checks,
  },
  ...(Object.keys(errors).length ? { errors } : {}),
}, null, 2));
await cleanupAll();
process.exitCode = Object.keys(errors).length ? 1 : 0;
