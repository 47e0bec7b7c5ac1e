import test from 'ava';
import { BufferPool } from '../../src/net/index.ts';
import { ForwardingDevice, type BlockDevice } from '../../src/volume/index.ts';

test('the pool hands back what was given, by exact size, within its limits', (t) => {
  const pool = new BufferPool({ minBytes: 1024, perSize: 2, maxBytes: 8192 });
  const a = pool.take(4096);
  const b = pool.take(4096);
  t.not(a, b);
  pool.give(a);
  pool.give(b);
  t.is(pool.keptBytes, 8192);
  pool.give(Buffer.allocUnsafe(4096)); // over maxBytes: dropped
  t.is(pool.keptBytes, 8192);
  const c = pool.take(4096);
  t.true(c === a || c === b, 'a kept buffer is reused');
  t.is(pool.take(2048).length, 2048, 'another size is a fresh buffer');
  const small = pool.take(100);
  pool.give(small);
  t.is(pool.keptBytes, 4096, 'buffers under minBytes are never kept');
  const big = Buffer.allocUnsafe(8192);
  pool.give(big.subarray(0, 4096));
  t.is(pool.keptBytes, 4096, 'a view of a larger buffer is not kept (its owner may still use the rest)');
});

/** A device whose readInto fills with one byte and records the calls. */
function inner(): BlockDevice & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls, size: 1 << 20, blockSize: 4096,
    read: async (o, n) => (calls.push(`read ${o} ${n}`), Buffer.alloc(n, 1)),
    readInto: async (o, into) => void (calls.push(`readInto ${o} ${into.length}`), into.fill(2)),
    write: async () => undefined, flush: async () => undefined, trim: async () => undefined, writeZeroes: async () => undefined,
  };
}

test('a forwarding wrapper offers readInto only when no read can pass around its read()', async (t) => {
  const plain = new ForwardingDevice(inner());
  t.truthy(plain.readInto, 'a wrapper that changes nothing forwards readInto');
  const b = Buffer.alloc(8192);
  await plain.readInto!(0, b);
  t.is(b[0], 2);

  class FailingReads extends ForwardingDevice {
    override read(): Promise<Buffer> {
      return Promise.reject(new Error('injected'));
    }
  }
  t.is(new FailingReads(inner()).readInto, undefined, 'read() overridden, intoOf() not: no readInto, so the frontend calls read()');

  class Counting extends ForwardingDevice {
    n = 0;
    override read(o: number, len: number): Promise<Buffer> {
      this.n++;
      return super.read(o, len);
    }
    protected override intoOf(o: number, into: Buffer): Promise<void> {
      this.n++;
      return super.intoOf(o, into);
    }
  }
  const counting = new Counting(inner());
  await counting.readInto!(4096, b);
  t.is(counting.n, 1, 'both overridden: readInto goes through the wrapper');

  const { readInto: _drop, ...noInto } = inner();
  t.is(new ForwardingDevice(noInto as BlockDevice).readInto, undefined, 'nothing to forward');
});
