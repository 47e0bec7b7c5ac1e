/**
 * Must-show "`cairn node out`", with the real CLI against the real `cairn up`:
 *
 * - `cairn node out 2` makes a new epoch; fio (randwrite, crc32c verify, fsync every 32
 *   writes) through NBD passes with no error while every extent has 2 of its 3 copies
 *   (pool size 3, min_size 2); `cairn status` says HEALTH_WARN, names node 2 out and counts
 *   degraded extents and bytes.
 * - `cairn node in 2`: what fio wrote while node 2 was out verifies right away (node 2 compares
 *   its extents with the other members before serving them), and status goes back to
 *   HEALTH_OK with nothing degraded.
 * - With a second node out as well (`node out 1`), extents are below min_size: status says
 *   HEALTH_ERR (inactive), and a write waits, then fails after the initiator's I/O timeout
 *   (30 s) with an NBD error naming the extent and the missing members; with both nodes back
 *   in, writes work again.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import type { ClusterStatus } from '../../src/api/status.ts';
import { CAIRN, cairnUp, tempDataDir, type Up } from '../helpers/cairn-up.ts';
import { CMD, ERR, RawNbd } from '../helpers/raw-nbd.ts';
import { have, run, type RunResult } from '../helpers/tools.ts';

/** The gateway's I/O timeout in these tests (`cairn up --io-timeout`; the default is 30 s). */
const IO_TIMEOUT_MS = 5000;

let up: Up;
let cleanup: () => void;

test.before(async () => {
  const d = tempDataDir();
  cleanup = d.cleanup;
  up = await cairnUp(d.dir, ['--io-timeout', String(IO_TIMEOUT_MS)]);
});

test.after.always(async () => {
  await up?.stop();
  cleanup?.();
});

/** Runs `cairn ARGS --data-dir DIR`. */
function cairn(...args: string[]): Promise<RunResult> {
  return run(process.execPath, [CAIRN, ...args, '--data-dir', up.dataDir], 60000);
}

async function status(): Promise<ClusterStatus & { servedBy: number }> {
  const r = await cairn('status', '--json');
  if (r.code !== 0) throw new Error(`cairn status --json exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as ClusterStatus & { servedBy: number };
}

/** Polls `cairn status --json` until `cond` holds (resolves with that status) or `timeoutMs` passes (the last one). */
async function statusUntil(cond: (s: ClusterStatus) => boolean, timeoutMs: number): Promise<ClusterStatus> {
  const end = Date.now() + timeoutMs;
  let s = await status();
  while (!cond(s) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 250));
    s = await status();
  }
  return s;
}

/** Submits `cairn node out|in ID` and returns the epoch it published. */
async function mark(how: 'out' | 'in', id: number): Promise<number> {
  const r = await cairn('node', how, String(id), '--json');
  if (r.code !== 0) throw new Error(`cairn node ${how} ${id} exited ${r.code}: ${r.stderr}`);
  const j = JSON.parse(r.stdout) as { changed: boolean; epoch: number };
  if (!j.changed) throw new Error(`cairn node ${how} ${id} changed nothing (epoch ${j.epoch})`);
  return j.epoch;
}

function fioArgs(extra: string[]): string[] {
  // Same job name, size and seed (randrepeat) in every run, so --verify_only checks exactly what was written.
  return ['--name=degraded', '--ioengine=nbd', `--uri=${up.uri}`, '--rw=randwrite', '--bs=4k', '--size=32m', '--iodepth=16',
    '--verify=crc32c', '--verify_fatal=1', '--verify_state_save=0', '--output-format=json', ...extra];
}

function fioJob(r: RunResult): { error: number; writeKiB: number; readKiB: number } {
  const j = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))).jobs[0];
  return { error: j.error, writeKiB: j.write.io_kbytes, readKiB: j.read.io_kbytes };
}

test.serial('cairn node out 2: fio randwrite+verify passes on 2 of 3 copies; status says HEALTH_WARN, node 2 out, extents degraded', async (t) => {
  t.timeout(180000);
  t.true(await have('fio'), 'fio is not installed (.ci/run installs it)');
  // Nodes may still be peering right after start (HEALTH_WARN meanwhile).
  const before = await statusUntil((x) => x.health === 'HEALTH_OK', 30000);
  t.is(before.health, 'HEALTH_OK', `a fresh cluster is healthy: ${before.checks.join('; ')}`);

  const epoch = await mark('out', 2);
  t.true(epoch > before.epoch, `node out 2 published epoch ${epoch} (was ${before.epoch})`);
  const s0 = await statusUntil((s) => s.epoch >= epoch, 30000);
  t.true(s0.epoch >= epoch, `status reports the new epoch ${epoch}`);
  t.deepEqual(s0.nodes.out, [2], 'status names node 2 out');
  t.is(s0.nodes.up, 3, 'node 2 is out, not down');

  const t0 = Date.now();
  const r = await run('fio', fioArgs(['--fsync=32']));
  t.is(r.code, 0, r.stderr + r.stdout.slice(-1500));
  const job = fioJob(r);
  t.is(job.error, 0, 'fio reports no error');
  t.is(job.writeKiB, 32 * 1024, '32 MiB written');
  t.is(job.readKiB, 32 * 1024, 'and all 32 MiB read back and verified');
  t.log(`fio randwrite+verify of 32 MiB with node 2 out: ${Date.now() - t0} ms`);

  const [s, human] = await Promise.all([status(), cairn('status')]);
  t.is(s.health, 'HEALTH_WARN', s.checks.join('; '));
  t.deepEqual(s.nodes.out, [2]);
  t.true(s.checks.includes('1 node out: 2'), `checks: ${s.checks.join('; ')}`);
  t.true(s.data.extents >= 32, `32 MiB written: at least 32 extents of 1 MiB (${s.data.extents})`);
  t.true(s.data.degraded > 0 && s.data.degradedBytes > 0, `degraded extents ${s.data.degraded}, bytes ${s.data.degradedBytes}`);
  t.is(s.data.degraded, s.data.extents, 'every extent has a copy fewer than size (3 nodes, one out)');
  t.is(s.data.inactive, 0, 'none below min_size');
  t.is(human.code, 0, human.stderr);
  t.regex(human.stdout, /health:\s+HEALTH_WARN/);
  t.regex(human.stdout, /1 node out: 2/);
  t.regex(human.stdout, /\d+ extents degraded \(\d+\.\d (KiB|MiB|GiB)\)/);
});

let inEpoch = 0;

// Nobody recorded what node 2 missed while it was out (the writes named only the 2 placed
// members): back in, it compares every extent placed on it with the other members before it
// serves reads of them (full peering), so no stale copy is served.
test.serial('cairn node in 2: writes acknowledged while node 2 was out read back at once', async (t) => {
  t.timeout(120000);
  inEpoch = await mark('in', 2);
  const r = await run('fio', fioArgs(['--verify_only']));
  t.is(r.code, 0, `fio --verify_only: ${r.stderr.slice(0, 1500)}${r.stdout.slice(-800)}`);
  t.is(fioJob(r).readKiB, 32 * 1024, 'all 32 MiB verified');
});

test.serial('after cairn node in 2, status goes back to HEALTH_OK, nothing degraded', async (t) => {
  t.timeout(120000);
  const epoch = inEpoch;
  // A node back in may peer with the others first (HEALTH_WARN meanwhile): wait for the end state.
  const s = await statusUntil((x) => x.epoch >= epoch && x.health === 'HEALTH_OK', 60000);
  t.true(s.epoch >= epoch);
  t.is(s.health, 'HEALTH_OK', s.checks.join('; '));
  t.deepEqual(s.checks, []);
  t.deepEqual(s.nodes.out, []);
  t.deepEqual(s.nodes.down, []);
  t.is(s.nodes.in, 3);
  t.is(s.data.degraded, 0);
  t.is(s.data.degradedBytes, 0);
  t.is(s.data.inactive, 0);
  const human = await cairn('status');
  t.regex(human.stdout, /health:\s+HEALTH_OK/);
  // Node 2 current again (and surely known back in by the gateway): it serves its copies, which are whole.
  const r = await run('fio', fioArgs(['--verify_only']));
  t.is(r.code, 0, `fio --verify_only: ${r.stderr.slice(0, 1500)}${r.stdout.slice(-800)}`);
  t.is(fioJob(r).readKiB, 32 * 1024, 'all 32 MiB verified again');
});

test.serial('node out 2 and node out 1: below min_size, HEALTH_ERR, a write fails after the I/O timeout naming the extent', async (t) => {
  t.timeout(180000);
  await mark('out', 2);
  const epoch = await mark('out', 1);
  const s = await statusUntil((x) => x.epoch >= epoch, 30000);
  t.deepEqual(s.nodes.out, [1, 2]);
  t.is(s.health, 'HEALTH_ERR', s.checks.join('; '));
  t.true(s.data.inactive > 0 && s.data.inactiveBytes > 0, `inactive extents ${s.data.inactive}, bytes ${s.data.inactiveBytes}`);
  t.is(s.data.inactive, s.data.extents, 'every extent: only node 0 can hold it');
  t.true(s.checks.some((c) => /extents? inactive .*fewer than min_size members up/.test(c)), s.checks.join('; '));

  const nbd = await RawNbd.open(up.port);
  try {
    const go = await nbd.go('vol0');
    t.is(go[go.length - 1].type, 1, 'NBD GO');
    t.true(nbd.structured, 'structured replies carry the error message');
    const offset = 5 * 1024 * 1024 + 8192; // extent 5
    const t0 = Date.now();
    const w = await nbd.cmd(CMD.WRITE, offset, 4096, 0, randomBytes(4096));
    const ms = Date.now() - t0;
    t.log(`write below min_size failed after ${ms} ms: ${w.message}`);
    t.is(w.error, ERR.EIO, 'EIO');
    t.true(ms >= IO_TIMEOUT_MS - 1000, `the write waited for enough members (${ms} ms) rather than failing at once`);
    t.true(ms < IO_TIMEOUT_MS + 15000, `and failed within the I/O timeout (${ms} ms)`);
    t.regex(w.message ?? '', /extent 5\b/, 'the error names the extent');
    t.regex(w.message ?? '', /below min_size 2/, 'and why');
    t.regex(w.message ?? '', /has 1 of 3 members up/, 'and how many members it has (node 0\'s)');
    t.regex(w.message ?? '', /missing: 2 members not placeable \(too few nodes in; out: nodes 1, 2\)/, 'and which are missing');

    // Both back in: I/O works again.
    await mark('in', 1);
    const last = await mark('in', 2);
    const ok = await statusUntil((x) => x.epoch >= last && x.health === 'HEALTH_OK', 60000);
    t.is(ok.health, 'HEALTH_OK', ok.checks.join('; '));
    const data = randomBytes(4096);
    t.is((await nbd.cmd(CMD.WRITE, offset, 4096, 0, data)).error, 0, 'a write with every node back in succeeds');
    const back = await nbd.cmd(CMD.READ, offset, 4096);
    t.is(back.error, 0);
    t.true(back.data?.equals(data), 'and reads back');
  } finally {
    nbd.destroy();
  }
});
