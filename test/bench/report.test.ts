/**
 * `npm run bench -- report` (issue 13): from saved results of the nbd (with a sweep and
 * latency percentiles), allocator and placement suites it writes four PNG charts, and it
 * names what it skipped when an input is missing or lacks a section.
 */
import test from 'ava';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { run } from '../helpers/tools.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

test('report: four PNG charts from saved results; missing inputs are named', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-report-'));
  try {
    const inDir = join(dir, 'in');
    mkdirSync(inDir);
    const pct = (base: number): Record<string, number> => ({ 1: base, 50: base * 1.5, 99: base * 4, 99.99: base * 10 });
    const fig = (iops: number, lat: number) => ({ iops, mbps: 1, meanLatUs: lat, p99LatUs: lat * 4, latPercentilesUs: pct(lat) });
    writeFileSync(join(inDir, 'nbd.json'), `> npm noise\n${JSON.stringify({
      cairn: { 'randread-4k-qd1': fig(2000, 400), 'randwrite-4k-qd1': fig(1000, 900) },
      nbdkit: { 'randread-4k-qd1': fig(20000, 45), 'randwrite-4k-qd1': fig(20000, 48) },
      sweep: [1, 2, 4, 8, 16, 32].flatMap((qd) => ['cairn', 'nbdkit'].flatMap((target) => ['randread', 'randwrite'].map((rw) => ({ target, rw, iodepth: qd, iops: qd * (target === 'cairn' ? 300 : 3000) })))),
    })}`);
    writeFileSync(join(inDir, 'allocator.json'), JSON.stringify({ wa: { results: [0.5, 0.75, 0.9].flatMap((u) => ['greedy', 'cost-benefit'].map((policy) => ({ utilization: u, workload: 'uniform', policy, writeAmplification: 1 / (1 - u), ideal: { writeAmplification: 0.9 / (1 - u) } }))) } }));
    const out = join(dir, 'out');
    let r = await run(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'index.ts'), 'report', '--in', inDir, '--out', out], 120000);
    t.is(r.code, 0, r.stderr);
    let j = JSON.parse(r.stdout) as { wrote: string[]; skipped: Record<string, string> };
    t.deepEqual(j.wrote, ['nbd-iops-qd.png', 'nbd-latency-cdf.png', 'allocator-wa.png']);
    t.regex(j.skipped.placement, /no .*placement\.json/, 'a missing input is named');
    for (const f of j.wrote) {
      const png = readFileSync(join(out, f));
      t.true(png.subarray(0, 8).equals(PNG) && png.length > 10000, `${f} is a PNG of ${png.length} bytes`);
      t.true(png.readUInt32BE(16) >= 800, `${f} is at least 800 px wide`);
    }
    writeFileSync(join(inDir, 'placement.json'), JSON.stringify({ movement: [{ map: '40-leaf', rule: 'replicated', change: 'add host', cairn: { ratio: 1.02 }, crushtool: { ratio: 1.3 } }] }));
    r = await run(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'index.ts'), 'report', '--in', inDir, '--out', out], 120000);
    t.is(r.code, 0, r.stderr);
    j = JSON.parse(r.stdout) as { wrote: string[]; skipped: Record<string, string> };
    t.true(j.wrote.includes('placement-movement.png'));
    t.deepEqual(j.skipped, {});
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
