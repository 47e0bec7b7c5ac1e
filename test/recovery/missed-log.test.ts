/**
 * The missed log (src/recovery/missed-log.ts): queries, durability across reopen, group
 * commit, torn and corrupt records, compaction, and SIGKILL of a process mid-workload.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { appendFileSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { MissedLog } from '../../src/recovery/missed-log.ts';

/** Bytes per record in the file format. */
const REC = 16;

async function tempDir(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const sorted = <T>(a: T[]): T[] => [...a].sort((x, y) => (JSON.stringify(x) < JSON.stringify(y) ? -1 : 1));

test('add, has, forNode, remove, counts, size, all', async (t) => {
  const log = await MissedLog.open(join(await tempDir(t), 'missed.log'));
  t.is(log.size, 0);
  t.false(log.has(1, 2, 3));
  await log.add(1, 2, 3);
  await Promise.all([log.add(1, 2, 4), log.add(1, 9, 0), log.add(65535, 0xffffffff, 0xffffffff), log.add(0, 0, 0)]);
  t.true(log.has(1, 2, 3));
  t.true(log.has(65535, 0xffffffff, 0xffffffff));
  t.false(log.has(1, 3, 2));
  t.false(log.has(2, 2, 3));
  t.is(log.size, 5);
  t.deepEqual(sorted(log.forNode(1)), sorted([[2, 3], [2, 4], [9, 0]]));
  t.deepEqual(log.forNode(7), []);
  t.deepEqual(log.counts(), new Map([[1, 3], [65535, 1], [0, 1]]));
  t.deepEqual(sorted(log.all()), sorted([
    { node: 1, volume: 2, extent: 3 },
    { node: 1, volume: 2, extent: 4 },
    { node: 1, volume: 9, extent: 0 },
    { node: 65535, volume: 0xffffffff, extent: 0xffffffff },
    { node: 0, volume: 0, extent: 0 },
  ]));
  log.remove(1, 2, 3);
  log.remove(1, 2, 3); // absent: no-op
  log.remove(5, 5, 5); // absent: no-op
  log.remove(0, 0, 0);
  t.false(log.has(1, 2, 3));
  t.is(log.size, 3);
  t.deepEqual(log.counts(), new Map([[1, 2], [65535, 1]]));
  t.deepEqual(sorted(log.forNode(1)), sorted([[2, 4], [9, 0]]));
  t.throws(() => log.add(65536, 0, 0), { instanceOf: RangeError });
  t.throws(() => log.add(1, -1, 0), { instanceOf: RangeError });
  t.throws(() => log.add(1, 0, 2 ** 32), { instanceOf: RangeError });
  t.throws(() => log.add(1, 0.5, 0), { instanceOf: RangeError });
  t.throws(() => log.remove(1, 0, NaN), { instanceOf: RangeError });
  await log.close();
  await log.close(); // idempotent
  t.throws(() => log.add(3, 3, 3), { message: /closed/ });
  t.throws(() => log.remove(1, 2, 4), { message: /closed/ });
  t.true(log.has(1, 2, 4), 'queries still answer from memory after close');
});

test('reopen keeps adds and removals', async (t) => {
  const path = join(await tempDir(t), 'missed.log');
  const a = await MissedLog.open(path);
  for (let e = 0; e < 50; e++) await a.add(e % 4, 7, e);
  for (let e = 0; e < 50; e += 3) a.remove(e % 4, 7, e);
  await a.sync();
  const expected = sorted(a.all());
  const b = await MissedLog.open(path); // the first one is still open: sync alone made it durable
  t.deepEqual(sorted(b.all()), expected);
  t.deepEqual(b.counts(), a.counts());
  await b.close();
  // Removals written by close() only.
  a.remove(1, 7, 1);
  a.remove(2, 7, 2);
  await a.add(3, 8, 1);
  a.remove(3, 8, 1);
  await a.add(3, 8, 1); // re-added after its removal: the later record wins on replay
  await a.close();
  const c = await MissedLog.open(path);
  t.false(c.has(1, 7, 1));
  t.false(c.has(2, 7, 2));
  t.true(c.has(3, 8, 1));
  t.deepEqual(sorted(c.all()), sorted(a.all()));
  t.is(c.size, a.size);
  await c.close();
});

test('a second add of a present durable record returns undefined; of a pending one, the same promise', async (t) => {
  const log = await MissedLog.open(join(await tempDir(t), 'missed.log'));
  const p1 = log.add(4, 5, 6);
  t.true(p1 instanceof Promise);
  const p2 = log.add(4, 5, 6);
  t.is(p2, p1, 'pending: waits for the same group commit');
  await p1;
  const syncs = log.syncCount;
  t.is(log.add(4, 5, 6), undefined);
  t.is(log.syncCount, syncs);
  await log.sync();
  t.is(log.syncCount, syncs, 'sync with nothing new to write is free');
  log.remove(4, 5, 6);
  const p3 = log.add(4, 5, 6);
  t.true(p3 instanceof Promise, 'removed then added again: must be made durable again');
  await p3;
  t.is(log.add(4, 5, 6), undefined);
  await log.close();
});

test('1000 concurrent adds share few fdatasyncs (group commit)', async (t) => {
  const path = join(await tempDir(t), 'missed.log');
  const log = await MissedLog.open(path);
  const before = log.syncCount;
  const ps: Array<Promise<void> | undefined> = [];
  for (let i = 0; i < 500; i++) ps.push(log.add(i % 3, 1, i));
  // And 500 more arriving over later ticks, while syncs are running.
  for (let i = 500; i < 1000; i++) {
    ps.push(log.add(i % 3, 1, i));
    if (i % 50 === 0) await new Promise((r) => setImmediate(r));
  }
  t.true(ps.every((p) => p instanceof Promise));
  await Promise.all(ps);
  const syncs = log.syncCount - before;
  t.log(`1000 adds: ${syncs} fdatasyncs`);
  t.true(syncs >= 1);
  t.true(syncs <= 40, `${syncs} fdatasyncs`);
  t.is(log.size, 1000);
  await log.close();
  t.is(statSync(path).size, 1000 * REC);
  const again = await MissedLog.open(path);
  t.is(again.size, 1000);
  for (let i = 0; i < 1000; i++) t.true(again.has(i % 3, 1, i));
  await again.close();
});

test('torn tail: garbage bytes or a half record are ignored and truncated, later adds replay', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'missed.log');
  const a = await MissedLog.open(path);
  for (let e = 0; e < 10; e++) await a.add(1, 1, e);
  await a.close();
  appendFileSync(path, Buffer.from([1, 0, 1, 0, 1, 0, 0]));
  t.is(statSync(path).size, 10 * REC + 7);

  const b = await MissedLog.open(path);
  t.is(b.size, 10);
  for (let e = 0; e < 10; e++) t.true(b.has(1, 1, e));
  t.is(statSync(path).size, 10 * REC, 'torn bytes truncated away');
  await b.add(2, 2, 2);
  b.remove(1, 1, 0);
  await b.close();

  const c = await MissedLog.open(path);
  t.true(c.has(2, 2, 2));
  t.false(c.has(1, 1, 0));
  t.is(c.size, 10);
  await c.add(3, 3, 3);
  await c.close();

  // Cut the last record (the add of 3/3/3) in half.
  const size = statSync(path).size;
  truncateSync(path, size - REC / 2);
  const d = await MissedLog.open(path);
  t.false(d.has(3, 3, 3));
  t.true(d.has(2, 2, 2));
  t.is(d.size, 10);
  t.is(statSync(path).size, size - REC);
  await d.add(4, 4, 4);
  await d.close();
  const e = await MissedLog.open(path);
  t.true(e.has(4, 4, 4));
  t.is(e.size, 11);
  await e.close();

  // A whole record of garbage (bad checksum) at the tail, and one of zeros.
  appendFileSync(path, Buffer.alloc(REC, 0x5a));
  appendFileSync(path, Buffer.alloc(REC));
  const f = await MissedLog.open(path);
  t.is(f.size, 11);
  await f.add(5, 5, 5);
  await f.close();
  const g = await MissedLog.open(path);
  t.is(g.size, 12);
  t.true(g.has(5, 5, 5));
  await g.close();
});

test('a corrupt record before good ones is skipped, the rest kept, and the file rewritten', async (t) => {
  const path = join(await tempDir(t), 'missed.log');
  const a = await MissedLog.open(path);
  for (let e = 0; e < 6; e++) await a.add(9, 9, e);
  await a.close();
  const bytes = readFileSync(path);
  bytes[2 * REC + 8] ^= 0xff; // the add of extent 2
  writeFileSync(path, bytes);
  const b = await MissedLog.open(path);
  t.false(b.has(9, 9, 2));
  t.is(b.size, 5);
  t.is(statSync(path).size, 5 * REC, 'rewritten with the live set');
  await b.close();
  const c = await MissedLog.open(path);
  t.deepEqual(sorted(c.forNode(9)), sorted([[9, 0], [9, 1], [9, 3], [9, 4], [9, 5]]));
  await c.close();
});

test('compaction: the file shrinks after many add/remove cycles, the live set survives', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'missed.log');
  const log = await MissedLog.open(path);
  for (let e = 0; e < 20; e++) await log.add(7, 100, e); // the live set
  let maxSize = 0;
  let shrank = false;
  for (let round = 0; round < 12; round++) {
    const ps: Array<Promise<void> | undefined> = [];
    for (let i = 0; i < 500; i++) ps.push(log.add(round % 5, round, i));
    await Promise.all(ps);
    for (let i = 0; i < 500; i++) log.remove(round % 5, round, i);
    await log.sync();
    await log.sync(); // also waits for a compaction started after the first
    const size = statSync(path).size;
    if (size < maxSize) shrank = true;
    maxSize = Math.max(maxSize, size);
  }
  t.log(`max file ${maxSize} bytes for ${12 * 1000 + 20} records written, now ${statSync(path).size}`);
  t.true(shrank, 'the file shrank');
  t.true(maxSize <= (4096 + 1000) * REC, `file grew to ${maxSize} bytes`);
  t.is(log.size, 20);
  t.false(statSync(path).size > (4096 + 1000) * REC);
  await log.add(8, 8, 8);
  await log.close();
  const again = await MissedLog.open(path);
  t.is(again.size, 21);
  t.deepEqual(sorted(again.forNode(7)), sorted(Array.from({ length: 20 }, (_, e) => [100, e])));
  t.true(again.has(8, 8, 8));
  t.is(again.forNode(0).length, 0);
  await again.close();
  t.false(statSync(path).size > 8192 * REC);
});

test('the file format: 16-byte records with a crc32c; a mostly dead file is compacted on open', async (t) => {
  const path = join(await tempDir(t), 'missed.log');
  // Written by hand, as the format documents it.
  const rec = (kind: number, node: number, volume: number, extent: number): Buffer => {
    const b = Buffer.alloc(REC);
    b[0] = kind;
    b.writeUInt16LE(node, 2);
    b.writeUInt32LE(volume, 4);
    b.writeUInt32LE(extent, 8);
    b.writeUInt32LE(crc32c(b.subarray(0, 12)) >>> 0, 12);
    return b;
  };
  const parts: Buffer[] = [];
  for (let e = 0; e < 3000; e++) parts.push(rec(1, 1, 1, e));
  for (let e = 0; e < 3000; e++) parts.push(rec(2, 1, 1, e));
  parts.push(rec(1, 2, 2, 2), rec(1, 3, 0xfffffffe, 5), rec(2, 3, 0xfffffffe, 5), rec(1, 3, 0xfffffffe, 5));
  writeFileSync(path, Buffer.concat(parts));
  const b = await MissedLog.open(path);
  t.deepEqual(sorted(b.all()), sorted([{ node: 2, volume: 2, extent: 2 }, { node: 3, volume: 0xfffffffe, extent: 5 }]));
  t.is(statSync(path).size, 2 * REC, 'compacted on open');
  await b.add(4, 4, 4);
  await b.close();
  const bytes = readFileSync(path);
  t.is(bytes.length, 3 * REC);
  t.deepEqual(bytes.subarray(2 * REC), rec(1, 4, 4, 4), 'an add is appended as documented');
  const c = await MissedLog.open(path);
  t.is(c.size, 3);
  await c.close();
});

test('SIGKILL mid-workload: every acknowledged add is present after reopen', async (t) => {
  t.timeout(5 * 60_000);
  const dir = await tempDir(t);
  const path = join(dir, 'missed.log');
  const child = new URL('./missed-log-child.ts', import.meta.url).pathname;
  const mustHave = new Map<string, [number, number, number]>();
  const issuedBelow: number[] = []; // per round: extents of that round are in [base, next base)
  let acked = 0;
  const rounds = 5;
  for (let round = 0; round < rounds; round++) {
    const journal = join(dir, `journal-${round}.txt`);
    writeFileSync(journal, '');
    const base = round * 10_000_000;
    const proc = spawn(process.execPath, ['--import', 'tsx', child, path, journal, String(base), String(round + 1)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<void>((r) => proc.on('exit', () => r()));
    const t0 = Date.now();
    while (!readFileSync(journal, 'utf8').startsWith('R')) {
      if (proc.exitCode !== null) t.fail(`child exited early: ${stderr}`);
      if (Date.now() - t0 > 60_000) t.fail('child did not start');
      await new Promise((r) => setTimeout(r, 10));
    }
    await new Promise((r) => setTimeout(r, 150 + round * 150));
    proc.kill('SIGKILL');
    await exited;
    t.is(stderr.replace(/.*ExperimentalWarning.*\n?/g, ''), '', 'child wrote to stderr');
    issuedBelow.push(base);

    for (const line of readFileSync(journal, 'utf8').split('\n')) {
      const f = line.split(' ');
      if (f.length !== 4) continue;
      const rec: [number, number, number] = [Number(f[1]), Number(f[2]), Number(f[3])];
      if (f[0] === 'A') {
        acked++;
        mustHave.set(f.slice(1).join(' '), rec);
      } else if (f[0] === 'D') mustHave.delete(f.slice(1).join(' '));
    }
    const log = await MissedLog.open(path);
    for (const [key, [n, v, e]] of mustHave) {
      if (!log.has(n, v, e)) {
        t.fail(`round ${round}: acknowledged record ${key} lost`);
        await log.close();
        return;
      }
    }
    // Nothing that was never issued.
    for (const { node, volume, extent } of log.all()) {
      if (node !== extent % 7 || volume !== extent % 3 || extent >= base + 10_000_000) {
        t.fail(`round ${round}: unexpected record ${node} ${volume} ${extent}`);
        await log.close();
        return;
      }
    }
    t.log(`round ${round}: ${mustHave.size} must be present, ${log.size} present, file ${statSync(path).size} bytes`);
    await log.close();
  }
  t.log(`${rounds} kills, ${acked} adds acknowledged`);
  t.true(acked > rounds * 50, 'children did real work');
  t.pass();
});
