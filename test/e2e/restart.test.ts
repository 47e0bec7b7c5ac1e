/**
 * Must-show 3: data written through fio survives a stop/start of the whole cluster on the
 * same data directory, and reads still succeed after `kill -9` of one storage node (the
 * other replicas serve them); when the gateway process itself is killed -9, its nodes stop
 * by themselves and a new start serves the same data.
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

async function waitGone(pid: number, timeoutMs = 30000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    if (Date.now() > until) throw new Error(`process ${pid} still running ${timeoutMs} ms after its gateway died`);
    await new Promise((r) => setTimeout(r, 100));
  }
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

    // Crash the gateway itself: its node processes must notice and stop on their own,
    // and the next start (node 1 recovering from its kill -9) serves the same data.
    const survivors = [0, 2].map((id) => up.nodePid(id));
    await up.stop('SIGKILL');
    for (const pid of survivors) await waitGone(pid);
    up = await cairnUp(dir);
    r = await run('fio', fioArgs(up.uri, ['--verify_only']));
    t.is(r.code, 0, `after gateway crash + restart: ${r.stderr}${r.stdout.slice(-1500)}`);
    t.is(verified(r.stdout), 64 * 1024, 'all 64 MiB verified after the gateway crash and restart');
  } finally {
    await up.stop('SIGINT');
    cleanup();
  }
});
