/**
 * `npm run bench -- report [--in DIR] [--out DIR]`: turns saved benchmark results (the JSON
 * `npm run -s bench -- SUITE` prints, saved as DIR/SUITE.json; default bench/results) into PNG
 * charts in the out directory (default bench/plots), each with its reference in the same
 * picture:
 * - nbd-iops-qd.png — 4 KiB random read and write IOPS against queue depth, Cairn and
 *   `nbdkit memory` (needs a run with `--sweep`);
 * - nbd-latency-cdf.png — completion-latency CDFs of the QD1 jobs, Cairn and nbdkit;
 * - allocator-wa.png — write amplification against utilisation per workload and cleaner
 *   policy, next to the ideal log-structured cleaner simulated on the same trace;
 * - placement-movement.png — data moved by each map change ÷ the optimum, Cairn next to
 *   crushtool (when the run had it) and the optimum (1).
 * Charts are Vega-Lite specs rendered to SVG by vega and to PNG by resvg. Prints one JSON
 * object naming what it wrote and what it skipped (a missing input, with why).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

const ROOT = resolve(import.meta.dirname, '..', '..');
const { values } = parseArgs({ options: { in: { type: 'string', default: join(ROOT, 'bench', 'results') }, out: { type: 'string', default: join(ROOT, 'bench', 'plots') } } });
const inDir = resolve(values.in!);
const outDir = resolve(values.out!);
mkdirSync(outDir, { recursive: true });

/** Renders a Vega-Lite spec to a PNG file (2× for legibility). */
async function render(spec: TopLevelSpec, file: string): Promise<void> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  const png = new Resvg(svg, { fitTo: { mode: 'zoom', value: 2 }, background: 'white', font: { loadSystemFonts: true } }).render().asPng();
  writeFileSync(join(outDir, file), png);
}

/** A saved result, or null when the file is missing. */
function load<T>(suite: string): T | null {
  const f = join(inDir, `${suite}.json`);
  if (!existsSync(f)) return null;
  const text = readFileSync(f, 'utf8');
  return JSON.parse(text.slice(text.indexOf('{'))) as T;
}

const wrote: string[] = [];
const skipped: Record<string, string> = {};
const base = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', width: 460, height: 260 } as const;

type Figures = { iops: number; meanLatUs: number; latPercentilesUs?: Record<string, number> };
const nbd = load<{ sweep?: Array<{ target: string; rw: string; iodepth: number; iops: number }>; cairn: Record<string, Figures>; nbdkit: Record<string, Figures>; setup?: { runtimeSeconds?: number } }>('nbd');
if (!nbd) skipped.nbd = `no ${join(inDir, 'nbd.json')} (npm run -s bench -- nbd --sweep > bench/results/nbd.json)`;
else {
  if (nbd.sweep?.length) {
    await render({
      ...base,
      title: { text: '4 KiB random I/O over NBD: IOPS against queue depth', subtitle: 'Cairn (3 nodes, 3 replicas) next to nbdkit memory (the protocol ceiling), same machine and run' },
      data: { values: nbd.sweep.map((s) => ({ ...s, series: `${s.target} ${s.rw}` })) },
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'iodepth', type: 'quantitative', title: 'queue depth', scale: { type: 'log', base: 2 }, axis: { values: [1, 2, 4, 8, 16, 32] } },
        y: { field: 'iops', type: 'quantitative', title: 'IOPS', scale: { type: 'log' } },
        color: { field: 'series', type: 'nominal', title: null },
        strokeDash: { field: 'target', type: 'nominal', title: null, legend: { symbolType: 'stroke', symbolStrokeWidth: 2 } },
      },
    }, 'nbd-iops-qd.png');
    wrote.push('nbd-iops-qd.png');
  } else skipped['nbd-iops-qd'] = 'the nbd result has no sweep (run it with --sweep)';
  const cdf: Array<{ series: string; percentile: number; latencyUs: number }> = [];
  for (const job of ['randread-4k-qd1', 'randwrite-4k-qd1']) {
    for (const target of ['cairn', 'nbdkit'] as const) {
      for (const [p, us] of Object.entries(nbd[target][job]?.latPercentilesUs ?? {})) cdf.push({ series: `${target} ${job}`, percentile: Number(p), latencyUs: us });
    }
  }
  if (cdf.length) {
    await render({
      ...base,
      title: { text: 'Completion latency CDF, 4 KiB at queue depth 1 (fio percentiles)', subtitle: 'Cairn next to nbdkit memory in the same run' },
      data: { values: cdf },
      mark: { type: 'line', point: true, interpolate: 'step-after' },
      encoding: {
        x: { field: 'latencyUs', type: 'quantitative', title: 'latency (µs)', scale: { type: 'log' } },
        y: { field: 'percentile', type: 'quantitative', title: 'percentile', scale: { domain: [0, 100] } },
        color: { field: 'series', type: 'nominal', title: null, legend: { labelLimit: 300 } },
      },
    }, 'nbd-latency-cdf.png');
    wrote.push('nbd-latency-cdf.png');
  } else skipped['nbd-latency-cdf'] = 'the nbd result has no latency percentiles (made before fio figures carried them)';
}

type WaRow = { utilization: number; workload: string; policy: string; writeAmplification: number; ideal: { writeAmplification: number } };
const alloc = load<{ wa?: { results: WaRow[] } }>('allocator');
if (!alloc?.wa?.results?.length) skipped.allocator = alloc ? 'the allocator result has no wa section (run it with --only wa or all)' : `no ${join(inDir, 'allocator.json')} (npm run -s bench -- allocator > bench/results/allocator.json)`;
else {
  const rows = alloc.wa.results.flatMap((r) => [
    { utilization: r.utilization * 100, wa: r.writeAmplification, config: `${r.workload}, ${r.policy}`, kind: 'Cairn allocator' },
    { utilization: r.utilization * 100, wa: r.ideal.writeAmplification, config: `${r.workload}, ${r.policy}`, kind: 'ideal LFS cleaner (simulated)' },
  ]);
  await render({
    ...base,
    title: { text: 'Write amplification against utilisation', subtitle: 'the real allocator over a file, next to an ideal log-structured cleaner on the same writes' },
    data: { values: rows },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'utilization', type: 'quantitative', title: 'utilisation (%)', scale: { domain: [45, 95] } },
      y: { field: 'wa', type: 'quantitative', title: 'write amplification' },
      color: { field: 'config', type: 'nominal', title: 'workload, cleaner', legend: { labelLimit: 300 } },
      strokeDash: { field: 'kind', type: 'nominal', title: null, legend: { symbolType: 'stroke', symbolStrokeWidth: 2, labelLimit: 300 } },
    },
  }, 'allocator-wa.png');
  wrote.push('allocator-wa.png');
}

type Move = { map: string; rule: string; change: string; cairn: { ratio: number }; crushtool: { ratio: number } | null };
const placement = load<{ movement?: Move[] }>('placement');
if (!placement?.movement?.length) skipped.placement = placement ? 'the placement result has no movement section' : `no ${join(inDir, 'placement.json')} (npm run -s bench -- placement > bench/results/placement.json)`;
else {
  const rows = placement.movement.flatMap((m) => [
    { change: `${m.map} ${m.rule}: ${m.change}`, who: 'Cairn', ratio: m.cairn.ratio },
    ...(m.crushtool ? [{ change: `${m.map} ${m.rule}: ${m.change}`, who: 'crushtool', ratio: m.crushtool.ratio }] : []),
  ]);
  await render({
    ...base,
    height: { step: 14 },
    title: { text: 'Data moved by a map change ÷ the optimum (1 = only what must move)', subtitle: 'Cairn placement next to Ceph crushtool on equivalent maps' },
    data: { values: rows },
    layer: [
      { mark: 'bar', encoding: { y: { field: 'change', type: 'nominal', title: null, axis: { labelLimit: 320 } }, yOffset: { field: 'who' }, x: { field: 'ratio', type: 'quantitative', title: 'moved ÷ optimal' }, color: { field: 'who', type: 'nominal', title: null } } },
      { mark: { type: 'rule', color: 'black', strokeDash: [4, 3] }, encoding: { x: { datum: 1 } } },
    ],
  } as TopLevelSpec, 'placement-movement.png');
  wrote.push('placement-movement.png');
}

console.log(JSON.stringify({ bench: 'report', in: inDir, out: outDir, wrote, skipped }, null, 2));
