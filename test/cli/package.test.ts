/**
 * The package installs and the compiled CLI answers at once (issue 13): `npm pack` of this
 * checkout (its dist/, built by `npm ci` through `prepare`; --ignore-scripts so the test does
 * not rebuild under the other tests' feet) is installed with `npm install -g` into a temporary
 * prefix, and `cairn --version` and `cairn placement build` run from there, with no sources
 * and no tsx involved (start-up times: `npm run bench -- cli`). Installing takes about a
 * minute (dependencies from npm's cache), so this runs under CAIRN_SLOW=1
 * (`npm run test:package`, which `.ci/run` runs).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { run } from '../helpers/tools.ts';
import { slowSerial } from '../helpers/slow.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');

slowSerial('npm pack | npm install -g: the installed cairn runs compiled (--version, placement build)', async (t) => {
  t.timeout(600000);
  if (!existsSync(join(ROOT, 'dist', 'BUILD'))) return t.fail('no dist/: run npm run build (npm ci does)');
  const dir = mkdtempSync(join(tmpdir(), 'cairn-pack-'));
  try {
    const pack = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], 120000);
    t.is(pack.code, 0, pack.stderr.slice(-1500));
    const info = (JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>)[0];
    const paths = info.files.map((f) => f.path);
    t.true(paths.includes('dist/cli/commands/up.js') && paths.includes('dist/oclif.manifest.json') && paths.includes('dist/libp2p.mjs'), 'the tarball holds the compiled CLI, its manifest and the libp2p bundle');
    t.false(paths.some((p) => p.startsWith('src/') || p.startsWith('test/')), 'and no sources or tests');
    const prefix = join(dir, 'prefix');
    const inst = await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', join(dir, info.filename)], 480000);
    t.is(inst.code, 0, inst.stderr.slice(-2000));
    const cairn = join(prefix, 'bin', 'cairn');
    const v = await run(cairn, ['--version']);
    t.is(v.code, 0, v.stderr);
    t.regex(v.stdout, new RegExp(`^cairn/${(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version} `));
    const out = join(dir, 'map.json');
    const b = await run(cairn, ['placement', 'build', '--hosts', '4', '--devices', '2', '--partitions', '2', '-o', out]);
    t.is(b.code, 0, b.stderr);
    t.regex(b.stdout, /wrote .*map\.json: epoch 1, 16 leaves, 4 hosts/);
    t.true(statSync(out).size > 0, 'the map file is written');
    const installed = join(prefix, 'lib', 'node_modules', 'cairn');
    t.false(existsSync(join(installed, 'src')), 'the installed package has no sources: it ran compiled');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
