/**
 * Must-show 4: out-of-range requests and unknown commands get NBD error replies, hostile
 * or vanishing clients lose only their own connection, and other clients — including a
 * concurrent fio verify run — keep being served with their data intact.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { cairnUp, tempDataDir, type Up } from '../helpers/cairn-up.ts';
import { CMD, ERR, OPT, RawNbd } from '../helpers/raw-nbd.ts';
import { have, run } from '../helpers/tools.ts';

const GiB = 1024 ** 3;
let up: Up;
let cleanup: () => void;

test.before(async () => {
  const d = tempDataDir();
  cleanup = d.cleanup;
  up = await cairnUp(d.dir);
});

test.after.always(async () => {
  await up?.stop();
  cleanup?.();
});

async function client(structured = true): Promise<RawNbd> {
  const c = await RawNbd.open(up.port);
  const r = await c.go('vol0', structured);
  if (r[r.length - 1].type !== 1) throw new Error('GO failed');
  return c;
}

test('option haggling: LIST, unknown export, STARTTLS refused, unknown option, GO', async (t) => {
  const c = await RawNbd.open(up.port);
  const list = await c.option(OPT.LIST);
  t.is(list[0].type, 2, 'NBD_REP_SERVER');
  t.is(list[0].data.toString('utf8', 4), 'vol0');
  t.is(list[list.length - 1].type, 1, 'NBD_REP_ACK');
  const info = Buffer.alloc(10);
  info.writeUInt32BE(4, 0);
  info.write('nope', 4);
  t.is((await c.option(OPT.INFO, info))[0].type, 0x80000006, 'NBD_REP_ERR_UNKNOWN');
  t.is((await c.option(OPT.STARTTLS))[0].type, 0x80000002, 'NBD_REP_ERR_POLICY');
  t.is((await c.option(99))[0].type, 0x80000001, 'NBD_REP_ERR_UNSUP');
  t.is((await c.option(OPT.INFO, Buffer.from([0, 0, 0, 50])))[0].type, 0x80000003, 'malformed INFO -> NBD_REP_ERR_INVALID');
  const go = await c.go('vol0');
  t.is(go[go.length - 1].type, 1);
  t.is(c.size, BigInt(GiB));
  t.truthy(c.flags & (1 << 8), 'CAN_MULTI_CONN advertised');
  c.destroy();
});

for (const structured of [true, false]) {
  test(`out-of-range and unknown requests get error replies (${structured ? 'structured' : 'simple'} replies)`, async (t) => {
    const c = await client(structured);
    t.is(c.structured, structured);
    const end = BigInt(GiB);
    t.is((await c.cmd(CMD.READ, end, 4096)).error, ERR.EINVAL, 'read past the end');
    t.is((await c.cmd(CMD.READ, end - 4096n, 8192)).error, ERR.EINVAL, 'read crossing the end');
    t.is((await c.cmd(CMD.READ, 2n ** 63n, 4096)).error, ERR.EINVAL, 'read at a huge offset');
    t.is((await c.cmd(CMD.WRITE, end, 4096, 0, Buffer.alloc(4096))).error, ERR.ENOSPC, 'write past the end');
    t.is((await c.cmd(CMD.WRITE_ZEROES, end - 4096n, 8192)).error, ERR.ENOSPC, 'write-zeroes crossing the end');
    t.is((await c.cmd(CMD.TRIM, end, 4096)).error, ERR.EINVAL, 'trim past the end');
    t.is((await c.cmd(99, 0, 4096)).error, ERR.EINVAL, 'unknown command type');
    t.is((await c.cmd(CMD.CACHE, 0, 4096)).error, ERR.EINVAL, 'NBD_CMD_CACHE (not advertised)');
    t.is((await c.cmd(CMD.BLOCK_STATUS, 0, 4096)).error, ERR.EINVAL, 'NBD_CMD_BLOCK_STATUS without a meta context');
    t.is((await c.cmd(CMD.READ, 0, 4096, 0x4000)).error, ERR.EINVAL, 'unknown command flag');
    t.is((await c.cmd(CMD.READ, 0, 64 * 1024 * 1024)).error, ERR.EOVERFLOW, 'read longer than the maximum block size');
    if (structured) {
      const r = await c.cmd(CMD.READ, end, 4096);
      t.regex(r.message ?? '', /beyond the end/, 'structured errors carry a message');
    }
    // The connection is still in sync and serving.
    const data = randomBytes(8192);
    const at = (structured ? 512 : 520) * 1024 * 1024; // each variant has its own region (tests run concurrently)
    t.is((await c.cmd(CMD.WRITE, at, 8192, 0, data)).error, 0);
    const back = await c.cmd(CMD.READ, at, 8192);
    t.is(back.error, 0);
    t.true(back.data!.equals(data));
    t.false(c.isClosed);
    c.destroy();
  });
}

test('unaligned reads and writes are served (read-modify-write), neighbours untouched', async (t) => {
  const c = await client();
  const base = 700 * 1024 * 1024;
  const pattern = randomBytes(16384);
  t.is((await c.cmd(CMD.WRITE, base, 16384, 0, pattern)).error, 0);
  const patch = randomBytes(5000);
  t.is((await c.cmd(CMD.WRITE, base + 3000, 5000, 0, patch)).error, 0);
  const expect = Buffer.from(pattern);
  patch.copy(expect, 3000);
  const r = await c.cmd(CMD.READ, base, 16384);
  t.true(r.data!.equals(expect));
  const part = await c.cmd(CMD.READ, base + 2999, 5002);
  t.true(part.data!.equals(expect.subarray(2999, 2999 + 5002)));
  t.is((await c.cmd(CMD.WRITE_ZEROES, base + 100, 8000)).error, 0);
  expect.fill(0, 100, 8100);
  t.true((await c.cmd(CMD.READ, base, 16384)).data!.equals(expect));
  c.destroy();
});

test('hostile and vanishing clients harm nothing while fio verifies on another connection', async (t) => {
  t.timeout(300000);
  t.true(await have('fio'), 'fio is not installed (.ci/run installs it)');
  // A known region that no one but the hostile clients' half-sent writes aims at.
  const good = await client();
  const region = 900 * 1024 * 1024;
  const content = randomBytes(1024 * 1024);
  t.is((await good.cmd(CMD.WRITE, region, content.length, 0, content)).error, 0);
  t.is((await good.cmd(CMD.FLUSH, 0, 0)).error, 0);

  const fio = run('fio', ['--name=bystander', '--ioengine=nbd', `--uri=${up.uri}`, '--rw=randwrite', '--bs=4k', '--size=32m',
    '--offset=64m', '--iodepth=16', '--verify=crc32c', '--verify_state_save=0', '--verify_fatal=1']);

  for (let i = 0; i < 20; i++) {
    // Bad request magic: that connection is closed.
    const bad = await client();
    bad.raw(randomBytes(28));
    await bad.closedPromise;
    // A write whose payload never fully arrives: the client vanishes mid-request.
    const half = await client(i % 2 === 0);
    const h = Buffer.alloc(28);
    h.writeUInt32BE(0x25609513, 0);
    h.writeUInt16BE(CMD.WRITE, 6);
    h.writeBigUInt64BE(BigInt(region), 16);
    h.writeUInt32BE(65536, 24);
    half.raw(Buffer.concat([h, randomBytes(30000)]));
    half.destroy();
    // Many reads in flight, then gone before the replies.
    const gone = await client();
    for (let k = 0; k < 64; k++) void gone.cmd(CMD.READ, k * 65536, 65536).catch(() => undefined);
    gone.destroy();
    // Garbage before the handshake ends.
    const pre = await RawNbd.open(up.port);
    pre.raw(randomBytes(100));
    await pre.closedPromise;
  }

  const r = await fio;
  t.is(r.code, 0, `fio bystander failed:\n${r.stdout.slice(-1500)}${r.stderr}`);
  const back = await good.cmd(CMD.READ, region, content.length);
  t.is(back.error, 0);
  t.true(back.data!.equals(content), 'the region aimed at by half-sent writes is unchanged');
  good.destroy();
});
