import test from 'ava';
import xxhash from 'xxhash-wasm';
import { hash3, hashBytes } from '../../placement/index.ts';
import { detExp, detLn, lnUnit } from '../../placement/detmath.ts';

const wasm = await xxhash();

function le12(a: number, b: number, c: number): Uint8Array {
  const buf = new Uint8Array(12);
  const v = new DataView(buf.buffer);
  v.setUint32(0, a >>> 0, true);
  v.setUint32(4, b >>> 0, true);
  v.setUint32(8, c >>> 0, true);
  return buf;
}

test('the inlined draw hash is xxHash32 of the 12-byte (x, item, r), bit for bit with xxhash-wasm', (t) => {
  let s = 0x9e3779b9;
  const next = (): number => (s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0);
  const edge = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, -1, -4098, -(2 ** 30)];
  for (let i = 0; i < 20000; i++) {
    const a = i < 512 ? edge[i % 8] : next();
    const b = i < 512 ? edge[(i >> 3) % 8] : next() | 0;
    const c = i < 512 ? edge[(i >> 6) % 8] : next();
    const expected = wasm.h32Raw(le12(a, b, c), 0) >>> 0;
    if (hash3(a, b, c) !== expected) t.fail(`hash3(${a}, ${b}, ${c}) = ${hash3(a, b, c)}, xxhash-wasm says ${expected}`);
  }
  t.is(hash3(1, 2, 3), wasm.h32Raw(le12(1, 2, 3), 0) >>> 0);
  t.is(hashBytes(le12(7, 8, 9)), hash3(7, 8, 9));
  t.is(hashBytes(new TextEncoder().encode('vol1/0'), 5), wasm.h32Raw(new TextEncoder().encode('vol1/0'), 5) >>> 0);
});

test('deterministic ln and exp agree with Math.log / Math.exp to ~1e-15', (t) => {
  let worst = 0;
  for (let i = 0; i < 100000; i++) {
    const h = (Math.imul(i, 2654435761) >>> 0) ^ (i << 7);
    const u = (h >>> 0) + 1;
    const d = Math.abs(lnUnit(h >>> 0) - Math.log(u / 4294967296));
    worst = Math.max(worst, d);
  }
  for (const h of [0, 1, 2, 255, 256, 65535, 4294967294, 4294967295]) worst = Math.max(worst, Math.abs(lnUnit(h) - Math.log((h + 1) / 4294967296)));
  t.true(worst < 5e-15, `lnUnit max error ${worst}`);
  t.is(lnUnit(4294967295), 0);
  for (const x of [1e-300, 3e-310, 0.001, 0.5, 1, 1.5, 2, Math.E, 1e10, 1.7e308]) t.true(Math.abs(detLn(x) - Math.log(x)) <= 1e-15 * Math.max(1, Math.abs(Math.log(x))), `detLn(${x})`);
  for (const x of [-745, -700, -30, -1, -1e-9, 0, 1e-9, 0.5, 1, 10, 700]) t.true(Math.abs(detExp(x) - Math.exp(x)) <= 2e-15 * Math.exp(x) + 1e-320, `detExp(${x}) = ${detExp(x)} vs ${Math.exp(x)}`);
  t.is(detExp(-800), 0);
  t.is(detExp(800), Infinity);
  t.true(Number.isNaN(detLn(-1)));
  t.is(detLn(0), -Infinity);
});
