/**
 * Volumes end to end, through the real `cairn up`, the CLI, the REST API and fio over NBD:
 * create, write, snapshot, write more, the snapshot keeps its content, clone and write the
 * clone (parent, snapshot and clone each read their own bytes), flatten, delete the
 * snapshot, resize (nbdinfo sees it), rollback, delete (the nodes' used bytes fall back).
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiClient } from '../../src/api/index.ts';
import { CAIRN, cairnUp, tempDataDir, type Up } from '../helpers/cairn-up.ts';
import { have, run } from '../helpers/tools.ts';
import { eventually } from '../helpers/cluster.ts';

const MIB = 1 << 20;

/** Runs `cairn ARGS --data-dir DIR`; resolves with exit code and output. */
async function cairn(dir: string, ...args: string[]): Promise<{ code: number; out: string }> {
  const r = await run(process.execPath, [CAIRN, ...args, '--data-dir', dir], 120000);
  return { code: r.code, out: r.stdout + r.stderr };
}

/** fio over NBD: writes (or with verifyOnly, checks) `pattern` in [offset, offset+size). */
async function fioPattern(uri: string, pattern: string, offset: number, size: number, verifyOnly = false): Promise<{ code: number; out: string }> {
  // A read job with a verify pattern checks every block it reads (and never writes).
  const args = [
    '--name=v', '--ioengine=nbd', `--uri=${uri}`, `--rw=${verifyOnly ? 'read' : 'write'}`, '--bs=256k', '--iodepth=8', `--offset=${offset}`, `--size=${size}`,
    '--verify=pattern', `--verify_pattern=${pattern}`, '--verify_fatal=1',
    ...(verifyOnly ? ['--readonly'] : ['--do_verify=1', '--end_fsync=1']),
  ];
  const r = await run('fio', args, 120000);
  return { code: r.code, out: r.stdout.slice(-600) + r.stderr.slice(-1500) };
}

/** Polls async `cond` every 200 ms until true (true) or `timeoutMs` passes (false). */

let up: Up | null = null;
let cleanup: () => void = () => undefined;
let api: ApiClient;
let base: string;

test.before(async () => {
  const d = tempDataDir();
  cleanup = d.cleanup;
  up = await cairnUp(d.dir, ['--nodes', '3', '--devices', '1', '--device-size', '512MiB', '--partitions', '4', '--volume-size', '64MiB', '--nvmf-paths', '1'], 120000);
  const config = JSON.parse(readFileSync(join(d.dir, 'cluster.json'), 'utf8')) as { token: string; nodes: Array<{ host: string; apiPort: number }> };
  api = new ApiClient(`http://${config.nodes[1].host}:${config.nodes[1].apiPort}`, config.token);
  base = up.uri.slice(0, up.uri.lastIndexOf('/'));
});

test.after.always(async () => {
  await up?.stop();
  cleanup();
});

test.serial('create, snapshot, clone, flatten, resize, rollback and delete through the CLI, with fio verify over NBD', async (t) => {
  if (!(await have('fio')) || !(await have('nbdinfo'))) return t.fail('fio and nbdinfo are required (apt-get install fio libnbd-bin)');
  const dir = up!.dataDir;
  let r = await cairn(dir, 'volume', 'create', 'db1', '--size', '32MiB');
  t.is(r.code, 0, r.out);
  r = await cairn(dir, 'volume', 'create', 'db1', '--size', '32MiB');
  t.is(r.code, 0, `idempotent create: ${r.out}`);
  r = await cairn(dir, 'volume', 'create', 'db1', '--size', '16MiB');
  t.is(r.code, 4, `create with another size is a conflict: ${r.out}`);
  r = await cairn(dir, 'volume', 'create', 'bad/name', '--size', '16MiB');
  t.is(r.code, 2, r.out);

  // Pattern A over 16 MiB, snapshot, pattern B over the first 8 MiB.
  const db1 = `${base}/db1`;
  t.is((await fioPattern(db1, '0xaa', 0, 16 * MIB)).code, 0);
  r = await cairn(dir, 'snapshot', 'create', 'db1', 's1');
  t.is(r.code, 0, r.out);
  t.is((await fioPattern(db1, '0xbb', 0, 8 * MIB)).code, 0);
  const snap = `${base}/db1@s1`;
  let f = await fioPattern(snap, '0xaa', 0, 16 * MIB, true);
  t.is(f.code, 0, `the snapshot reads its old content: ${f.out}`);
  t.is((await fioPattern(db1, '0xbb', 0, 8 * MIB, true)).code, 0, 'the volume reads the new content');
  t.is((await fioPattern(db1, '0xaa', 8 * MIB, 8 * MIB, true)).code, 0, 'and the old content where it was not rewritten');
  const ro = await run('fio', ['--name=w', '--ioengine=nbd', `--uri=${snap}`, '--rw=write', '--bs=4k', '--size=4k']);
  t.not(ro.code, 0, 'a write to the snapshot export fails');

  // Clone the snapshot; write C to the clone's first 4 MiB.
  r = await cairn(dir, 'volume', 'clone', 'db1@s1', 'c1');
  t.is(r.code, 0, r.out);
  const c1 = `${base}/c1`;
  t.is((await fioPattern(c1, '0xcc', 0, 4 * MIB)).code, 0);
  t.is((await fioPattern(c1, '0xaa', 4 * MIB, 12 * MIB, true)).code, 0, 'the clone reads the parent where it has not written');
  t.is((await fioPattern(db1, '0xbb', 0, 8 * MIB, true)).code, 0, 'the parent keeps its bytes');
  t.is((await fioPattern(snap, '0xaa', 0, 16 * MIB, true)).code, 0, 'the snapshot keeps its bytes');
  r = await cairn(dir, 'snapshot', 'delete', 'db1@s1');
  t.is(r.code, 4, `a snapshot with clones is not deleted: ${r.out}`);
  t.regex(r.out, /c1/, 'the refusal names the clone');
  r = await cairn(dir, 'volume', 'flatten', 'c1');
  t.is(r.code, 0, r.out);
  r = await cairn(dir, 'snapshot', 'delete', 'db1@s1');
  t.is(r.code, 0, `after flatten the snapshot goes: ${r.out}`);
  t.is((await fioPattern(c1, '0xcc', 0, 4 * MIB, true)).code, 0, 'the flattened clone keeps its own bytes');
  t.is((await fioPattern(c1, '0xaa', 4 * MIB, 12 * MIB, true)).code, 0, 'and the copied parent bytes');

  // Resize: grow online; nbdinfo sees it on (re)connect; shrink needs --allow-shrink.
  r = await cairn(dir, 'volume', 'resize', 'db1', '48MiB');
  t.is(r.code, 0, r.out);
  // The gateway follows the catalog (every 2 s); a new connection sees the new size.
  let seen = '';
  const grown = await eventually(async () => {
    seen = spawnSync('nbdinfo', ['--size', db1], { encoding: 'utf8' }).stdout.trim();
    return seen === String(48 * MIB);
  }, 15000, 200);
  t.true(grown, `nbdinfo --size shows 48 MiB (last: ${seen})`);
  r = await cairn(dir, 'volume', 'resize', 'db1', '40MiB');
  t.is(r.code, 4, r.out);

  // Rollback: snapshot s2, overwrite, roll back: the s2 content is back.
  t.is((await cairn(dir, 'snapshot', 'create', 'db1', 's2')).code, 0);
  t.is((await fioPattern(db1, '0xdd', 0, 16 * MIB)).code, 0);
  // An extent trimmed whole after the snapshot holds no mapped page: rollback must still restore it.
  const trim = await run('fio', ['--name=t', '--ioengine=nbd', `--uri=${db1}`, '--rw=trim', '--bs=1m', `--offset=${MIB}`, `--size=${MIB}`]);
  t.is(trim.code, 0, `fio trim: ${trim.stderr.slice(-800)}`);
  t.is((await fioPattern(db1, '0x00', MIB, MIB, true)).code, 0, 'the trimmed extent reads zeros');
  r = await cairn(dir, 'volume', 'rollback', 'db1', 's2');
  t.is(r.code, 0, r.out);
  f = await fioPattern(db1, '0xbb', 0, 8 * MIB, true);
  t.is(f.code, 0, `rolled back: ${f.out}`);
  t.is((await fioPattern(db1, '0xaa', 8 * MIB, 8 * MIB, true)).code, 0);
  t.is((await cairn(dir, 'snapshot', 'delete', 'db1', 's2')).code, 0);

  // Delete: the space comes back on the nodes.
  const id = (await api.call<{ id: number }>('GET', '/v1/volumes/db1')).id;
  const stored = async (): Promise<number> => {
    const n = await api.call<{ nodes: Array<{ volumes: Array<{ volume: number; storedBytes: number }> }> }>('GET', '/v1/nodes');
    return n.nodes.reduce((s, x) => s + x.volumes.filter((v) => v.volume === id).reduce((a, v) => a + v.storedBytes, 0), 0);
  };
  t.true((await stored()) > 0, 'db1 stores data before the delete');
  r = await cairn(dir, 'volume', 'delete', 'db1');
  t.is(r.code, 0, r.out);
  let now = -1;
  const fell = await eventually(async () => (now = await stored()) === 0, 30000, 200);
  t.true(fell, `stored bytes of the deleted volume fall to 0 (now ${now})`);
  r = await cairn(dir, 'volume', 'show', 'db1');
  t.is(r.code, 3, r.out);
});
