import test from 'ava';
import { randomBytes } from 'node:crypto';
import { FrameReader, ProtocolError } from '../../src/wire/index.ts';

function frame(len: number): Buffer {
  const b = randomBytes(len);
  b.writeUInt32LE(len, 0);
  return b;
}

test('frames come out whole whatever the chunking', (t) => {
  const frames = [frame(24), frame(5000), frame(24), frame(70000), frame(30)];
  const stream = Buffer.concat(frames);
  for (const cut of [1, 3, 4, 7, 100, 4096, 65536, stream.length]) {
    const got: Buffer[] = [];
    const r = new FrameReader(24, 1 << 20, (f) => got.push(Buffer.from(f)));
    for (let i = 0; i < stream.length; i += cut) r.push(stream.subarray(i, i + cut));
    t.is(got.length, frames.length, `cut ${cut}`);
    got.forEach((g, i) => t.true(g.equals(frames[i]), `cut ${cut} frame ${i}`));
  }
});

test('a length outside the limits is a protocol error', (t) => {
  const r = new FrameReader(24, 1024, () => t.fail('no frame expected'));
  const tooSmall = Buffer.alloc(8);
  tooSmall.writeUInt32LE(8, 0);
  t.throws(() => r.push(tooSmall), { instanceOf: ProtocolError });
  const r2 = new FrameReader(24, 1024, () => t.fail('no frame expected'));
  const tooBig = Buffer.alloc(4);
  tooBig.writeUInt32LE(4096, 0);
  t.throws(() => r2.push(tooBig), { instanceOf: ProtocolError });
});

test('transient chunks: frames handed out are copies, whole whatever the chunking', (t) => {
  const frames = [frame(24), frame(5000), frame(24), frame(70000), frame(30)];
  const stream = Buffer.concat(frames);
  for (const cut of [1, 3, 4, 7, 100, 4096, 65536, stream.length]) {
    const got: Buffer[] = [];
    const r = new FrameReader(24, 1 << 20, (f) => got.push(f), { transient: true });
    const scratch = Buffer.alloc(cut);
    for (let i = 0; i < stream.length; i += cut) {
      const n = stream.copy(scratch, 0, i, i + cut);
      r.push(scratch.subarray(0, n));
      scratch.fill(0xee); // the caller reuses its buffer at once
    }
    t.is(got.length, frames.length, `cut ${cut}`);
    got.forEach((g, i) => t.true(g.equals(frames[i]), `cut ${cut} frame ${i}`));
    t.false(r.midFrame);
  }
});

test('placed payloads land in the placer\'s buffer; frames it declines come out whole', (t) => {
  // Frames whose byte 5 is 1 ask for placement; the placer gives a view into one big buffer.
  const frames = [frame(24), frame(4096 + 24), frame(70000), frame(24 + 65536), frame(24)];
  // Random contents: byte 5 of the other frames must not be 1 by chance (1 run in ~85 was).
  for (const f of frames) f[5] = 0;
  frames[1][5] = 1;
  frames[3][5] = 1;
  const stream = Buffer.concat(frames);
  for (const transient of [false, true]) {
    for (const cut of [1, 5, 24, 25, 4096, 65536, stream.length]) {
      const big = Buffer.alloc(4096 + 65536);
      const views = [big.subarray(0, 4096), big.subarray(4096)];
      const asked: number[] = [];
      const got: Array<[Buffer, Buffer | undefined]> = [];
      const r = new FrameReader(24, 1 << 20, (f, placed) => got.push([Buffer.from(f), placed]), {
        transient,
        place: (head, len) => {
          asked.push(len);
          if (head[5] !== 1) return undefined;
          return len === 24 + 4096 ? views[0] : views[1];
        },
      });
      for (let i = 0; i < stream.length; i += cut) r.push(Buffer.from(stream.subarray(i, i + cut)));
      const what = `transient ${transient} cut ${cut}`;
      t.is(got.length, frames.length, what);
      for (let i = 0; i < frames.length; i++) {
        const [f, placed] = got[i];
        // Without `transient`, a frame inside one chunk comes out as a view, unplaced.
        if (frames[i][5] === 1 && (transient || placed)) {
          t.truthy(placed, `${what} frame ${i} placed`);
          t.true(f.equals(frames[i].subarray(0, 24)), `${what} frame ${i}: the header comes with it`);
          t.true(placed!.equals(frames[i].subarray(24)), `${what} frame ${i}: payload in place`);
        } else {
          t.is(placed, undefined);
          t.true(f.equals(frames[i]), `${what} frame ${i}`);
        }
      }
      if (transient) t.true(big.subarray(0, 4096).equals(frames[1].subarray(24)) && big.subarray(4096).equals(frames[3].subarray(24)), what);
      if (transient || cut < 4096) t.true(asked.length >= 2, what);
    }
  }
});

test('a placer giving the wrong size is a caller bug, not silent corruption', (t) => {
  const f = frame(1000);
  const r = new FrameReader(24, 4096, () => t.fail('no frame expected'), { place: () => Buffer.alloc(10) });
  t.throws(() => { r.push(f.subarray(0, 100)); r.push(f.subarray(100)); }, { instanceOf: RangeError });
});
