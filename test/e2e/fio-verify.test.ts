/**
 * Must-show 1 of the end-to-end issue: fio's nbd engine writes 256 MiB of 4 KiB random
 * writes with crc32c verification against `cairn up`'s export and reads them back verified.
 */
import test from 'ava';
import { cairnUp, tempDataDir } from '../helpers/cairn-up.ts';
import { have, run } from '../helpers/tools.ts';

test('fio nbd engine: 256 MiB of 4 KiB random writes verify with crc32c, zero errors', async (t) => {
  t.timeout(600000);
  t.true(await have('fio'), 'fio is not installed (.ci/run installs it)');
  const { dir, cleanup } = tempDataDir();
  const up = await cairnUp(dir);
  try {
    const r = await run('fio', [
      '--name=verify', '--ioengine=nbd', `--uri=${up.uri}`, '--rw=randwrite', '--bs=4k', '--size=256m',
      '--iodepth=32', '--verify=crc32c', '--verify_state_save=0', '--do_verify=1', '--verify_fatal=1', '--output-format=json',
    ]);
    t.is(r.code, 0, `fio failed:\n${r.stderr}\n${r.stdout.slice(-2000)}`);
    const job = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))).jobs[0];
    t.is(job.error, 0);
    t.is(job.write.io_kbytes, 256 * 1024, 'all 256 MiB written');
    t.is(job.read.io_kbytes, 256 * 1024, 'all 256 MiB read back and verified');
  } finally {
    t.is(await up.stop(), 0, up.output());
    cleanup();
  }
});
