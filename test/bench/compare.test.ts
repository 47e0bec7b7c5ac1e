/**
 * `npm run bench -- compare` (issue 15): the table's ratios and the targets, from synthetic
 * figures (no system is started), and the --size parser.
 */
import test from 'ava';
import { parseSize, jobFigures, type JobFigures } from '../../bench/compare/jobs.ts';
import { checkTargets, medianResults, table, tableOfRounds, TARGETS, withCpuLimits, type Results } from '../../bench/compare/table.ts';

const fig = (iops: number, mbps: number, meanLatUs: number, sync?: number): JobFigures => ({
  iops, mbps, meanLatUs, p50LatUs: meanLatUs, p99LatUs: meanLatUs * 3, ...(sync === undefined ? {} : { syncMeanLatUs: sync, writePlusSyncMeanUs: meanLatUs + sync }),
});

/** Figures in which Cairn meets every target exactly at or just past its bound. */
function passing(): Results {
  return {
    nbdkit: {
      'randread-4k-qd1': fig(16000, 64, 60), 'randread-4k-qd32': fig(50000, 200, 600), 'randwrite-4k-qd1-fsync': fig(10000, 40, 40, 20),
      'randwrite-4k-qd32': fig(80000, 320, 400), 'read-1m-qd8': fig(3000, 3000, 2600), 'write-1m-qd8': fig(3000, 3000, 2600),
    },
    ceph: {
      'randread-4k-qd1': fig(2000, 8, 500), 'randread-4k-qd32': fig(4000, 16, 8000), 'randwrite-4k-qd1-fsync': fig(200, 0.8, 4950, 50),
      'randwrite-4k-qd32': fig(800, 3.2, 40000), 'read-1m-qd8': fig(800, 800, 10000), 'write-1m-qd8': fig(200, 200, 40000),
    },
    cairn: {
      'randread-4k-qd1': fig(6000, 24, 150), 'randread-4k-qd32': fig(20000, 80, 1600), 'randwrite-4k-qd1-fsync': fig(1000, 4, 900, 100),
      'randwrite-4k-qd32': fig(12000, 48, 2600), 'read-1m-qd8': fig(1200, 1200, 6600), 'write-1m-qd8': fig(300, 300, 26000),
    },
  };
}

test('table: Cairn ÷ Ceph and Cairn ÷ nbdkit per job, latency rows marked lower-is-better', (t) => {
  const rows = table(passing());
  t.is(rows.length, 6);
  const qd1 = rows.find((r) => r.job === 'randread-4k-qd1')!;
  t.like(qd1, { metric: 'meanLatUs', unit: 'µs', better: 'lower', nbdkit: 60, ceph: 500, cairn: 150, cairnOverCeph: 0.3, cairnOverNbdkit: 2.5 });
  const fsync = rows.find((r) => r.job === 'randwrite-4k-qd1-fsync')!;
  t.like(fsync, { metric: 'writePlusSyncMeanUs', better: 'lower', ceph: 5000, cairn: 1000, cairnOverCeph: 0.2 });
  t.like(rows.find((r) => r.job === 'read-1m-qd8')!, { metric: 'mbps', unit: 'MB/s', better: 'higher', cairnOverCeph: 1.5, cairnOverNbdkit: 0.4 });
  t.like(rows.find((r) => r.job === 'randwrite-4k-qd32')!, { metric: 'iops', unit: 'IOPS', cairnOverCeph: 15, cairnOverNbdkit: 0.15 });
});

test('targets: met at their bounds, missed just past them, unchecked without a reference', (t) => {
  const ok = checkTargets(table(passing()));
  t.is(ok.length, TARGETS.length);
  t.true(ok.every((c) => c.met === true), JSON.stringify(ok.filter((c) => !c.met)));

  const r = passing();
  r.cairn!['read-1m-qd8'] = fig(1100, 1100, 7000); // 1.375× Ceph
  r.cairn!['randread-4k-qd1'] = fig(5000, 20, 151); // 2.52× nbdkit
  r.cairn!['randwrite-4k-qd1-fsync'] = fig(900, 3.6, 1001, 100); // 0.22 of Ceph
  const missed = checkTargets(table(r)).filter((c) => c.met === false).map((c) => c.job).sort();
  t.deepEqual(missed, ['randread-4k-qd1', 'randwrite-4k-qd1-fsync', 'read-1m-qd8']);

  const noCeph = passing();
  delete noCeph.ceph;
  const checks = checkTargets(table(noCeph));
  t.true(checks.filter((c) => c.against === 'ceph').every((c) => c.met === null && c.ratio === null));
  t.true(checks.filter((c) => c.against === 'nbdkit').every((c) => c.met === true));
  // A job left out with --only: its row is absent and its targets unchecked.
  t.true(checkTargets(table(passing(), ['read-1m-qd8'])).filter((c) => c.job !== 'read-1m-qd8').every((c) => c.met === null));
});

test('cpu limits: the best figure Cairn\'s CPU per request allows on the machine\'s cores, against what each target needs', (t) => {
  const r = passing();
  // randread QD32: 100 µs of CPU per read on 2 CPUs allows 20,000 IOPS; 5× Ceph needs 20,000.
  Object.assign(r.cairn!['randread-4k-qd32'], { gatewayCpuUs: 30, nodesCpuUs: 70, machineBusyPct: 97 });
  // randwrite QD32: 200 µs per write allows 10,000 IOPS; 15× Ceph needs 12,000.
  Object.assign(r.cairn!['randwrite-4k-qd32'], { gatewayCpuUs: 50, nodesCpuUs: 150 });
  // read 1M: 2,000 µs per MiB allows 1,048.6 MB/s; 1.5× Ceph needs 1,200.
  Object.assign(r.cairn!['read-1m-qd8'], { gatewayCpuUs: 500, nodesCpuUs: 1500 });
  // fsync'd write: 1,800 µs per durable write on 2 CPUs is a 900 µs floor; 0.2 of Ceph needs ≤ 1,000.
  Object.assign(r.cairn!['randwrite-4k-qd1-fsync'], { gatewayCpuUs: 300, nodesCpuUs: 1500 });
  const checks = withCpuLimits(checkTargets(table(r)), r, 2);
  const limit = (name: string) => checks.find((c) => c.name === name)!.cpuLimit;
  t.deepEqual(limit(TARGETS[2].name), { cairnCpuUsPerRequest: 100, machineBusyPct: 97, needed: 20000, bestAtThisCpu: 20000, reachable: true });
  t.like(limit(TARGETS[3].name), { needed: 20000, reachable: true }, 'against nbdkit: 0.4 × 50,000');
  t.like(limit(TARGETS[4].name), { needed: 12000, bestAtThisCpu: 10000, reachable: false, machineBusyPct: null });
  t.like(limit(TARGETS[0].name), { needed: 1200, bestAtThisCpu: 1048.6, reachable: false });
  t.like(limit(TARGETS[7].name), { cairnCpuUsPerRequest: 1800, needed: 1000, bestAtThisCpu: 900, reachable: true });
  // No CPU figures (write 1M, randread QD1), or no reference: no limit.
  t.is(limit(TARGETS[1].name), undefined);
  t.is(limit(TARGETS[6].name), undefined);
  const noCeph = { ...r };
  delete noCeph.ceph;
  t.true(withCpuLimits(checkTargets(table(noCeph)), noCeph, 2).filter((c) => c.against === 'ceph').every((c) => c.cpuLimit === undefined));
  // The checks themselves are unchanged.
  t.deepEqual(checks.map(({ cpuLimit: _, ...c }) => c), checkTargets(table(r)));
});

test('rounds: figures are medians per field, ratios the median of the rounds\' own ratios', (t) => {
  const a = passing();
  const b = passing();
  const c = passing();
  // The machine slows down in round 2 (both sides), and Cairn alone has a bad round 3.
  b.nbdkit!['randread-4k-qd1'] = fig(8000, 32, 120);
  b.cairn!['randread-4k-qd1'] = fig(3000, 12, 330); // 2.75× nbdkit in its round
  c.cairn!['randread-4k-qd1'] = fig(4000, 16, 200); // 3.33×
  const med = medianResults([a, b, c]);
  t.is(med.nbdkit!['randread-4k-qd1'].meanLatUs, 60);
  t.is(med.cairn!['randread-4k-qd1'].meanLatUs, 200);
  t.is(med.cairn!['randread-4k-qd1'].iops, 4000);
  t.is(med.ceph!['randwrite-4k-qd1-fsync'].writePlusSyncMeanUs, 5000);
  const row = tableOfRounds([a, b, c]).find((r) => r.job === 'randread-4k-qd1')!;
  // Rounds 2.5, 2.75, 3.333: the median is round 2's 2.75, not 200 ÷ 60.
  t.deepEqual(row.rounds!.cairnOverNbdkit, [2.5, 2.75, 3.333]);
  t.is(row.cairnOverNbdkit, 2.75);
  t.is(row.cairn, 200);
  t.false(checkTargets(tableOfRounds([a, b, c])).find((x) => x.job === 'randread-4k-qd1')!.met!);
  // Two good rounds out of three meet it.
  t.true(checkTargets(tableOfRounds([a, a, c])).find((x) => x.job === 'randread-4k-qd1')!.met!);
  // One round: exactly table(), no rounds field.
  t.deepEqual(tableOfRounds([a]), table(a));
  // A system missing from a round (failed to start) counts only where it ran.
  const noCeph = passing();
  delete noCeph.ceph;
  const rows = tableOfRounds([noCeph, a]);
  t.deepEqual(rows.find((r) => r.job === 'read-1m-qd8')!.rounds!.cairnOverCeph, [null, 1.5]);
  t.is(rows.find((r) => r.job === 'read-1m-qd8')!.cairnOverCeph, 1.5);
  t.is(medianResults([noCeph]).ceph, undefined);
});

test('jobFigures: write + flush for fsync jobs; parseSize: binary units, 1 MiB multiples', (t) => {
  t.is(jobFigures({ iops: 100, mbps: 0.4, meanLatUs: 900.2, p99LatUs: 2000, latPercentilesUs: { 50: 800 }, syncMeanLatUs: 99.9 }).writePlusSyncMeanUs, 1000.1);
  t.is(jobFigures({ iops: 100, mbps: 0.4, meanLatUs: 900, p99LatUs: 2000 }).writePlusSyncMeanUs, undefined);
  t.is(parseSize('1g'), 2 ** 30);
  t.is(parseSize('512MiB'), 512 * 2 ** 20);
  t.is(parseSize(String(2 ** 20)), 2 ** 20);
  t.throws(() => parseSize('1.5g'));
  t.throws(() => parseSize('4k'), { message: /multiple of 1 MiB/ });
});
