/**
 * adoptWithReadBuffer (src/net/read-buffer.ts) on real loopback TCP: an accepted socket's
 * reads go through one reused buffer, every byte arrives in order, 'end' and 'close' fire,
 * writes work, pause() stops the callbacks, and the server's connection count stays right
 * (server.close() completes once the adopted socket is gone).
 */
import test from 'ava';
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { adoptWithReadBuffer } from '../../src/net/index.ts';

test('an adopted socket reads every byte through one reused buffer; end, close, writes, pause and the server count behave', async (t) => {
  const buffers = new Set<ArrayBufferLike>();
  const hash = createHash('sha256');
  let got = 0;
  let adopted: Socket | null = null;
  let gotEnd = false;
  const server = createServer({ pauseOnConnect: true }, (accepted) => {
    adopted = adoptWithReadBuffer(accepted, (c) => {
      buffers.add(c.buffer);
      hash.update(c);
      got += c.length;
    }, 64 * 1024);
    t.truthy(adopted);
    adopted!.on('end', () => {
      gotEnd = true;
      adopted!.end('bye');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await once(client, 'connect');
  const data = randomBytes(32 * 1024 * 1024);
  const reply: Buffer[] = [];
  client.on('data', (c: Buffer) => reply.push(c));
  // Paused: nothing is delivered until resume().
  while (!adopted) await new Promise((r) => setTimeout(r, 5));
  (adopted as Socket).pause();
  client.write(data.subarray(0, 1024 * 1024));
  await new Promise((r) => setTimeout(r, 200));
  t.is(got, 0, 'no callback while paused');
  (adopted as Socket).resume();
  client.end(data.subarray(1024 * 1024));
  await once(client, 'close');
  t.true(gotEnd, "'end' reached the adopted socket");
  t.is(got, data.length);
  t.is(hash.digest('hex'), createHash('sha256').update(data).digest('hex'), 'bytes in order');
  t.is(buffers.size, 1, 'one buffer for every read');
  t.is(Buffer.concat(reply).toString(), 'bye', 'writes go out on the adopted socket');
  await new Promise<void>((r, j) => server.close((e) => (e ? j(e) : r())));
  t.pass('server.close() completed: the connection count went back to 0');
});
