/**
 * Must-show 2: qemu-img convert and nbdcopy copy a 64 MiB random file onto the volume and
 * back; each tool reads back what the other wrote, byte for byte.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cairnUp, tempDataDir } from '../helpers/cairn-up.ts';
import { have, run } from '../helpers/tools.ts';

const MiB = 1024 * 1024;

function assertImage(t: import('ava').ExecutionContext, path: string, expect: Buffer): void {
  const got = readFileSync(path);
  t.is(got.length, 1024 * MiB, 'the whole 1 GiB volume came back');
  t.true(got.subarray(0, expect.length).equals(expect), 'the copied 64 MiB are identical');
  t.true(got.subarray(expect.length).every((b) => b === 0), 'the never-written rest reads as zeros');
}

test('qemu-img convert and nbdcopy round-trip 64 MiB of random data', async (t) => {
  t.timeout(600000);
  for (const tool of ['qemu-img', 'nbdcopy']) t.true(await have(tool), `${tool} is not installed (.ci/run installs it)`);
  const { dir, cleanup } = tempDataDir();
  const up = await cairnUp(dir);
  try {
    const a = randomBytes(64 * MiB);
    const b = randomBytes(64 * MiB);
    writeFileSync(join(dir, 'a.raw'), a);
    writeFileSync(join(dir, 'b.raw'), b);

    let r = await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', join(dir, 'a.raw'), up.uri]);
    t.is(r.code, 0, r.stderr);
    r = await run('nbdcopy', [up.uri, join(dir, 'a.back')]);
    t.is(r.code, 0, r.stderr);
    assertImage(t, join(dir, 'a.back'), a);

    r = await run('nbdcopy', [join(dir, 'b.raw'), up.uri]);
    t.is(r.code, 0, r.stderr);
    r = await run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', up.uri, join(dir, 'b.back')]);
    t.is(r.code, 0, r.stderr);
    assertImage(t, join(dir, 'b.back'), b);
  } finally {
    t.is(await up.stop(), 0, up.output());
    cleanup();
  }
});
