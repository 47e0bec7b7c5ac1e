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
