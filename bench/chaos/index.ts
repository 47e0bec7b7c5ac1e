/**
 * `npm run chaos -- [--rounds N] [--seed S] [--data-dir DIR] [--faults k1,k2] [--heal-timeout SEC]
 *   [--nodes N] [--volume-mib M] [--slot-mib M] [--rate R] [--stop-authority]`
 *
 * A chaos suite in the box: a 5-node local cluster (supervised node processes, fast down
 * detection, 3 replicas, min_size 2) whose volume a gateway child serves over NBD, fio (nbd
 * engine) writing crc32c-verifiable data through it, and N rounds of one seeded random fault
 * each (faults.ts). A round: a flushed pre-fault write, background writes, the fault, a wait
 * for HEALTH_OK, a verify-only read of everything written so far (workload.ts), and a
 * member-by-member comparison of every extent's copies (checks.ts). `--seed S` replays the
 * same faults, targets and timings. One line per round on stderr; one JSON summary on
 * stdout (summary.ts). Exit code 1 when any verify error, lost flushed write, replica
 * mismatch or failed round was found.
 */
import { randomInt } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ApiError } from '../../src/api/index.ts';
import { LocalCluster, freePorts } from '../../src/cluster/index.ts';
import { membershipOf } from '../../src/config/index.ts';
import { replicaCheck, waitHealed } from './checks.ts';
import { api, WirePeers, type ChaosContext } from './context.ts';
import { FAULT_KINDS, canAddNode, planFault, resumeStopped, runFault, type FaultKind, type FaultOutcome } from './faults.ts';
import { GatewayProcess } from './gateway-process.ts';
import { Rng } from './prng.ts';
import { seconds, summarize, type RoundResult } from './summary.ts';
import { Workload, killAllFio } from './workload.ts';

const MiB = 1024 * 1024;

const USAGE = `usage: npm run chaos -- [--rounds N] [--seed S] [--data-dir DIR] [--faults k1,k2] [--heal-timeout SEC]
  [--nodes N] [--volume-mib M] [--slot-mib M] [--rate R] [--stop-authority]
  --rounds N        rounds of one seeded random fault each (default 10)
  --seed S          replay the faults, targets and timings of an earlier run (default: random)
  --data-dir DIR    keep the cluster's files and logs in DIR (new or empty; default: a temp dir, removed)
  --faults k1,k2    faults to draw from (default: all: ${FAULT_KINDS.join(', ')})
  --heal-timeout S  how long a round waits for HEALTH_OK (default 120)
  --nodes N         storage nodes, >= 3 (default 5)
  --volume-mib M    volume size (default 256); --slot-mib M: verify slot size (default 4)
  --rate R          fio rate of the background writes, per second (default 2m)
  --stop-authority  let sigstop-node also stop the node that marks nodes down
Prints one line per round on stderr and a JSON summary on stdout; exit 1 on any verify error,
lost flushed write, replica mismatch or failed round; exit 2 on bad arguments.`;

const args = (() => {
  try {
    return parseArgs({
      options: {
        help: { type: 'boolean', short: 'h', default: false },
        rounds: { type: 'string', default: '10' },
        seed: { type: 'string' },
        'data-dir': { type: 'string' },
        faults: { type: 'string', default: FAULT_KINDS.join(',') },
        'heal-timeout': { type: 'string', default: '120' },
        nodes: { type: 'string', default: '5' },
        'volume-mib': { type: 'string', default: '256' },
        'slot-mib': { type: 'string', default: '4' },
        rate: { type: 'string', default: '2m' },
        'stop-authority': { type: 'boolean', default: false },
      },
    });
  } catch (e) {
    process.stderr.write(`chaos: ${(e as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
})();
if (args.values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const { values } = args;
const usage = (msg: string): never => {
  process.stderr.write(`chaos: ${msg}\n`);
  process.exit(2);
};
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 0) usage(`--rounds must be a whole number, got '${values.rounds}'`);
const seed = values.seed === undefined ? randomInt(1, 2 ** 31) : Number(values.seed);
if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) usage(`--seed must be an integer 0..2^32-1, got '${values.seed}'`);
const enabled = values.faults!.split(',').map((s) => s.trim()).filter(Boolean) as FaultKind[];
for (const k of enabled) if (!FAULT_KINDS.includes(k)) usage(`unknown fault '${k}' (known: ${FAULT_KINDS.join(', ')})`);
if (!enabled.length) usage('--faults names no fault');
const healTimeoutMs = Number(values['heal-timeout']) * 1000;
const nodeCount = Number(values.nodes);
const volumeBytes = Number(values['volume-mib']) * MiB;
const slotBytes = Number(values['slot-mib']) * MiB;
if (!(healTimeoutMs > 0) || !(nodeCount >= 3) || !(volumeBytes > 0) || !(slotBytes >= 64 * 1024) || slotBytes % 65536) usage('bad --heal-timeout, --nodes (>= 3), --volume-mib or --slot-mib');

const log = (line: string): void => void process.stderr.write(`[chaos] ${line}\n`);
const t0 = Date.now();
const notes: string[] = [];

// A fresh data directory (kept when given with --data-dir).
const keep = values['data-dir'] !== undefined;
const dataDir = keep ? resolve(values['data-dir']!) : mkdtempSync(join(tmpdir(), 'cairn-chaos-'));
if (keep) {
  if (existsSync(join(dataDir, 'cluster.json'))) usage(`${dataDir} already holds a cluster; give a new or empty directory`);
  mkdirSync(dataDir, { recursive: true });
}
const chaosDir = join(dataDir, 'chaos');
mkdirSync(chaosDir, { recursive: true });

const membership = { heartbeatMs: 250, downAfterMs: 1500, digestMs: 250 };
log(`seed ${seed}, ${rounds} rounds, data dir ${dataDir}; starting ${nodeCount} nodes ...`);
let cluster: LocalCluster;
try {
  cluster = await LocalCluster.start({
    dataDir,
    layout: {
      nodes: nodeCount, devicesPerNode: 1, deviceBytes: 1024 * MiB, partitionsPerDevice: 4, replicas: 3, minSize: 2,
      volumeName: 'vol0', volumeBytes, extentBytes: MiB, membership,
    },
    // Generous: node processes start slowly on a loaded two-core machine.
    startTimeoutMs: 120000,
    supervise: true,
    onSupervisor: (l) => log(`supervisor: ${l}`),
  });
} catch (e) {
  if (!keep) rmSync(dataDir, { recursive: true, force: true });
  throw e;
}
const volume = cluster.config.volumes.find((v) => v.name === 'vol0')!;
const [nbdPort] = await freePorts(1);
const gateway = new GatewayProcess({ dataDir, stateDir: join(chaosDir, 'gateways'), host: cluster.config.nodes[0].host, port: nbdPort, volume: volume.name });
const ctx: ChaosContext = {
  cluster,
  dataDir,
  volume,
  pool: cluster.config.pools.find((p) => p.id === volume.pool)!,
  gateway,
  downAfterMs: membershipOf(cluster.config).downAfterMs,
  healTimeoutMs,
  log,
};
const peers = new WirePeers(ctx);
const workload = new Workload({ stateDir: join(chaosDir, 'fio'), volumeBytes, slotBytes, gateway, backgroundRate: values.rate!, iodepth: 8 });

let cleaning: Promise<void> | null = null;
/** Stops everything this run started: fio, the gateway, stopped nodes, the cluster. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    killAllFio();
    resumeStopped();
    peers.close();
    await gateway.stop(5000).catch(() => undefined);
    await cluster.stop(10000).catch(() => undefined);
    if (!keep) rmSync(dataDir, { recursive: true, force: true });
  })();
  return cleaning;
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`${sig}: stopping`);
    void cleanup().then(() => process.exit(130));
  });
}

/** Which kinds can run on this build; the others are skipped with a note. */
async function detectFeatures(): Promise<Set<FaultKind>> {
  const missing = new Set<FaultKind>();
  if (enabled.includes('add-node') && typeof (cluster as { addNode?: unknown }).addNode !== 'function') {
    missing.add('add-node');
    notes.push('add-node skipped: LocalCluster.addNode() does not exist in this build');
  }
  if (enabled.includes('corrupt')) {
    try {
      // Nothing is written yet: a deep scrub now is instant, and tells whether the route exists.
      await api(ctx, 0, 15000).call('POST', '/v1/scrub', { deep: true });
    } catch (e) {
      if (e instanceof ApiError && (e.status === 404 || e.status === 405)) {
        missing.add('corrupt');
        notes.push('corrupt skipped: POST /v1/scrub answers 404 in this build, so a flipped copy has no repair path but read repair (which only the primary\'s copy meets)');
      } else {
        notes.push(`corrupt: POST /v1/scrub {deep:true} answered ${(e as Error).message}; kept enabled`);
      }
    }
  }
  return missing;
}

/** One round: pre-fault write, background writes, the fault, heal wait, verify pass, replica check. */
async function runRound(i: number, missing: Set<FaultKind>): Promise<RoundResult> {
  const rng = Rng.forRound(seed, i);
  const kinds = enabled.filter((k) => !missing.has(k) && (k !== 'add-node' || canAddNode(ctx)));
  // Only add-node enabled and the cluster at its cap: kill a node instead.
  const plan = planFault(rng, kinds.length ? kinds : ['kill9-node'], ctx.downAfterMs);
  const seedA = rng.int(1, 2 ** 31 - 1);
  const started = Date.now();
  const phases: string[] = [];
  let mark = started;
  const phase = (name: string): void => {
    phases.push(`${name} ${seconds(Date.now() - mark)}`);
    mark = Date.now();
  };
  const r: RoundResult = { round: i, fault: plan.kind, target: '?', healMs: null, verifyErrors: 0, lostFlushedWrites: 0, replicaMismatches: 0, reasons: [] };

  if (!gateway.up) await gateway.start().catch((e: Error) => r.reasons.push(`gateway start: ${e.message}`));
  try {
    await workload.writeFlushed(i, seedA);
  } catch (e) {
    r.reasons.push(`pre-fault write: ${(e as Error).message}`);
  }
  phase('write');
  const flushedBeforeFault = new Set(workload.live.filter((s) => s.flushed).map((s) => s.name));
  const bg = workload.background(i, () => rng.int(1, 2 ** 31 - 1));
  // The fault should meet writes in flight: wait until fio writes, then the planned delay.
  if (!(await bg.writing(10, 60000))) r.reasons.push('background fio completed fewer than 10 writes within 60 s before the fault');
  await new Promise((res) => setTimeout(res, plan.delayMs));

  let outcome: FaultOutcome | null = null;
  try {
    outcome = await runFault({ ctx, peers, workload, stopAuthority: values['stop-authority']! }, plan);
    r.target = outcome.target;
    r.reasons.push(...outcome.problems);
  } catch (e) {
    r.reasons.push(`fault: ${(e as Error).message}`);
  }
  const heal = await waitHealed(ctx, { minEpoch: outcome?.minEpoch ?? 0, avoid: outcome?.avoid, extra: outcome?.extra, timeoutMs: healTimeoutMs });
  phase('fault+heal');
  if (heal.healed && outcome) r.healMs = heal.at - outcome.healFrom;
  else r.reasons.push(`not healed within ${healTimeoutMs / 1000} s: ${heal.last}`);

  await bg.stop();
  r.reasons.push(...bg.ioErrors.map((e) => `host I/O error during the fault: ${e}`));
  if (bg.hung) hungSegments += bg.hung;
  try {
    if (!gateway.up) await gateway.start();
    await gateway.flush();
    workload.markFlushed(gateway.incarnation);
  } catch (e) {
    r.reasons.push(`flush after the round: ${(e as Error).message}`);
  }

  phase('stop+flush');
  // Verify-only read of everything written so far.
  const verdicts = await workload.verifyAll();
  phase('verify');
  const badSegs: string[] = [];
  let checked = 0;
  for (const v of verdicts) {
    checked += v.checked;
    const bad = v.badBlocks || (v.jobError !== 0 ? 1 : 0);
    if (!bad) continue;
    const flushed = flushedBeforeFault.has(v.segment.name);
    r.verifyErrors += bad;
    if (flushed) r.lostFlushedWrites += bad;
    badSegs.push(`${v.segment.name} (slot ${v.segment.slot}, writes listed by ${v.segment.source === 'fio' ? 'fio' : 'the gateway\'s acks'}${flushed ? ', flushed before the fault' : ''}): ${bad} bad block(s)${v.jobError ? `, fio error ${v.jobError}` : ''}: ${v.lines.join(' | ')}`);
  }
  if (badSegs.length) {
    r.reasons.push(`verify: ${r.verifyErrors} bad block(s) (${r.lostFlushedWrites} flushed before the fault) in ${badSegs.length} segment(s): ${badSegs.slice(0, 3).join(' || ')}`);
    for (const b of badSegs) log(`  verify: ${b}`);
  }

  // Every extent's copies identical on its members.
  let replicas = '';
  try {
    const rc = await replicaCheck(ctx, peers);
    r.replicaMismatches = rc.mismatches.length;
    replicas = rc.mismatches.length ? `${rc.mismatches.length} of ${rc.extents} extents differ` : `replicas ok (${rc.extents} extents${rc.strays ? `, ${rc.strays} copies awaiting trim` : ''})`;
    if (rc.mismatches.length) {
      r.reasons.push(`replicas: ${rc.mismatches.length} extent(s) differ, e.g. ${rc.mismatches.slice(0, 3).join(' || ')}`);
      for (const m of rc.mismatches.slice(0, 20)) log(`  mismatch: ${m}`);
    }
  } catch (e) {
    replicas = 'replica check incomplete';
    r.reasons.push(`replica check incomplete: ${(e as Error).message}`);
  }

  phase('replicas');
  const healed = r.healMs !== null ? `healed in ${seconds(r.healMs)}` : 'NOT healed';
  const verify = r.verifyErrors ? `verify: ${r.verifyErrors} bad block(s), ${r.lostFlushedWrites} flushed` : `verify ok (${verdicts.length} slots, ${checked} writes)`;
  log(`round ${i}/${rounds} ${plan.kind} ${r.target}: ${healed}, ${verify}, ${replicas}${r.reasons.length ? ` — FAILED: ${r.reasons[0]}` : ''} [${bg.describe()}; ${phases.join(', ')}]`);
  return r;
}

const results: RoundResult[] = [];
let exitCode = 0;
/** Background fio jobs that hung on a killed gateway's connection (their writes checked from the gateway's acks). */
let hungSegments = 0;
try {
  await gateway.start();
  log(`cluster up (${cluster.config.nodes.length} nodes, epoch ${cluster.view.epoch}); gateway generation ${gateway.generation} serves ${gateway.uri}`);
  const missing = await detectFeatures();
  const first = await waitHealed(ctx, { minEpoch: 0, timeoutMs: healTimeoutMs });
  if (!first.healed) notes.push(`the new cluster was not HEALTH_OK before round 1: ${first.last}`);
  for (let i = 1; i <= rounds; i++) results.push(await runRound(i, missing));
} catch (e) {
  notes.push(`run aborted: ${(e as Error).stack ?? (e as Error).message}`);
  exitCode = 1;
}

notes.push(
  'workload: each round first writes one slot of the volume with fio (nbd engine, randwrite 4k-64k, verify=crc32c, one pass, no block written twice) ending with a flush (end_fsync), then keeps writing further slots, rate-limited with a flush every 16 writes, while the fault runs (stopped with SIGINT once healed); then the gateway flushes the volume.',
  'verify: after each round every live slot (all rounds so far) is re-read by fio replaying, as a read job with verify=crc32c (--read_iolog), exactly the writes that completed in it: the writes fio logged as successfully completed (clat log with offsets), or, when a gateway kill left fio hung (it is then killed), the writes the killed gateway acknowledged (it appends each to acks.log before its NBD reply). verifyErrors counts bad blocks (writes) anywhere; lostFlushedWrites those in slots whose writes had all been flushed (end_fsync, or a flush by the same gateway) before that round\'s fault. Writes acked by a gateway that was then killed are never counted as flushed. fio\'s verify_state_save/load is not used: after a dropped connection its state counts failed writes as done, and a job\'s offsets depend on its index in the command line.',
  'replica check: for every extent any node reports held (GET /v1/recovery), each member placed on the newest map is asked for page versions (Op.Versions) and bytes (Op.Read, Flag.Recovery); any difference or non-Ok reply is a mismatch.',
  'timeToHealMs: from the fault\'s last action (kill, SIGCONT, in, weight back to 1, addNode() returned, bytes flipped + scrub asked) until GET /v1/status said HEALTH_OK at the fault\'s epoch or later (plus: killed node restarted and peered, new gateway up, flipped copy reads good).',
  `setup: ${nodeCount} nodes x 1 device of 1 GiB (4 partitions), 3 replicas, min_size 2, ${volumeBytes / MiB} MiB volume in ${slotBytes / MiB} MiB slots, membership ${JSON.stringify(membership)}, background rate ${values.rate}/s${values['stop-authority'] ? '' : '; sigstop-node spares the authority node (it is the one that marks nodes down)'}.`,
);
if (hungSegments) notes.push(`${hungSegments} background fio job(s) hung on a killed gateway's connection (fio's nbd engine loops on "nbd_poll: nothing to poll for in state DEAD") and were killed 5 s after the kill; their writes were checked from the gateway's acks.`);
const summary = summarize(seed, results, Date.now() - t0, notes);
await cleanup();
if (summary.verifyErrors || summary.lostFlushedWrites || summary.replicaMismatches || summary.failedRounds.length) exitCode = 1;
process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
process.exit(exitCode);
