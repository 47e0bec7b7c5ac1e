/**
 * The chaos suite at CI size: `bench/chaos` run as a child process for 5 seeded rounds (seed
 * 1: kill -9 of a node, add-node, kill -9 of the gateway, reweight, kill -9 of a node) on a
 * small volume, and its JSON summary must show every round run with no verify error, no
 * lost flushed write and no replica mismatch. Runs under CAIRN_SLOW=1 (`npm run test:recovery`);
 * `npm run chaos -- --rounds N` runs it at any size.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { have } from '../helpers/tools.ts';
import { slowSerial } from '../helpers/slow.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');

slowSerial('chaos suite, 5 rounds, seed 1: no verify error, no lost flushed write, identical replicas', async (t) => {
  t.timeout(300000);
  t.true(await have('fio'), 'fio is not installed (.ci/run installs it)');
  const args = ['--import', 'tsx', join(ROOT, 'bench', 'chaos', 'index.ts'), '--rounds', '5', '--seed', '1',
    '--volume-mib', '64', '--slot-mib', '2', '--rate', '1m', '--heal-timeout', '90'];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  // Stop the suite (it cleans up its cluster on SIGTERM) if the test times out first.
  const guard = setTimeout(() => child.kill('SIGTERM'), 290000);
  const code = await new Promise<number | null>((r) => child.once('close', (c) => r(c)));
  clearTimeout(guard);
  for (const line of stderr.split('\n').filter((l) => /round \d+\/|mismatch|verify:/.test(l))) t.log(line);
  const at = stdout.indexOf('{');
  t.true(at >= 0, `no JSON summary (exit ${code}):\n${stderr.slice(-4000)}`);
  const summary = JSON.parse(stdout.slice(at)) as { rounds: number; verifyErrors: number; lostFlushedWrites: number; replicaMismatches: number; failedRounds: unknown[]; faults: Record<string, number> };
  t.log(`faults ${JSON.stringify(summary.faults)}; failed rounds: ${JSON.stringify(summary.failedRounds)}`);
  t.is(summary.rounds, 5, 'every round ran');
  t.is(summary.verifyErrors, 0, 'no verify error');
  t.is(summary.lostFlushedWrites, 0, 'no lost flushed write');
  t.is(summary.replicaMismatches, 0, 'every extent identical on its members');
});
