/**
 * The loop poller (src/net/loop-poll.ts): CAIRN_POLL_US and CAIRN_NODE_POLL_US are checked
 * (a bad value is one clear error, from the function and from `cairn up`); after expect()
 * the loop keeps turning for the window and then sleeps; nothing polls above
 * POLL_MAX_INFLIGHT requests in flight, or while a replaced gate is closed; and a real WireClient over a TCP socket keeps that in-flight count exact through
 * replies, timeouts and a dropped connection.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_NODE_POLL_US, LoopPoller, NODE_POLL_MIN_CPUS, POLL_MAX_INFLIGHT, defaultNodePollUs, loopPoll, pollFromEnv } from '../../src/net/index.ts';
import { FrameReader, Op, REQ_HEADER, Status, WireClient, decodeRequest, encodeReply } from '../../src/wire/index.ts';

/** Resolves once `cond()` holds (checked every ms); rejects after `ms`. */
async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 1));
  }
}

test('CAIRN_POLL_US: default, off, a window, and one clear error for anything else', (t) => {
  t.is(pollFromEnv({}), 200);
  t.is(loopPoll.windowUs, 200);
  t.is(pollFromEnv({ CAIRN_POLL_US: '' }), 200);
  t.is(pollFromEnv({ CAIRN_POLL_US: '50' }), 50);
  t.is(pollFromEnv({ CAIRN_POLL_US: '0' }), 0);
  t.is(loopPoll.windowUs, 0);
  for (const bad of ['abc', '-5', '1.5', '20000', 'on']) {
    const e = t.throws(() => pollFromEnv({ CAIRN_POLL_US: bad }));
    t.is(e?.message, `CAIRN_POLL_US must be a number of microseconds from 0 to 10000 (got "${bad}")`);
  }
  t.is(loopPoll.windowUs, 0, 'a bad value changes nothing');
  t.is(pollFromEnv({}, 'CAIRN_NODE_POLL_US', DEFAULT_NODE_POLL_US), DEFAULT_NODE_POLL_US, "a storage node's default");
  t.is(pollFromEnv({ CAIRN_POLL_US: '7', CAIRN_NODE_POLL_US: '300' }, 'CAIRN_NODE_POLL_US', DEFAULT_NODE_POLL_US), 300, 'each reads its own variable');
  t.is(t.throws(() => pollFromEnv({ CAIRN_NODE_POLL_US: 'x' }, 'CAIRN_NODE_POLL_US', DEFAULT_NODE_POLL_US))?.message, 'CAIRN_NODE_POLL_US must be a number of microseconds from 0 to 10000 (got "x")');
  pollFromEnv({ CAIRN_POLL_US: '0' });
  t.throws(() => new LoopPoller().configure(-1), { instanceOf: RangeError });
  // A node's default: off on a 2-CPU machine (two pollers and the host would share 2 CPUs), on from 3.
  t.is(NODE_POLL_MIN_CPUS, 3);
  t.is(defaultNodePollUs(1), 0);
  t.is(defaultNodePollUs(2), 0);
  t.is(defaultNodePollUs(3), DEFAULT_NODE_POLL_US);
  t.is(defaultNodePollUs(64), DEFAULT_NODE_POLL_US);
  t.is(pollFromEnv({ CAIRN_NODE_POLL_US: '1000' }, 'CAIRN_NODE_POLL_US', defaultNodePollUs(2)), 1000, 'the variable wins over the default');
  pollFromEnv({ CAIRN_POLL_US: '0' });
});

test('cairn up with a bad CAIRN_POLL_US exits 2 with one line', async (t) => {
  const cairn = join(resolve(import.meta.dirname, '..', '..'), 'bin', 'cairn.js');
  const e = await t.throwsAsync(promisify(execFile)(process.execPath, [cairn, 'up', '--data-dir', '/nonexistent/never-made'], { env: { ...process.env, CAIRN_POLL_US: 'fast', OCLIF_COLUMNS: '200' }, timeout: 60000 })) as Error & { code: number; stderr: string };
  t.is(e.code, 2);
  t.regex(e.stderr, /CAIRN_POLL_US must be a number of microseconds from 0 to 10000 \(got "fast"\)/);
  t.is(e.stderr.trim().split('\n').filter((l) => l.trim()).length, 1, e.stderr);
});

test('after expect() the loop turns for the window, then sleeps; off and deep queues do not poll', async (t) => {
  const p = new LoopPoller();
  p.expect();
  await new Promise((r) => setImmediate(r));
  t.is(p.turns, 0, 'off by default');
  p.configure(5000);
  p.expect();
  t.true(p.active, 'turning from the write on');
  await until(() => !p.active);
  t.true(p.turns > 0, 'the loop turned');
  const after = p.turns;
  await new Promise((r) => setTimeout(r, 20));
  t.is(p.turns, after, 'no turns once the window has passed');
  p.inflight = POLL_MAX_INFLIGHT + 1;
  p.expect();
  await new Promise((r) => setImmediate(r));
  t.false(p.active, 'too many requests in flight: no polling');
  p.inflight = 0;
  p.expect();
  t.true(p.active);
  p.inflight = POLL_MAX_INFLIGHT + 1;
  await until(() => !p.active);
  t.pass('a queue that deepens stops the polling');
});

test('a process may replace the gate (a storage node does): it decides when polling starts and when it stops', async (t) => {
  const p = new LoopPoller();
  p.configure(5000);
  let open = false;
  p.gate = () => open;
  p.expect();
  t.false(p.active, 'a closed gate starts nothing');
  open = true;
  p.inflight = POLL_MAX_INFLIGHT + 5;
  p.expect();
  t.true(p.active, 'the replaced gate, not the in-flight count, decides');
  open = false;
  await until(() => !p.active);
  t.pass('closing the gate stops a running poll');
});

test('a WireClient keeps the in-flight count exact: replies, timeouts, a dropped connection', async (t) => {
  const sockets: Socket[] = [];
  let answer = true;
  const server = createServer((s) => {
    sockets.push(s);
    const reader = new FrameReader(REQ_HEADER, 1 << 20, (f) => {
      const { h } = decodeRequest(f);
      if (h.op === Op.Hello || answer) s.write(encodeReply(h.op, Status.Ok, h.id, 0, 0, 0));
    });
    s.on('data', (d) => reader.push(d));
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const base = loopPoll.inflight;
  const c = new WireClient({ host: '127.0.0.1', port, token: 'x', timeoutMs: 300 });
  await c.connect();
  t.is(c.transport, 'tcp', 'no local socket served there: TCP');
  t.is(loopPoll.inflight, base, 'Hello answered');
  const req = { op: Op.Read, flags: 0, epoch: 1, volume: 1, extent: 0, partition: 0, firstPage: 0, pages: 1, lease: 0, version: 0, members: [] };
  const three = [c.request(req), c.request(req), c.request(req)];
  t.is(loopPoll.inflight, base + 3);
  await Promise.all(three);
  t.is(loopPoll.inflight, base, 'replies');
  answer = false;
  const late = c.request(req);
  t.is(loopPoll.inflight, base + 1);
  await t.throwsAsync(late, { message: /timed out/ });
  t.is(loopPoll.inflight, base, 'a timeout');
  const lost = [c.request(req), c.request(req)];
  t.is(loopPoll.inflight, base + 2);
  for (const s of sockets) s.destroy();
  for (const l of lost) await t.throwsAsync(l);
  t.is(loopPoll.inflight, base, 'a dropped connection');
  server.close();
});
