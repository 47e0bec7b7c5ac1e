/**
 * `npm run bench -- nbd [--runtime S] [--size SIZE] [--skip-degraded] [--skip-metrics-off] [--sweep]`: fio's nbd engine against
 * `cairn up`'s export (3 nodes, 3 replicas, all on this machine) and, in the same run, against
 * `nbdkit memory` over TCP loopback as the ceiling of an NBD server that does no work; then
 * the same jobs on Cairn degraded: node 2 stopped (SIGSTOP) and marked down by the cluster, so
 * every extent runs on 2 of its 3 members; then the same cluster restarted with `--no-metrics`
 * and once more with metrics (the metrics overhead). Prints one JSON object: figures per job
 * for each target, the Cairn processes' CPU µs per request (gateway and each node, from
 * /proc), Cairn ÷ nbdkit ratios and metrics on ÷ off (IOPS, latency and CPU per request). `--sweep` adds 4 KiB random
 * reads and writes at queue depths 1 to 32 on both targets (IOPS against queue depth, for
 * `npm run bench -- report`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { freePorts } from '../../src/cluster/index.ts';
import { loadConfig } from '../../src/config/index.ts';
import { ApiClient } from '../../src/api/index.ts';
import { fio, round, type FioFigures, type FioJob } from '../lib/fio.ts';
import { metricsCost } from '../lib/metrics-cost.ts';
import { startCairn } from '../lib/cairn-up.ts';
import { measureCpu, nodePids, type CpuPerRequest } from '../lib/proc-cpu.ts';
import { startNbdkit } from '../lib/nbdkit.ts';

const { values } = parseArgs({ options: { runtime: { type: 'string', default: '10' }, size: { type: 'string', default: '256m' }, 'skip-degraded': { type: 'boolean', default: false }, 'skip-metrics-off': { type: 'boolean', default: false }, sweep: { type: 'boolean', default: false } } });
const runtime = Number(values.runtime);
const size = values.size!;

const JOBS: FioJob[] = [
  { name: 'randread-4k-qd32', rw: 'randread', bs: '4k', iodepth: 32 },
  { name: 'randwrite-4k-qd32', rw: 'randwrite', bs: '4k', iodepth: 32 },
  { name: 'randread-4k-qd1', rw: 'randread', bs: '4k', iodepth: 1 },
  { name: 'randwrite-4k-qd1', rw: 'randwrite', bs: '4k', iodepth: 1 },
  { name: 'read-1m-qd8', rw: 'read', bs: '1m', iodepth: 8 },
  { name: 'write-1m-qd8', rw: 'write', bs: '1m', iodepth: 8 },
];

const log = (s: string): void => void process.stderr.write(`[bench nbd] ${s}\n`);

function args(uri: string, job: FioJob): string[] {
  return [`--name=${job.name}`, '--ioengine=nbd', `--uri=${uri}`, `--rw=${job.rw}`, `--bs=${job.bs}`, `--iodepth=${job.iodepth}`,
    `--size=${size}`, '--time_based', `--runtime=${runtime}`, '--ramp_time=1', '--randrepeat=0'];
}

const dataDir = mkdtempSync(join(tmpdir(), 'cairn-bench-'));
const [cairnPort, kitPort] = await freePorts(2);
log(`starting cairn up (${dataDir}) and nbdkit memory; ${runtime}s per job over ${size}`);
let stopCairn = await startCairn(dataDir, cairnPort);
const stopKit = await startNbdkit(kitPort);
const targets = { cairn: `nbd://127.0.0.1:${cairnPort}/vol0`, nbdkit: `nbd://127.0.0.1:${kitPort}` };
const results: Record<string, Record<string, FioFigures>> = { cairn: {}, nbdkit: {}, cairnDegraded: {}, cairnNoMetrics: {}, cairnMetricsAgain: {} };
/** CPU µs per request of the Cairn processes, per phase and job (fio's requests over the run). */
const cpu: Record<string, Record<string, CpuPerRequest>> = { cairn: {}, cairnDegraded: {}, cairnNoMetrics: {}, cairnMetricsAgain: {} };
/** Runs `job` on Cairn's export and records the CPU its processes spent per request under `phase`. */
async function cairnJob(phase: string, job: FioJob): Promise<FioFigures> {
  const pids = [stopCairn.pid, ...nodePids(dataDir)];
  const { result, cpu: c } = await measureCpu(pids, () => fio(args(targets.cairn, job), job.rw.includes('read') ? 'read' : 'write'), (r, seconds) => r.iops * seconds);
  cpu[phase][job.name] = c;
  return result;
}
const sweep: Array<{ target: string; rw: string; iodepth: number } & FioFigures> = [];

/** Stops node `id` of the cluster in `dataDir` with SIGSTOP and waits until the map marks it down. */
async function degrade(id: number): Promise<() => void> {
  const config = (await loadConfig(dataDir))!;
  const pid = Number(readFileSync(join(dataDir, 'run', `node${id}.pid`), 'utf8'));
  const n0 = config.nodes[0];
  const api = new ApiClient(`http://${n0.host}:${n0.apiPort}`, config.token, 3000);
  process.kill(pid, 'SIGSTOP');
  const t0 = Date.now();
  for (;;) {
    const m = await api.call<{ nodes: Array<{ id: number; up: boolean }> }>('GET', '/v1/map');
    if (m.nodes.find((x) => x.id === id)?.up === false) break;
    if (Date.now() - t0 > 60000) throw new Error(`node ${id} was not marked down within 60 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
  log(`node ${id} stopped (SIGSTOP) and marked down after ${Date.now() - t0} ms`);
  return () => process.kill(pid, 'SIGCONT');
}
/** Waits (up to 3 min) for HEALTH_OK: no resync or backfill left to steal CPU from a measurement. */
async function healthy(): Promise<void> {
  const config = (await loadConfig(dataDir))!;
  const n0 = config.nodes[0];
  const api = new ApiClient(`http://${n0.host}:${n0.apiPort}`, config.token, 10000);
  const t0 = Date.now();
  for (;;) {
    const st = await api.call<{ health: string }>('GET', '/v1/status').catch(() => ({ health: 'unreachable' }));
    if (st.health === 'HEALTH_OK') return;
    if (Date.now() - t0 > 180000) throw new Error(`cluster not HEALTH_OK within 3 min (${st.health})`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
try {
  for (const [name, uri] of Object.entries(targets)) {
    log(`prefill ${size} on ${name} (reads must hit written data, not holes)`);
    await fio([`--name=prefill`, '--ioengine=nbd', `--uri=${uri}`, '--rw=write', '--bs=1m', '--iodepth=8', `--size=${size}`], 'write');
  }
  for (const job of JOBS) {
    for (const [name, uri] of Object.entries(targets)) {
      log(`${job.name} on ${name}`);
      results[name][job.name] = name === 'cairn' ? await cairnJob('cairn', job) : await fio(args(uri, job), job.rw.includes('read') ? 'read' : 'write');
    }
  }
  if (values.sweep) {
    // IOPS against queue depth: 4 KiB random reads and writes at QD 1…32 on both targets.
    for (const rw of ['randread', 'randwrite'] as const) {
      for (const iodepth of [1, 2, 4, 8, 16, 32]) {
        for (const [name, uri] of Object.entries(targets)) {
          const job: FioJob = { name: `${rw}-4k-qd${iodepth}`, rw, bs: '4k', iodepth };
          log(`sweep ${job.name} on ${name}`);
          sweep.push({ target: name, rw, iodepth, ...(await fio(args(uri, job), rw === 'randread' ? 'read' : 'write')) });
        }
      }
    }
  }
  if (!values['skip-degraded']) {
    const resume = await degrade(2);
    try {
      for (const job of JOBS) {
        log(`${job.name} on cairn, degraded`);
        results.cairnDegraded[job.name] = await cairnJob('cairnDegraded', job);
      }
    } finally {
      resume();
    }
  }
  if (!values['skip-metrics-off']) {
    // Metrics overhead (issue 13: within 5 %): the same data directory served again with
    // --no-metrics (gateway metrics and the nodes' request counters off), then with metrics
    // once more; one cluster at a time, so an idle one steals no CPU. On ÷ off uses the mean
    // of the two metrics-on runs (first and last), which cancels slow drift.
    for (const [phase, extra] of [['cairnNoMetrics', ['--no-metrics']], ['cairnMetricsAgain', []]] as const) {
      await stopCairn();
      log(`restarting cairn up ${extra.join(' ') || '(metrics on)'}`);
      stopCairn = await startCairn(dataDir, cairnPort, [...extra]);
      await healthy();
      for (const job of JOBS) {
        log(`${job.name} on ${phase}`);
        results[phase][job.name] = await cairnJob(phase, job);
      }
    }
  }
} finally {
  await stopCairn();
  await stopKit();
  rmSync(dataDir, { recursive: true, force: true });
}
const ratio: Record<string, { iops: number; meanLat: number; degradedIops?: number }> = {};
for (const job of JOBS) {
  const c = results.cairn[job.name];
  const k = results.nbdkit[job.name];
  const d = results.cairnDegraded[job.name];
  ratio[job.name] = { iops: round(c.iops / k.iops, 3), meanLat: round(c.meanLatUs / k.meanLatUs, 2), ...(d ? { degradedIops: round(d.iops / k.iops, 3) } : {}) };
}
const cost = await metricsCost();
const metricsOnOverOff: Record<string, { iops: number; meanLat: number; cpuPerRequest: number }> = {};
if (!values['skip-metrics-off']) {
  for (const job of JOBS) {
    const on = (k: 'iops' | 'meanLatUs'): number => (results.cairn[job.name][k] + results.cairnMetricsAgain[job.name][k]) / 2;
    const off = results.cairnNoMetrics[job.name];
    const cpuOn = (cpu.cairn[job.name].totalUs + cpu.cairnMetricsAgain[job.name].totalUs) / 2;
    metricsOnOverOff[job.name] = { iops: round(on('iops') / off.iops, 3), meanLat: round(on('meanLatUs') / off.meanLatUs, 3), cpuPerRequest: round(cpuOn / cpu.cairnNoMetrics[job.name].totalUs, 3) };
  }
}
/**
 * CPU the whole system spends per request on the 4 KiB QD32 jobs, µs: both cores over the
 * IOPS of the metrics-off run (an upper bound: the cores are saturated in those jobs).
 */
function cpuPerRequest(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const job of ['randread-4k-qd32', 'randwrite-4k-qd32']) out[job] = round((cpus().length * 1e6) / results.cairnNoMetrics[job].iops, 1);
  return out;
}
/** Share of that CPU the metrics take: one gateway record and three node records (3 replicas) per request. */
function cpuShare(c: { gatewayUs: number; nodeUs: number }): Record<string, number> {
  const per = cpuPerRequest();
  return Object.fromEntries(Object.entries(per).map(([job, us]) => [job, round((c.gatewayUs + 3 * c.nodeUs) / us, 4)]));
}
console.log(JSON.stringify({
  bench: 'nbd',
  setup: { cairn: 'cairn up defaults: 3 node processes, 3 replicas, 1 GiB thin volume, NBD over TCP loopback', reference: 'nbdkit memory 1G over TCP loopback', size, runtimeSeconds: runtime, cpus: cpus().length, loadavg: loadavg().map((l) => round(l, 2)) },
  cairn: results.cairn,
  nbdkit: results.nbdkit,
  ...(values['skip-degraded'] ? {} : { cairnDegraded: results.cairnDegraded, degradedSetup: 'node 2 of 3 stopped with SIGSTOP and marked down: every extent on 2 of 3 members, writes recorded for resync' }),
  ratioCairnToNbdkit: ratio,
  cpuUsPerRequest: cpu,
  cpuSetup: 'user + system CPU of the cairn up process (gateway) and each node process over the fio run (/proc/PID/stat), divided by IOPS × the run\'s wall seconds',
  ...(values.sweep ? { sweep } : {}),
  ...(values['skip-metrics-off'] ? {} : {
    cairnNoMetrics: results.cairnNoMetrics, cairnMetricsAgain: results.cairnMetricsAgain, metricsOnOverOff,
    metricsCostPerRequest: { ...cost, cairnCpuUsPerRequest: cpuPerRequest(), shareOfCpu: cpuShare(cost) },
    metricsSetup: 'after the runs above: the same data directory restarted with cairn up --no-metrics, then with metrics again; on = mean of the first and last runs',
  }),
}, null, 2));
