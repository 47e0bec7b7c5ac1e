/**
 * Recovery progress in the cluster status (src/api/status.ts): summarizeProgress on
 * hand-made reports (sums, waves, ETA estimates, reports without progress), report
 * validation with and without the progress fields, computeStatus's progress checks, traffic
 * sums and misplaced copies on a small map; and the real CLI (`cairn recovery status
 * --json`, `--watch`, `cairn status`) against a small LocalCluster with nothing to do.
 */
import test from 'ava';
import { LocalCluster } from '../../src/cluster/index.ts';
import { initialMap } from '../../src/clustermap/index.ts';
import { formatMisplaced, formatProgress, formatSeconds } from '../../src/api/format.ts';
import { computeStatus, NodeRecoveryReportSchema, summarizeProgress, type ProgressSummary } from '../../src/api/status.ts';
import { RECOVERY_KINDS, type RecoveryKind, type RecoveryProgress } from '../../src/recovery/report.ts';
import { CAIRN, tempDataDir } from '../helpers/cairn-up.ts';
import { EXTENTS, MIB, idleKinds, makeConfig, nextMap, placement, reports } from '../helpers/status.ts';
import { run } from '../helpers/tools.ts';

/** An active pass of `kind` with the given figures (the rest idle-like). */
function pass(kind: RecoveryKind, over: Partial<RecoveryProgress>): RecoveryProgress {
  return { kind, active: true, startedAt: 1000, finishedAt: null, extentsTotal: 0, extentsDone: 0, bytesTotal: 0, bytesDone: 0, rate: 0, ...over };
}

/** Every kind idle except the given passes. */
function kinds(...passes: RecoveryProgress[]): RecoveryProgress[] {
  return idleKinds().map((p) => passes.find((x) => x.kind === p.kind) ?? p);
}

const of = (s: ProgressSummary[], kind: RecoveryKind): ProgressSummary => s.find((x) => x.kind === kind)!;

test('summarizeProgress: no reports, or reports without progress: every kind idle, in order', (t) => {
  for (const rs of [[], [{ node: 0 }, { node: 1, progress: [] }]]) {
    const s = summarizeProgress(rs);
    t.deepEqual(s.map((x) => x.kind), [...RECOVERY_KINDS]);
    for (const x of s) {
      t.deepEqual(x, { kind: x.kind, active: false, nodes: [], startedAt: null, finishedAt: null, extentsTotal: 0, extentsDone: 0, bytesTotal: 0, bytesDone: 0, rate: 0, etaSeconds: null });
    }
  }
});

test('summarizeProgress: sums over the active nodes, earliest start, summed rate, ETA from bytes left', (t) => {
  const s = summarizeProgress([
    { node: 2, progress: kinds(pass('backfill', { startedAt: 5000, extentsTotal: 200, extentsDone: 100, bytesTotal: 200 * MIB, bytesDone: 100 * MIB, rate: 30 * MIB })) },
    { node: 0, progress: kinds(pass('backfill', { startedAt: 4000, extentsTotal: 100, extentsDone: 20, bytesTotal: 100 * MIB, bytesDone: 20 * MIB, rate: 15 * MIB })) },
    { node: 1, progress: idleKinds() },
  ]);
  const b = of(s, 'backfill');
  t.true(b.active);
  t.deepEqual(b.nodes, [0, 2]);
  t.is(b.startedAt, 4000);
  t.is(b.finishedAt, null);
  t.is(b.extentsTotal, 300);
  t.is(b.extentsDone, 120);
  t.is(b.bytesTotal, 300 * MIB);
  t.is(b.bytesDone, 120 * MIB);
  t.is(b.rate, 45 * MIB);
  t.is(b.etaSeconds, 4, '180 MiB left at 45 MiB/s');
  t.is(formatProgress(b), '120/300 extents, 45.0 MiB/s, ETA 4 s');
  t.is(formatProgress(b, { bytes: true }), '120/300 extents, 120.0 MiB/300.0 MiB, 45.0 MiB/s, ETA 4 s');
  for (const k of ['resync', 'rebalance', 'scrub'] as const) t.false(of(s, k).active, k);
  t.is(formatProgress(of(s, 'scrub')), 'idle');
});

test('summarizeProgress: a pass finished in the same wave counts, one from an earlier wave does not', (t) => {
  const s = summarizeProgress([
    { node: 0, progress: kinds(pass('rebalance', { startedAt: 10_000, extentsTotal: 10, extentsDone: 4, bytesTotal: 10 * MIB, bytesDone: 4 * MIB, rate: MIB })) },
    // Finished its share of this wave (after the earliest active start).
    { node: 1, progress: kinds(pass('rebalance', { active: false, startedAt: 10_500, finishedAt: 12_000, extentsTotal: 6, extentsDone: 6, bytesTotal: 6 * MIB, bytesDone: 6 * MIB, rate: 0 })) },
    // Finished long before: an earlier wave.
    { node: 2, progress: kinds(pass('rebalance', { active: false, startedAt: 1_000, finishedAt: 2_000, extentsTotal: 50, extentsDone: 50, bytesTotal: 50 * MIB, bytesDone: 50 * MIB, rate: 0 })) },
  ]);
  const r = of(s, 'rebalance');
  t.deepEqual(r.nodes, [0]);
  t.is(r.extentsTotal, 16);
  t.is(r.extentsDone, 10);
  t.is(r.rate, MIB);
  t.is(r.etaSeconds, 6);

  // Once every pass has ended: idle, the last passes' figures, the latest end.
  const idle = summarizeProgress([
    { node: 1, progress: kinds(pass('rebalance', { active: false, startedAt: 10_500, finishedAt: 12_000, extentsTotal: 6, extentsDone: 6, bytesTotal: 6 * MIB, bytesDone: 6 * MIB })) },
    { node: 2, progress: kinds(pass('rebalance', { active: false, startedAt: 1_000, finishedAt: 2_000, extentsTotal: 50, extentsDone: 50, bytesTotal: 50 * MIB, bytesDone: 50 * MIB })) },
  ]);
  const ri = of(idle, 'rebalance');
  t.false(ri.active);
  t.is(ri.startedAt, null);
  t.is(ri.finishedAt, 12_000);
  t.is(ri.extentsDone, 56);
  t.is(ri.etaSeconds, null);
});

test('summarizeProgress: ETA from extents left when the bytes are not known yet, else null', (t) => {
  // Resync: 10 of 40 extents compared, 20 MiB copied (2 MiB per done extent), bytesTotal not known.
  const unknownTotal = (over: Partial<RecoveryProgress>): ProgressSummary => of(summarizeProgress([{ node: 0, progress: kinds(pass('resync', { extentsTotal: 40, extentsDone: 10, bytesDone: 20 * MIB, rate: 4 * MIB, ...over })) }]), 'resync');
  t.is(unknownTotal({}).etaSeconds, 15, '30 extents × 2 MiB at 4 MiB/s');
  // bytesTotal reached while extents remain (it grows as the pass runs): the same estimate.
  t.is(unknownTotal({ bytesTotal: 20 * MIB }).etaSeconds, 15);
  // Nothing done yet: no mean to go by.
  t.is(unknownTotal({ extentsDone: 0, bytesDone: 0 }).etaSeconds, null);
  // No rate: no estimate.
  t.is(unknownTotal({ rate: 0 }).etaSeconds, null);
  t.is(formatProgress(unknownTotal({ rate: 0 })), '10/40 extents, 0 B/s, ETA unknown');
  // Everything done but still active (about to finish): 0.
  t.is(unknownTotal({ extentsDone: 40, bytesTotal: 80 * MIB, bytesDone: 80 * MIB }).etaSeconds, 0);
  // Rounded up to whole seconds.
  t.is(of(summarizeProgress([{ node: 0, progress: kinds(pass('scrub', { extentsTotal: 2, bytesTotal: 3 * MIB, rate: 2 * MIB })) }]), 'scrub').etaSeconds, 2);
});

test('formatSeconds and formatMisplaced', (t) => {
  t.is(formatSeconds(0), '0 s');
  t.is(formatSeconds(12), '12 s');
  t.is(formatSeconds(11.2), '12 s');
  t.is(formatSeconds(125), '2 min 5 s');
  t.is(formatSeconds(3600 + 180 + 5), '1 h 3 min');
  t.is(formatSeconds(3600 + 5), '1 h');
  t.is(formatSeconds(2 * 86400 + 4 * 3600), '2 d 4 h');
  t.is(formatSeconds(-1), 'unknown');
  t.is(formatMisplaced({ extents: 0, copies: 0, bytes: 0 }), 'none');
  t.is(formatMisplaced({ extents: 1, copies: 1, bytes: MIB }), '1 extent, 1 copy (1.0 MiB) await trimming');
  t.is(formatMisplaced({ extents: 2, copies: 3, bytes: 3 * MIB }), '2 extents, 3 copies (3.0 MiB) await trimming');
});

test('NodeRecoveryReportSchema: progress, traffic and rateLimit are optional and default to idle', async (t) => {
  const config = await makeConfig();
  const full = reports(config)[0];
  const { progress: _p, traffic: _t, rateLimit: _r, ...old } = full;
  const parsed = NodeRecoveryReportSchema.parse(JSON.parse(JSON.stringify(old)));
  t.deepEqual(parsed, full, 'an older report parses as idle, no traffic, no limit');

  // Kinds out of order, one missing, one unknown: ordered, the missing one idle, the unknown one dropped.
  const scrub = pass('scrub', { extentsTotal: 3, extentsDone: 1, bytesTotal: 3 * MIB, bytesDone: MIB, rate: 0.5 });
  const odd = { ...full, progress: [scrub, { ...pass('resync', {}), kind: 'defrag' }, pass('backfill', { extentsTotal: 1 })], rateLimit: 100 * MIB };
  const p2 = NodeRecoveryReportSchema.parse(JSON.parse(JSON.stringify(odd)));
  t.deepEqual(p2.progress.map((p) => p.kind), [...RECOVERY_KINDS]);
  t.false(p2.progress[0].active, 'resync missing: idle');
  t.true(p2.progress[1].active);
  t.deepEqual(p2.progress[3], scrub);
  t.is(p2.rateLimit, 100 * MIB);

  // Malformed figures are refused.
  t.false(NodeRecoveryReportSchema.safeParse({ ...full, progress: [{ ...scrub, extentsDone: -1 }] }).success);
  t.false(NodeRecoveryReportSchema.safeParse({ ...full, traffic: { bytesIn: 1 } }).success);
  t.false(NodeRecoveryReportSchema.safeParse({ ...full, rateLimit: 'fast' }).success);
});

test('computeStatus: a backfill in progress is HEALTH_WARN with a progress line; a scrub alone is not', async (t) => {
  const config = await makeConfig();
  const rs = reports(config);
  rs[1].progress = kinds(pass('backfill', { extentsTotal: 300, extentsDone: 120, bytesTotal: 300 * MIB, bytesDone: 120 * MIB, rate: 45 * MIB }));
  rs[2].progress = kinds(pass('scrub', { extentsTotal: 24, extentsDone: 2, bytesTotal: 24 * MIB, bytesDone: 2 * MIB, rate: 10 * MIB }));
  const s = computeStatus(initialMap(config), config, rs);
  t.is(s.health, 'HEALTH_WARN');
  t.deepEqual(s.checks, ['backfill: 120/300 extents, 45.0 MiB/s, ETA 4 s']);
  t.deepEqual(s.progress.map((p) => [p.kind, p.active]), [['resync', false], ['backfill', true], ['rebalance', false], ['scrub', true]]);
  t.deepEqual(s.progress, summarizeProgress(rs));

  rs[1].progress = idleKinds();
  const scrubOnly = computeStatus(initialMap(config), config, rs);
  t.is(scrubOnly.health, 'HEALTH_OK', scrubOnly.checks.join('; '));
  t.true(scrubOnly.progress[3].active);
});

test('computeStatus: traffic sums and per-node rate limits; reports without the new fields count as idle', async (t) => {
  const config = await makeConfig();
  const rs = reports(config);
  rs[0].traffic = { bytesIn: 10, bytesOut: 20, trimmedExtents: 1, trimmedBytes: 4096, trimPasses: 3 };
  rs[2].traffic = { bytesIn: 5, bytesOut: 0, trimmedExtents: 2, trimmedBytes: 8192, trimPasses: 1 };
  rs[2].rateLimit = 50 * MIB;
  // Node 1 runs an older build: no progress, traffic or rateLimit.
  const { progress: _p, traffic: _t, rateLimit: _r, ...old } = rs[1];
  const s = computeStatus(initialMap(config), config, [rs[0], old as typeof rs[1], rs[2]]);
  t.is(s.health, 'HEALTH_OK', s.checks.join('; '));
  t.deepEqual(s.traffic, { bytesIn: 15, bytesOut: 20, trimmedExtents: 3, trimmedBytes: 12288, trimPasses: 4 });
  t.deepEqual(s.recovery.map((r) => r.rateLimit), [0, 0, 50 * MIB]);
  t.deepEqual(s.recovery[1].traffic, { bytesIn: 0, bytesOut: 0, trimmedExtents: 0, trimmedBytes: 0, trimPasses: 0 });
  t.true(s.progress.every((p) => !p.active));
});

test('computeStatus: copies held off placement are misplaced, counted per extent and copy, without changing health', async (t) => {
  const config = await makeConfig(4);
  const placed = placement(config);
  const rs = reports(config);
  t.deepEqual(computeStatus(initialMap(config), config, rs).misplaced, { extents: 0, copies: 0, bytes: 0 }, 'nothing off placement');

  // Two extents not placed on node 3, each with a stray copy there.
  const notOn3 = [...placed].filter(([, m]) => !m.includes(3)).map(([e]) => e);
  t.true(notOn3.length >= 2, 'with 4 nodes and 3 replicas some extents avoid node 3');
  const [a, b] = notOn3;
  const r3 = rs.find((r) => r.node === 3)!;
  r3.held.push([1, a, MIB], [1, b, 2 * MIB]);
  const s = computeStatus(initialMap(config), config, rs);
  t.deepEqual(s.misplaced, { extents: 2, copies: 2, bytes: 3 * MIB });
  t.is(s.health, 'HEALTH_OK', 'misplaced copies alone are not a health problem');
  t.deepEqual(s.checks, []);
  t.is(s.data.extents, EXTENTS);

  // Node 3 marked out: every copy it holds is off placement now (and the extents it held move).
  const out = nextMap(initialMap(config), (n) => {
    if (n.id === 3) n.in = false;
  });
  const so = computeStatus(out, config, rs);
  t.is(so.misplaced.copies, r3.held.length);
  t.is(so.misplaced.extents, r3.held.length);

  // Copies of volumes cluster.json does not know are not judged.
  r3.held.push([9, 0, 4096]);
  t.deepEqual(computeStatus(initialMap(config), config, rs).misplaced, { extents: 2, copies: 2, bytes: 3 * MIB });
});

// ---- The real CLI against a small LocalCluster with nothing to do ----

let cluster: LocalCluster | undefined;
let cleanup: (() => void) | undefined;

test.before(async () => {
  const d = tempDataDir();
  cleanup = d.cleanup;
  cluster = await LocalCluster.start({ dataDir: d.dir, layout: { deviceBytes: 128 * MIB, volumeBytes: 16 * MIB }, initiator: false });
});
test.after.always(async () => {
  await cluster?.stop();
  cleanup?.();
});

/** Runs `cairn ARGS --data-dir <the cluster's>`. */
function cairn(...args: string[]): ReturnType<typeof run> {
  return run(process.execPath, [CAIRN, ...args, '--data-dir', cluster!.dataDir], 60000);
}

test.serial('cairn recovery status --json: every kind idle, with traffic, misplaced and per-node rate limits', async (t) => {
  let r = await cairn('recovery', 'status', '--json');
  t.is(r.code, 0, r.stderr);
  let j = JSON.parse(r.stdout) as { progress: ProgressSummary[] };
  // A node may still finish comparing its (empty) extents right after start.
  for (let i = 0; i < 20 && j.progress.some((p) => p.active); i++) {
    await new Promise((res) => setTimeout(res, 500));
    r = await cairn('recovery', 'status', '--json');
    j = JSON.parse(r.stdout);
  }
  const body = JSON.parse(r.stdout);
  t.deepEqual(Object.keys(body).sort(), ['epoch', 'misplaced', 'nodes', 'progress', 'servedBy', 'traffic', 'unreachable']);
  t.deepEqual(body.progress.map((p: ProgressSummary) => p.kind), [...RECOVERY_KINDS]);
  for (const p of body.progress as ProgressSummary[]) {
    t.false(p.active, `${p.kind} idle`);
    t.deepEqual(p.nodes, []);
    t.is(p.etaSeconds, null);
    for (const k of ['extentsTotal', 'extentsDone', 'bytesTotal', 'bytesDone', 'rate'] as const) t.is(typeof p[k], 'number', `${p.kind}.${k}`);
  }
  t.deepEqual(Object.keys(body.traffic).sort(), ['bytesIn', 'bytesOut', 'trimPasses', 'trimmedBytes', 'trimmedExtents']);
  t.deepEqual(body.misplaced, { extents: 0, copies: 0, bytes: 0 });
  t.deepEqual(body.nodes.map((n: { node: number }) => n.node), cluster!.config.nodes.map((n) => n.id));
  for (const n of body.nodes) t.is(typeof n.rateLimit, 'number');
  t.deepEqual(body.unreachable, []);

  const text = await cairn('recovery', 'status');
  t.is(text.code, 0, text.stderr);
  for (const k of RECOVERY_KINDS) t.regex(text.stdout, new RegExp(`^  ${k}\\s+idle$`, 'm'));
  t.regex(text.stdout, /rate limit: /);
  t.regex(text.stdout, /misplaced: +none/);

  const status = await cairn('status');
  t.is(status.code, 0, status.stderr);
  t.regex(status.stdout, /^ {2}recovery: idle$/m);
});

test.serial('cairn recovery status --watch exits 0 promptly on an idle cluster', async (t) => {
  const t0 = Date.now();
  const r = await cairn('recovery', 'status', '--watch', '--interval', '200ms');
  t.is(r.code, 0, r.stderr);
  t.log(`cairn recovery status --watch took ${Date.now() - t0} ms (CLI start included)`);
  // Promptly: idle at the first poll, so no progress line before the summary.
  t.notRegex(r.stdout, /^\d{4}-\d\d-\d\dT.* epoch \d+: /m, r.stdout);
  t.regex(r.stdout, /^ {2}backfill\s+idle$/m, 'it ends with the summary');
  const bad = await cairn('recovery', 'status', '--watch', '--interval', '5ms');
  t.not(bad.code, 0);
  t.regex(bad.stderr, /below 100ms/);
});
