/**
 * `npm run bench -- cli [--runs N]`: start-up time of the `cairn` CLI, compiled (dist/, what
 * `npm ci` builds and the package ships) and from the sources (tsx, CAIRN_FROM_SOURCE=1),
 * next to `node -e 0` in the same run: `cairn --help`, `cairn --version`, `cairn node list`
 * (an API call that fails at once: no cluster) and `cairn placement build` (writes a map).
 * Wall time of the whole process, ms: min and median of N runs (default 10), interleaved.
 * Prints one JSON object. Builds dist/ first (bin/build.mjs): bin/cairn.js runs the sources
 * whenever a .ts file is newer than dist/BUILD, so a stale build would be timed as tsx.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { median } from 'simple-statistics';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '10' } } });
const runs = Number(values.runs);
const ROOT = resolve(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'cairn.js');
// Build first: with any .ts newer than dist/BUILD, bin/cairn.js would run the sources and the
// "compiled" figures would be tsx's.
const build = spawnSync(process.execPath, [join(ROOT, 'bin', 'build.mjs')], { stdio: ['ignore', 'ignore', 'inherit'] });
if (build.status !== 0) {
  process.stderr.write(`bench cli: npm run build failed (exit ${build.status})\n`);
  process.exit(1);
}
const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-cli-'));
const commands: Record<string, string[]> = {
  help: ['--help'],
  version: ['--version'],
  nodeList: ['node', 'list', '--data-dir', join(dir, 'none')],
  placementBuild: ['placement', 'build', '--hosts', '4', '--devices', '2', '--partitions', '2', '-o', join(dir, 'map.json')],
};
type Sample = Record<string, number[]>;
const samples: Record<'compiled' | 'source', Sample> = { compiled: {}, source: {} };
const reference: number[] = [];
const time = (args: string[], env: NodeJS.ProcessEnv): number => {
  const t0 = performance.now();
  spawnSync(process.execPath, args, { env, stdio: 'ignore' });
  return performance.now() - t0;
};
for (let i = 0; i < runs; i++) {
  reference.push(time(['-e', '0'], process.env));
  for (const [name, args] of Object.entries(commands)) {
    (samples.compiled[name] ??= []).push(time([BIN, ...args], { ...process.env, CAIRN_FROM_SOURCE: '0' }));
    (samples.source[name] ??= []).push(time([BIN, ...args], { ...process.env, CAIRN_FROM_SOURCE: '1' }));
  }
  process.stderr.write(`[bench cli] run ${i + 1}/${runs}\n`);
}
rmSync(dir, { recursive: true, force: true });
const r = (x: number): number => Math.round(x);
const summary = (xs: number[]): { minMs: number; medianMs: number } => ({ minMs: r(Math.min(...xs)), medianMs: r(median(xs)) });
const out = (s: Sample): Record<string, { minMs: number; medianMs: number }> => Object.fromEntries(Object.entries(s).map(([k, v]) => [k, summary(v)]));
const ref = summary(reference);
console.log(JSON.stringify({
  bench: 'cli',
  setup: { runs, cpus: cpus().length, loadavg: loadavg().map((l) => Math.round(l * 100) / 100), node: process.version, target: 'cairn --help and cairn node list within 300 ms (issue 13)' },
  reference: { nodeE0: ref },
  compiled: out(samples.compiled),
  source: out(samples.source),
  ratios: Object.fromEntries(Object.keys(commands).map((k) => [k, {
    compiledOverNode: Math.round((median(samples.compiled[k]) / ref.medianMs) * 100) / 100,
    sourceOverCompiled: Math.round((median(samples.source[k]) / median(samples.compiled[k])) * 100) / 100,
  }])),
}, null, 2));
