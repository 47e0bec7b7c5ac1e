/**
 * Must-show 3: data written through fio survives a stop/start of the whole cluster on the
 * same data directory, and reads still succeed after `kill -9` of one storage node (the
 * other replicas serve them).
 */
import test from 'ava';
import { cairnUp, tempDataDir } from '../helpers/cairn-up.ts';
import { have, run } from '../helpers/tools.ts';

function fioArgs(uri: string, extra: string[]): string[] {
  // randrepeat (fio's default) makes the offsets and the verify headers' seeds repeat, so
  // a later --verify_only run checks exactly what this job wrote.
  return ['--name=persist', '--ioengine=nbd', `--uri=${uri}`, '--rw=randwrite', '--bs=4k', '--size=64m', '--offset=128m',
    '--iodepth=16', '--verify=crc32c', '--verify_state_save=0', '--verify_fatal=1', '--output-format=json', ...extra];
}

function verified(stdout: string): number {
  return JSON.parse(stdout.slice(stdout.indexOf('{'))).jobs[0].read.io_kbytes;
}

test('data verifies after a cluster restart and with one node killed -9', async (t) => {
  t.timeout(600000);
  t.true(await have('fio'), 'fio is not installed (.ci/run installs it)');
  const { dir, cleanup } = tempDataDir();
  let up = await cairnUp(dir);
  try {
    let r = await run('fio', fioArgs(up.uri, ['--do_verify=0']));
    t.is(r.code, 0, r.stderr + r.stdout.slice(-1500));
    t.is(await up.stop('SIGINT'), 0, up.output());

    up = await cairnUp(dir);
    t.regex(up.output(), /Reopened cluster/);
    r = await run('fio', fioArgs(up.uri, ['--verify_only']));
    t.is(r.code, 0, `after restart: ${r.stderr}${r.stdout.slice(-1500)}`);
    t.is(verified(r.stdout), 64 * 1024, 'all 64 MiB verified after restart');

    const victim = up.nodePid(1);
    process.kill(victim, 'SIGKILL');
    r = await run('fio', fioArgs(up.uri, ['--verify_only']));
    t.is(r.code, 0, `with node 1 killed: ${r.stderr}${r.stdout.slice(-1500)}`);
    t.is(verified(r.stdout), 64 * 1024, 'all 64 MiB verified from the surviving replicas');
  } finally {
    await up.stop('SIGINT');
    cleanup();
  }
});
