/**
 * One structured log (issue 13): fileLogger writes JSON lines at the level a flag or
 * CAIRN_LOG_LEVEL sets and hands warnings to a readable summary; a bad level is refused
 * with a line naming the accepted ones; and an NBD request that fails is logged exactly once,
 * with its command, offset, length, the NBD error sent and the device's cause, through the
 * connection's child logger (conn, peer, export bound) — driven by the real nbdcopy.
 */
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NbdServer } from '../../src/nbd/index.ts';
import { fileLogger, logLevel, summaryLine } from '../../src/logging/index.ts';
import { BlockDeviceError, FileBlockDevice, ForwardingDevice, type BlockDevice } from '../../src/volume/index.ts';
import { have, run } from '../helpers/tools.ts';

const MiB = 1 << 20;

test('fileLogger: JSON lines at the level, warnings summarised readably; logLevel refuses a bad level', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-log-'));
  try {
    const summary: string[] = [];
    const f = fileLogger(join(dir, 'logs', 'x.log'), { base: { node: 3 }, level: 'info', summary: (l) => summary.push(l) });
    const nbd = f.log.child({ subsystem: 'nbd' });
    nbd.debug('not written at info');
    nbd.info({ conn: 1 }, 'client attached');
    nbd.warn({ conn: 1, errno: 5, err: 'member down' }, 'NBD request failed');
    f.close();
    const lines = readFileSync(join(dir, 'logs', 'x.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    t.deepEqual(lines.map((l) => [l.level, l.node, l.subsystem, l.msg]), [[30, 3, 'nbd', 'client attached'], [40, 3, 'nbd', 'NBD request failed']]);
    t.is(summary.length, 1, 'only the warning reaches the summary');
    t.regex(summary[0], /^\d\d:\d\d:\d\d\.\d{3} WARN \[nbd\] NBD request failed .*errno=5 .*err=member down/);
    t.regex(summaryLine('not json'), /not json/);
    t.is(logLevel('DEBUG'), 'debug');
    process.env.CAIRN_LOG_LEVEL = 'warn';
    t.is(logLevel(), 'warn', 'CAIRN_LOG_LEVEL when no flag');
    delete process.env.CAIRN_LOG_LEVEL;
    t.throws(() => logLevel('loud'), { message: /'loud' is not one of fatal, error, warn, info, debug, trace, silent/ });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A file device whose reads of [failFrom, failTo) fail with EIO (a member that stopped answering), counted. */
class FailingReads extends ForwardingDevice {
  failures = 0;
  constructor(inner: BlockDevice, private readonly failFrom: number, private readonly failTo: number) {
    super(inner);
  }
  override async read(offset: number, length: number): Promise<Buffer> {
    if (offset < this.failTo && offset + length > this.failFrom) {
      this.failures++;
      throw new BlockDeviceError('EIO', `extent at ${this.failFrom} unreadable: no member answered (test)`);
    }
    return this.inner.read(offset, length);
  }
}

test('an NBD request that fails is logged once, with command, range, NBD error and cause (nbdcopy)', async (t) => {
  if (!(await have('nbdcopy'))) return t.fail('nbdcopy is required (apt-get install libnbd-bin)');
  const dir = mkdtempSync(join(tmpdir(), 'cairn-log-'));
  const f = fileLogger(join(dir, 'logs', 'gw.log'), { base: { gateway: 1 }, level: 'info' });
  const inner = await FileBlockDevice.open(join(dir, 'v.img'), { size: 8 * MiB });
  const dev = new FailingReads(inner, 4 * MiB, 4 * MiB + 4096);
  const nbd = new NbdServer({ log: f.log.child({ subsystem: 'nbd' }) });
  nbd.addExport('v', dev);
  const port = await nbd.listen(0, '127.0.0.1');
  try {
    const r = await run('nbdcopy', [`nbd://127.0.0.1:${port}/v`, join(dir, 'copy.img')]);
    t.not(r.code, 0, 'nbdcopy sees the read error');
    await nbd.close();
    f.close();
    const lines = readFileSync(join(dir, 'logs', 'gw.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const failed = lines.filter((l) => l.msg === 'NBD request failed');
    t.true(dev.failures >= 1);
    t.is(failed.length, dev.failures, `each failed request logged once (${dev.failures} failed)`);
    const l = failed[0];
    t.like(l, { level: 40, subsystem: 'nbd', export: 'v', cmd: 'read', errno: 5, code: 'EIO', gateway: 1 });
    t.true(Number(l.offset) <= 4 * MiB && Number(l.offset) + Number(l.length) > 4 * MiB, `the range covers the bad extent (${String(l.offset)}+${String(l.length)})`);
    t.regex(String(l.err), /no member answered/);
    t.is(typeof l.conn, 'number');
    t.regex(String(l.peer), /^127\.0\.0\.1:\d+$/);
    t.true(lines.some((x) => x.msg === 'NBD client attached' && x.export === 'v'), 'the attach is logged too');
  } finally {
    await nbd.close().catch(() => undefined);
    await inner.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
