import test from 'ava';
import { CopySlab } from '../../src/net/index.ts';

test('copies stay intact while the source is reused, across slab boundaries', (t) => {
  const slab = new CopySlab(8192);
  const src = Buffer.alloc(2048);
  const kept: Array<[Buffer, number]> = [];
  for (let i = 0; i < 40; i++) {
    const n = 1 + ((i * 397) % 2000); // odd sizes, so starts need the alignment step
    src.fill(i & 0xff, 0, n);
    kept.push([slab.copy(src.subarray(0, n)), i]);
    src.fill(0xee); // the caller reuses its buffer at once
  }
  for (const [c, i] of kept) {
    t.true(c.every((b) => b === (i & 0xff)), `copy ${i} intact`);
    t.is(c.byteOffset % 8, 0, `copy ${i} starts 8-byte aligned`);
  }
  // Several copies share a slab (that is the point), and none overlaps another.
  const buffers = new Set(kept.map(([c]) => c.buffer));
  t.true(buffers.size < kept.length / 2, `${buffers.size} slabs for ${kept.length} copies`);
  const spans = kept.map(([c]) => [c.buffer, c.byteOffset, c.byteOffset + c.length] as const);
  for (let a = 0; a < spans.length; a++) {
    for (let b = a + 1; b < spans.length; b++) {
      if (spans[a][0] === spans[b][0]) t.true(spans[a][2] <= spans[b][1] || spans[b][2] <= spans[a][1], `copies ${a} and ${b} overlap`);
    }
  }
});

test('a copy larger than a quarter slab gets its own buffer; a slab under 4 KiB is refused', (t) => {
  const slab = new CopySlab(8192);
  const big = Buffer.alloc(3000, 7);
  const c = slab.copy(big);
  t.true(c.equals(big));
  t.is(c.length, 3000);
  t.not(c.buffer, slab.copy(Buffer.alloc(10)).buffer);
  t.throws(() => new CopySlab(1024), { instanceOf: RangeError });
});
