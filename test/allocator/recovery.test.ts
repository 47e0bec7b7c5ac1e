/**
 * Recovery specifics: roll-forward checks page crcs only above the durable horizon (a
 * flushed record with a rotten page is still replayed, and only that page fails; an
 * unflushed torn record is dropped and its header zeroed), a lost checkpoint database is a
 * FormatError unless the operator asks to rebuild from the log, and trims of pages never
 * written keep refusing older writes through checkpoints and roll-forward.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { closeSync, openSync, readSync, rmSync } from 'node:fs';
import { Allocator, ChecksumError, FormatError, PAGE } from '../../allocator/index.ts';
import { flip, pageData, pagesData, tempDevice } from './helpers.ts';

function readBlock(path: string, pos: number): Buffer {
  const fd = openSync(path, 'r');
  const b = Buffer.alloc(PAGE);
  readSync(fd, b, 0, PAGE, pos);
  closeSync(fd);
  return b;
}

test('crcs are checked only above the durable horizon; a torn unflushed record is dropped and its header zeroed', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const proc = spawn(process.execPath, ['--import', 'tsx', new URL('./recovery-child.ts', import.meta.url).pathname, dev.path], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((r) => proc.on('exit', r));
  const where = await new Promise<{ a3: number; a2: number; b: number }>((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(JSON.parse(out));
    });
    proc.on('exit', (c) => reject(new Error(`child exited with ${c}`)));
  });
  proc.kill('SIGKILL');
  await exited;
  // Rot in a flushed record (A, page 3), a torn page in the unflushed one (B).
  flip(dev.path, where.a3 + 100);
  flip(dev.path, where.b + 100);
  const opts = { path: dev.path, offset: 0, size: 4 * 1024 * 1024 };
  let a = await Allocator.open(opts);
  const rep = a.stats().recovery;
  t.is(rep.recordsDropped, 1);
  t.true(rep.recordsVerified >= 1 && rep.recordsVerified < rep.recordsReplayed + rep.recordsDropped, JSON.stringify(rep));
  for (let p = 0; p < 20; p++) {
    if (p === 3) await t.throwsAsync(a.read(1, 3, 1), { instanceOf: ChecksumError });
    else t.true((await a.read(1, p, 1)).equals(pageData(1, p, p < 10 ? 1 : 2)), `page ${p}`);
  }
  t.true((await a.read(2, 0, 4)).equals(Buffer.alloc(4 * PAGE)), 'the torn record is gone');
  t.is(a.version(2, 0), 0);
  t.true(readBlock(dev.path, where.b - PAGE).equals(Buffer.alloc(PAGE)), 'its header was zeroed');
  // Life goes on: new writes, a clean reopen.
  await a.write(2, 0, pagesData(2, 0, 4, 4), 4);
  await a.close();
  a = await Allocator.open(opts);
  t.true((await a.read(2, 0, 4)).equals(pagesData(2, 0, 4, 4)));
  t.true((await a.read(1, 10, 10)).equals(pagesData(1, 10, 10, 2)));
  await a.close();
});

test('a lost checkpoint database is a FormatError unless rebuildFromLog', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const opts = { path: dev.path, offset: 0, size: 2 * 1024 * 1024, segmentBytes: 32 * 1024 };
  let a = await Allocator.open(opts);
  for (let p = 0; p < 40; p += 4) await a.write(7, p, pagesData(7, p, 4, 1), 1);
  await a.write(7, 0, pageData(7, 0, 2), 2);
  await a.close();
  rmSync(`${dev.path}.meta`, { recursive: true, force: true });
  const e = await t.throwsAsync(Allocator.open(opts), { instanceOf: FormatError });
  t.regex(e!.message, /checkpoint database holds no checkpoint.*rebuildFromLog/);
  a = await Allocator.open({ ...opts, rebuildFromLog: true });
  t.false(a.stats().recovery.fromCheckpoint);
  t.true((await a.read(7, 0, 1)).equals(pageData(7, 0, 2)));
  t.true((await a.read(7, 1, 39)).equals(Buffer.concat(Array.from({ length: 39 }, (_, i) => pageData(7, 1 + i, 1)))));
  await a.close();
  // The rebuilt database is whole again.
  a = await Allocator.open(opts);
  t.true(a.stats().recovery.fromCheckpoint);
  t.true((await a.read(7, 0, 1)).equals(pageData(7, 0, 2)));
  await a.close();
  // A database of another region is refused the same way.
  const other = tempDevice();
  t.teardown(other.cleanup);
  const b = await Allocator.open({ ...opts, path: other.path, metaDir: `${dev.path}.meta/0` });
  await b.close();
  await t.throwsAsync(Allocator.open(opts), { instanceOf: FormatError, message: /another region/ });
});

test('trims of pages never written refuse older writes, through a checkpoint and through roll-forward', async (t) => {
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const opts = { path: dev.path, offset: 0, size: 2 * 1024 * 1024, segmentBytes: 32 * 1024 };
  let a = await Allocator.open(opts);
  await a.write(5, 2, pageData(5, 2, 1), 1);
  await a.trim(5, 0, 2 ** 20, 10); // far beyond the written pages
  await a.trim(6, 100_000, 50, 20); // a key never written at all
  await a.write(5, 5000, pageData(5, 5000, 8), 8); // older than the trim: ignored
  await a.write(6, 100_010, pageData(6, 100_010, 15), 15); // ignored
  await a.write(5, 6000, pageData(5, 6000, 12), 12); // newer: kept
  const check = async (when: string): Promise<void> => {
    t.deepEqual([a.version(5, 2), a.version(5, 5000), a.version(5, 6000), a.version(5, 2 ** 20 - 1), a.version(5, 2 ** 20)], [10, 10, 12, 10, 0], when);
    t.deepEqual([a.version(6, 100_010), a.version(6, 100_049), a.version(6, 100_050)], [20, 20, 0], when);
    t.true((await a.read(5, 5000, 1)).equals(Buffer.alloc(PAGE)), when);
    t.true((await a.read(5, 2, 1)).equals(Buffer.alloc(PAGE)), when);
    t.true((await a.read(5, 6000, 1)).equals(pageData(5, 6000, 12)), when);
    t.true((await a.read(6, 100_010, 1)).equals(Buffer.alloc(PAGE)), when);
  };
  await check('while open');
  await a.flush();
  await a.close(); // checkpoint
  a = await Allocator.open(opts);
  await check('after a checkpoint');
  await a.trim(9, 0, 2 ** 20, 30);
  await a.write(9, 7000, pageData(9, 7000, 29), 29);
  t.is(a.version(9, 7000), 30);
  await a.close();
  // Roll-forward alone: without the database the map is rebuilt from the log's records.
  rmSync(`${dev.path}.meta`, { recursive: true, force: true });
  a = await Allocator.open({ ...opts, rebuildFromLog: true });
  t.is(a.version(9, 7000), 30);
  await check('after roll-forward over the whole log');
  await a.close();
});
