import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { compileMap, decodeMap, place } from '../../placement/index.ts';

const run = promisify(execFile);
const bin = new URL('../../bin/cairn.js', import.meta.url).pathname;

/** Runs `cairn ...args`; resolves with exit code, stdout and stderr (never rejects). */
async function cairn(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [bin, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const dir = mkdtempSync(join(tmpdir(), 'cairn-cli-'));
const m40 = join(dir, 'm40.json');
const m44 = join(dir, 'm44.json');

test.serial('placement build writes a verified map; --from --add-hosts edits it', async (t) => {
  const b = await cairn('placement', 'build', '--hosts', '10', '--devices', '1', '--partitions', '4', '--out', m40, '--json');
  t.is(b.code, 0, b.stderr);
  const summary = JSON.parse(b.stdout);
  t.like(summary, { epoch: 1, leaves: 40, hosts: 10, racks: 0, grafts: 0 });
  const map = decodeMap(readFileSync(m40, 'utf8'));
  t.is(map.leaves.length, 40);
  const e = await cairn('placement', 'build', '--from', m40, '--add-hosts', '1', '--out', m44, '--json');
  t.is(e.code, 0, e.stderr);
  t.like(JSON.parse(e.stdout), { epoch: 2, leaves: 44, hosts: 11, grafts: 1 });
  const text = await cairn('placement', 'build', '--hosts', '4', '--partitions', '2', '--racks', '2', '--weights', '1,2');
  t.is(text.code, 0);
  const racked = decodeMap(text.stdout);
  t.is(racked.buckets.filter((b) => b.type === 'rack').length, 2);
  t.deepEqual([...new Set(racked.leaves.map((l) => l.weight))].sort(), [0.5, 1]);
});

test.serial('placement map prints the same members as place(), for numbers and hashed names', async (t) => {
  const cm = compileMap(decodeMap(readFileSync(m40, 'utf8')));
  const r = await cairn('placement', 'map', '--map', m40, '12345', '--json');
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.deepEqual(
    out.members.map((m: { id: number }) => m.id),
    place(cm, 'replicated', 12345, 3).members,
  );
  t.true(out.complete);
  const named = JSON.parse((await cairn('placement', 'map', '--map', m40, '--rule', 'erasure', '--size', '6', 'vol7/extent42', '--json')).stdout);
  t.is(named.members.length, 6);
  t.deepEqual(
    named.members.map((m: { id: number }) => m.id),
    place(cm, 'erasure', named.x, 6).members,
  );
  const human = await cairn('placement', 'map', '--map', m40, '7');
  t.regex(human.stdout, /^key 7 \(x=7\) epoch 1 rule replicated size 3:\n {2}0: \d+ host\d\.dev0\.p\d/);
});

test.serial('placement test reports utilization, rate and movement against a second map', async (t) => {
  const r = await cairn('placement', 'test', '--map', m40, '--rule', 'replicated', '--keys', '40000', '--compare', m44, '--json');
  t.is(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.is(out.keys, 40000);
  t.true(out.mappingsPerSecond > 0);
  t.is(out.utilization.placements, 120000);
  t.is(out.utilization.leaves, 40);
  t.true(out.utilization.cvRatio < 1.3);
  t.is(out.compare.ratio, 1);
  t.true(out.compare.optimal > 0);
  const human = await cairn('placement', 'test', '--map', m40, '--rule', '1', '--size', '6', '--keys', '2000', '--per-leaf');
  t.is(human.code, 0, human.stderr);
  t.regex(human.stdout, /rule erasure, size 6: 2000 keys/);
  t.is(human.stdout.split('\n').filter((l) => l.startsWith('  leaf ')).length, 40);
});

test.serial('errors are one line on stderr with a non-zero exit status', async (t) => {
  const cases: [string[], RegExp][] = [
    [['placement', 'test', '--map', join(dir, 'missing.json')], /^Error: cannot read .*missing\.json: ENOENT$/],
    [['placement', 'test', '--map', m40, '--keys', 'many'], /^Error: .*--keys.*integer/],
    [['placement', 'map', '--map', m40, '--rule', 'nope', '1'], /^Error: no rule named "nope"/],
    [['placement', 'map', '--map', m40, '99999999999'], /^Error: key 99999999999 is above 4294967295/],
    [['placement', 'build'], /^Error: give --hosts/],
    [['placement', 'build', '--hosts', '3', '--weights', '1,x'], /^Error: weight spec item "x"/],
  ];
  const corrupt = join(dir, 'corrupt.json');
  writeFileSync(corrupt, readFileSync(m40, 'utf8').replace('"weight":0.25', '"weight":0.5'));
  cases.push([['placement', 'map', '--map', corrupt, '1'], /^Error: .*corrupt\.json: checksum: checksum [0-9a-f]{8} does not match/]);
  const notJson = join(dir, 'not.json');
  writeFileSync(notJson, 'hello');
  cases.push([['placement', 'test', '--map', notJson], /^Error: .*not\.json: not JSON/]);
  for (const [args, pattern] of cases) {
    const r = await cairn(...args);
    t.not(r.code, 0, args.join(' '));
    t.is(r.stdout, '', args.join(' '));
    const lines = r.stderr.trim().split('\n');
    t.is(lines.length, 1, `${args.join(' ')}: ${r.stderr}`);
    t.regex(lines[0], pattern);
  }
});
