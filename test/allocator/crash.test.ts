/**
 * Crash consistency: a child process runs a random write/trim/flush workload on a
 * partition and is SIGKILLed at a random moment, many rounds on the same device file.
 * After each kill: every page whose last write (or trim) was followed by a completed
 * flush reads back exactly; every other page reads as one of the versions written to it
 * since its last durable state, or that durable state — never anything else, and never a
 * checksum error. Some rounds are not checked, so the next child recovers on top of an
 * unverified crash; at the end two opens with no write between them read the same bytes.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Allocator, PAGE } from '../../allocator/index.ts';
import { pageData, rng, SLOW, tempDevice } from './helpers.ts';

const ROUNDS = SLOW ? 80 : 14;
const KEYS = 3;
const PAGES = 200;
const child = new URL('./crash-child.ts', import.meta.url).pathname;

/** Possible contents of a page: versions whose data it may hold (0 = zeros). */
type Allowed = Set<number>;

test(`SIGKILL at random moments, ${ROUNDS} rounds: flushed data exact, the rest old-or-new`, async (t) => {
  t.timeout(10 * 60_000);
  const dev = tempDevice();
  t.teardown(dev.cleanup);
  const rand = rng(2024);
  const allowed = new Map<string, Allowed>();
  const get = (k: number, p: number): Allowed => allowed.get(`${k}:${p}`) ?? new Set([0]);
  let nextVersion = 1;
  let checkedRounds = 0;
  let opsTotal = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const journal = join(dev.dir, `journal-${round}.txt`);
    writeFileSync(journal, '');
    const proc = spawn(process.execPath, ['--import', 'tsx', child, dev.path, journal, String(nextVersion), String(round + 1), String(KEYS), String(PAGES)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
    // Wait for recovery to finish, then let it run for a random while.
    const t0 = Date.now();
    while (!readFileSync(journal, 'utf8').startsWith('R')) {
      if (proc.exitCode !== null) t.fail(`child exited early: ${stderr}`);
      if (Date.now() - t0 > 60_000) t.fail('child did not start');
      await new Promise((r) => setTimeout(r, 10));
    }
    await new Promise((r) => setTimeout(r, 30 + rand() * 400));
    proc.kill('SIGKILL');
    await exited;
    t.is(stderr.replace(/.*ExperimentalWarning.*\n?/g, ''), '', 'child wrote to stderr');

    // Replay the journal into the model.
    const lines = readFileSync(journal, 'utf8').split('\n').filter((l) => l);
    type Op = { kind: string; key: number; first: number; count: number; version: number };
    const ops: Op[] = [];
    const flushIssuedAfter = new Map<number, number>(); // fid -> number of ops issued before it
    let durableOps = 0; // ops [0, durableOps) are covered by a completed flush
    for (const l of lines) {
      const f = l.split(' ');
      if (f[0] === 'W' || f[0] === 'T') ops.push({ kind: f[0], key: Number(f[2]), first: Number(f[3]), count: Number(f[4]), version: Number(f[5]) });
      else if (f[0] === 'F') flushIssuedAfter.set(Number(f[1]), ops.length);
      else if (f[0] === 'D') durableOps = Math.max(durableOps, flushIssuedAfter.get(Number(f[1]))!);
    }
    opsTotal += ops.length;
    for (const op of ops) nextVersion = Math.max(nextVersion, op.version + 1);
    // Per page: the last durable op, then everything after it may or may not have survived.
    const touched = new Map<string, { durable: number | null; later: number[] }>();
    ops.forEach((op, i) => {
      for (let p = op.first; p < op.first + op.count; p++) {
        const id = `${op.key}:${p}`;
        let e = touched.get(id);
        if (!e) touched.set(id, (e = { durable: null, later: [] }));
        const content = op.kind === 'W' ? op.version : 0;
        if (i < durableOps) {
          e.durable = content;
          e.later = [];
        } else e.later.push(content);
      }
    });
    for (const [id, e] of touched) {
      const [k, p] = id.split(':').map(Number);
      const next: Allowed = e.durable !== null ? new Set([e.durable]) : new Set(get(k, p));
      for (const v of e.later) next.add(v);
      allowed.set(id, next);
    }

    // Check every page, except in some rounds (the next child then recovers on top).
    if (round === ROUNDS - 1 || rand() < 0.6) {
      checkedRounds++;
      const a = await Allocator.open({ path: dev.path, offset: 64 * 1024, size: 4 * 1024 * 1024 });
      for (let k = 0; k < KEYS; k++) {
        const key = k * 2 ** 32 + 7;
        const buf = await a.read(key, 0, PAGES);
        for (let p = 0; p < PAGES; p++) {
          const got = buf.subarray(p * PAGE, (p + 1) * PAGE);
          const ok = get(key, p);
          let seen = -1;
          if (got.equals(Buffer.alloc(PAGE))) seen = 0;
          else for (const v of ok) if (v && got.equals(pageData(key, p, v))) seen = v;
          if (!ok.has(seen)) {
            t.fail(`round ${round}: key ${key} page ${p} holds ${seen === -1 ? 'garbage' : 'version ' + seen}, allowed ${[...ok].join(',')}`);
            return;
          }
          allowed.set(`${key}:${p}`, new Set([seen]));
        }
      }
      await a.close();
    }
  }
  // Two opens with no write in between read the same bytes.
  const snap: Buffer[] = [];
  for (let i = 0; i < 2; i++) {
    const a = await Allocator.open({ path: dev.path, offset: 64 * 1024, size: 4 * 1024 * 1024 });
    snap.push(Buffer.concat(await Promise.all(Array.from({ length: KEYS }, (_, k) => a.read(k * 2 ** 32 + 7, 0, PAGES)))));
    await a.close();
  }
  t.true(snap[0].equals(snap[1]));
  t.log(`${ROUNDS} kills, ${checkedRounds} checked, ${opsTotal} operations journaled`);
  t.true(opsTotal > ROUNDS * 20, 'children did real work');
});
