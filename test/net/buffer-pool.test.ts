import test from 'ava';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { BufferPool, writeHeld } from '../../src/net/index.ts';
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

/** A connected pair of real TCP sockets on loopback: [client, server side]. */
async function socketPair(): Promise<[Socket, Socket, () => void]> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await once(client, 'connect');
  const peer = await accepted;
  return [client, peer, () => { client.destroy(); peer.destroy(); server.close(); }];
}

test('a lent buffer released while a socket still queues it stays out of the pool until the socket has written it', async (t) => {
  const [client, peer, close] = await socketPair();
  try {
    peer.pause(); // a stopped member: the kernel buffers fill, then the rest waits in the socket
    const pool = new BufferPool();
    const sent: Buffer[] = [];
    const lent: Buffer[] = [];
    // 64 MiB in 1 MiB payloads, written the way WireClient writes a request's pages.
    for (let i = 0; i < 64; i++) {
      const b = pool.lend(1 << 20);
      b.fill(i);
      lent.push(b);
      sent.push(Buffer.from(b));
      writeHeld(client, b.subarray(0, 512 * 1024));
      writeHeld(client, b.subarray(512 * 1024));
    }
    t.true(client.writableLength > 0, 'part of the data waits in the socket');
    for (const b of lent) pool.release(b); // every request acknowledged (as after a degraded write)
    const stuck = lent.filter((b) => BufferPool.held(b));
    t.true(stuck.length > 0, 'buffers still queued are held');
    t.true(BufferPool.heldLoans >= stuck.length);
    const reused = new Set(Array.from({ length: 64 }, () => pool.take(1 << 20)));
    for (const b of stuck) t.false(reused.has(b), 'a held buffer is not handed out again');
    for (const b of reused) b.fill(0xee); // the next requests overwrite whatever they got
    // The peer resumes: it must receive exactly what was written, not the later 0xee bytes.
    let got = 0;
    let bad = -1;
    peer.on('data', (c: Buffer) => {
      for (let i = 0; i < c.length && bad < 0; i += 4096) if (c[i] !== Math.floor((got + i) / (1 << 20))) bad = got + i;
      got += c.length;
    });
    peer.resume();
    const deadline = Date.now() + 20000;
    while (got < 64 << 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    t.is(got, 64 << 20, 'every byte arrived');
    t.is(bad, -1, `byte ${bad} is from a reused buffer`);
    await new Promise((r) => setImmediate(r));
    t.false(stuck.some((b) => BufferPool.held(b)), 'once written, they are back');
    t.true(pool.keptBytes > 0);
  } finally {
    close();
  }
});

test('a held buffer returns when its socket is destroyed with the write still queued; never-released loans are dropped', async (t) => {
  const [client, peer, close] = await socketPair();
  try {
    peer.pause();
    const pool = new BufferPool();
    const lent = Array.from({ length: 48 }, () => pool.lend(1 << 20));
    for (const b of lent) writeHeld(client, b);
    const failed = pool.lend(1 << 20); // a failed request: its owner never releases it
    writeHeld(client, failed);
    for (const b of lent) pool.release(b);
    t.true(lent.some((b) => BufferPool.held(b)));
    client.destroy(); // the connection to a member marked down is dropped
    await once(client, 'close');
    await new Promise((r) => setImmediate(r));
    t.false(lent.some((b) => BufferPool.held(b)), 'every queued write called back');
    const again = new Set(Array.from({ length: 16 }, () => pool.take(1 << 20)));
    t.true(lent.some((b) => again.has(b)), 'released buffers are reused');
    t.false(again.has(failed), 'the unreleased one is not');
  } finally {
    close();
  }
});
