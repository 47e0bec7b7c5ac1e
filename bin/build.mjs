#!/usr/bin/env node
// `npm run build` (and `prepare`, so `npm ci` and `npm pack` run it): compiles Cairn with tsc
// into dist/ (tsconfig.build.json: src, placement, allocator, cli), writes dist/package.json
// (commands found by directory) and dist/oclif.manifest.json (their flags and help, checked
// against cli/index.ts's table), bundles the libp2p stack into dist/libp2p.mjs with esbuild,
// and stamps dist/BUILD (bin/cairn.js runs dist/ only while no source file is newer).
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'dist');
const t0 = Date.now();
rmSync(DIST, { recursive: true, force: true });
const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
if (tsc.status !== 0) {
  process.stderr.write('cairn build: tsc failed\n');
  process.exit(1);
}
// The dashboard's static files (tsc copies only what it compiles).
cpSync(join(ROOT, 'src', 'api', 'ui'), join(DIST, 'src', 'api', 'ui'), { recursive: true });
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
// The compiled CLI finds commands by directory (ids as in cli/index.ts) and their flags and
// help in oclif.manifest.json, so a run imports only the command it runs.
pkg.oclif.commands = './cli/commands';
delete pkg.scripts;
delete pkg.devDependencies;
writeFileSync(join(DIST, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
const { build } = await import('esbuild');
await build({
  entryPoints: [join(DIST, 'src', 'gossip', 'libp2p-entry.js')],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outfile: join(DIST, 'libp2p.mjs'),
  logLevel: 'warning',
  // Some dependencies call require() for node: built-ins; give the ESM bundle one.
  banner: { js: "import { createRequire as __cairnRequire } from 'node:module'; const require = __cairnRequire(import.meta.url);" },
});
const { Config } = await import('@oclif/core');
const config = await Config.load(join(DIST, 'package.json'));
const plugin = config.plugins.get(pkg.name);
const ids = Object.keys(plugin.manifest.commands).sort();
const expected = Object.keys((await import(join(DIST, 'cli', 'index.js'))).COMMANDS).sort();
if (JSON.stringify(ids) !== JSON.stringify(expected)) {
  process.stderr.write(`cairn build: the commands found in dist/cli/commands (${ids.join(', ')}) differ from cli/index.ts's table (${expected.join(', ')})\n`);
  process.exit(1);
}
writeFileSync(join(DIST, 'oclif.manifest.json'), JSON.stringify(plugin.manifest));
writeFileSync(join(DIST, 'BUILD'), `${new Date().toISOString()}\n`);
process.stderr.write(`cairn build: dist/ in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
