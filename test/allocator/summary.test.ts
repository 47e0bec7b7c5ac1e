/**
 * The record summary encoding (allocator/summary.ts): random runs round-trip through one
 * header, full headers refuse more, and malformed bodies are refused rather than decoded.
 */
import test from 'ava';
import { HEADER_FIXED, PAGE } from '../../allocator/layout.ts';
import { MIN_PAGES_PER_HEADER, RunTable, RunWriter } from '../../allocator/summary.ts';
import { rng } from './helpers.ts';

interface Run { trim: boolean; key: number; first: number; count: number; version: number; crcs: number[] }

test('random runs round-trip, including extreme keys, pages and versions', (t) => {
  const rand = rng(17);
  const pick = (xs: number[]): number => xs[Math.floor(rand() * xs.length)];
  for (let round = 0; round < 300; round++) {
    const h = Buffer.alloc(PAGE);
    const w = new RunWriter(h);
    const want: Run[] = [];
    for (;;) {
      const key = pick([0, 1, 7, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER, Math.floor(rand() * 2 ** 53)]);
      const version = pick([0, 1, 2 ** 40, Number.MAX_SAFE_INTEGER, Math.floor(rand() * 2 ** 53)]);
      if (rand() < 0.2) {
        const first = pick([0, 5, 0x7fffffff - 10, Math.floor(rand() * 2 ** 30)]);
        const count = Math.min(pick([1, 3, 2 ** 20, 2 ** 31]), 0x80000000 - first);
        if (!w.addTrim(key, first, count, version)) break;
        want.push({ trim: true, key, first, count, version, crcs: [] });
      } else {
        const first = pick([0, 9, 0x7fffffff - 40, Math.floor(rand() * 2 ** 31 - 64)]);
        const n = 1 + Math.floor(rand() * 30);
        let added = 0;
        const crcs: number[] = [];
        for (; added < n; added++) {
          const crc = Math.floor(rand() * 2 ** 32);
          if (!w.addPage(key, first + added, version, crc)) break;
          crcs.push(crc);
        }
        if (added > 0) {
          // Consecutive pages of one key and version extend the previous run.
          const last = want[want.length - 1];
          if (last && !last.trim && last.key === key && last.version === version && last.first + last.count === first) {
            last.count += added;
            last.crcs.push(...crcs);
          } else want.push({ trim: false, key, first, count: added, version, crcs });
        }
        if (added < n) break;
      }
    }
    const body = w.finish();
    t.true(body <= PAGE - HEADER_FIXED - 4);
    const dataPages = want.reduce((s, r) => s + (r.trim ? 0 : r.count), 0);
    t.is(w.dataPages, dataPages);
    const rt = new RunTable();
    t.true(rt.decode(h, w.runs, body, dataPages), `round ${round}`);
    t.is(rt.n, want.length);
    let block = 0;
    for (let i = 0; i < rt.n; i++) {
      const r = want[i];
      t.deepEqual([rt.trim[i] === 1, rt.key[i], rt.first[i], rt.count[i], rt.version[i]], [r.trim, r.key, r.first, r.count, r.version]);
      if (!r.trim) {
        t.is(rt.block[i], block);
        block += r.count;
        for (let j = 0; j < r.count; j++) t.is(h.readUInt32LE(rt.crcAt[i] + 4 * j), r.crcs[j]);
      }
    }
    // A wrong data-block count, or a body cut short or overlong, is refused.
    t.false(rt.decode(h, w.runs, body, dataPages + 1));
    t.false(rt.decode(h, w.runs + 1, body, dataPages));
    if (body > 1) t.false(rt.decode(h, w.runs, body - 1, dataPages));
  }
});

test('one header holds a segment of scattered pages; sequential pages cost 4 bytes each', (t) => {
  const h = Buffer.alloc(PAGE);
  let w = new RunWriter(h);
  // 255 scattered 4 KiB pages of a cleaner copy: keys in order, versions all over.
  const rand = rng(3);
  let key = 2 ** 32;
  for (let i = 0; i < 255; i++) {
    key += Math.floor(rand() * 4);
    t.true(w.addPage(key, Math.floor(rand() * 256), Date.now() * 1024 - Math.floor(rand() * 3.6e9), 0xdeadbeef));
  }
  t.true(w.finish() < PAGE - HEADER_FIXED - 4);
  w = new RunWriter(h);
  let pages = 0;
  while (w.addPage(9, pages, 1, 1)) pages++;
  t.true(pages > 1000, `${pages} sequential pages`);
  t.true(MIN_PAGES_PER_HEADER >= 150);
});

test('malformed bodies are refused', (t) => {
  const h = Buffer.alloc(PAGE);
  const w = new RunWriter(h);
  t.true(w.addPage(5, 1, 10, 123));
  t.true(w.addTrim(3, 0, 8, 4));
  const body = w.finish();
  const rt = new RunTable();
  t.true(rt.decode(h, 2, body, 1));
  // A varint running past the body, a zero count, a key beyond 2^53.
  const bad1 = Buffer.from(h);
  bad1[HEADER_FIXED] = 0xff;
  bad1[HEADER_FIXED + 1] = 0xff;
  t.false(rt.decode(bad1, 2, body, 1));
  const bad2 = Buffer.from(h);
  bad2[HEADER_FIXED] = 0x00;
  t.false(rt.decode(bad2, 2, body, 1));
  const bad3 = Buffer.alloc(PAGE);
  let o = HEADER_FIXED;
  bad3[o++] = 8; // one data page
  for (let i = 0; i < 8; i++) bad3[o++] = 0xff;
  bad3[o++] = 0x7f;
  bad3[o++] = 0;
  bad3[o++] = 0;
  o += 4;
  t.false(rt.decode(bad3, 1, o - HEADER_FIXED, 1));
});
