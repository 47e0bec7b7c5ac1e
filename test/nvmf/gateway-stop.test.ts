/**
 * Stopping `cairn export nvmf` (issue 11, item 9): Ctrl-C (SIGINT) or SIGTERM on a gateway that
 * never received I/O — so never took the volume's write lease — exits 0 without a stack trace
 * (it used to crash with EFENCED from ClusterLeasedVolume.flush and exit 130); and a gateway
 * whose flush fails at stop reports one warning line and still stops. The flush failure is
 * shown over a file source with a file lease moved away (a node does not fence a stale
 * holder's Flush, so a cluster gateway's flush after a takeover succeeds).
 *
 * One small local cluster (one node, one replica) serves the `cairn export nvmf` cases.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { LocalCluster } from '../../src/cluster/index.ts';
import { startGateway } from '../../src/gateway/index.ts';
import { FileLease } from '../../src/volume/index.ts';
import { CAIRN, tempDataDir } from '../helpers/cairn-up.ts';
import { portClosed } from '../helpers/cluster.ts';
import { openSession } from './helpers/host.ts';

const MiB = 1024 * 1024;
const HOST = 'nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-00000005709e';
const { dir, cleanup } = tempDataDir();
let cluster: LocalCluster | undefined;

test.before(async () => {
  cluster = await LocalCluster.start({
    dataDir: dir,
    layout: { nodes: 1, replicas: 1, devicesPerNode: 1, partitionsPerDevice: 1, deviceBytes: 16 * MiB, volumeBytes: 4 * MiB },
    initiator: false,
    adoptNodes: false,
  });
});

test.after.always(async () => {
  await cluster?.stop();
  cleanup();
});

/**
 * Runs `cairn export nvmf` on the cluster until its "Press Ctrl-C" line, sends `signal`, and
 * resolves with its exit code, signal and output.
 */
async function exportThenSignal(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CAIRN, 'export', 'nvmf', '--data-dir', dir, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, sig) => r({ code, signal: sig })));
  try {
    await new Promise<void>((ready, fail) => {
      const timer = setTimeout(() => fail(new Error(`no ready line in 60 s:\n${stdout}${stderr}`)), 60000);
      child.stdout.on('data', () => {
        if (!stdout.includes('Press Ctrl-C to stop.')) return;
        clearTimeout(timer);
        ready();
      });
      void exited.then((e) => {
        clearTimeout(timer);
        fail(new Error(`exited early (${e.code ?? e.signal}):\n${stdout}${stderr}`));
      });
    });
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 30000); // a hung stop fails the test (exit by SIGKILL)
    const e = await exited;
    clearTimeout(timer);
    return { ...e, stdout, stderr };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test.serial(`cairn export nvmf: ${signal} before any I/O exits 0 without a stack trace`, async (t) => {
    const r = await exportThenSignal(signal);
    const out = `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
    t.is(r.signal, null, out);
    t.is(r.code, 0, out);
    t.notRegex(r.stderr, /^\s+at /m, 'no stack trace');
    t.notRegex(r.stderr, /EFENCED|Error/, out);
  });
}

test('a gateway whose flush fails at stop warns in one line and still closes (file source, lease moved away)', async (t) => {
  const { dir: fileDir, cleanup: cleanFiles } = tempDataDir();
  t.teardown(cleanFiles);
  const leaseFile = join(fileDir, 'lease');
  const warnings: string[] = [];
  const gw = await startGateway({
    source: { kind: 'file', path: join(fileDir, 'vol.img'), size: 4 * MiB, leaseFile, holder: 'a' },
    listen: [{ host: '127.0.0.1', port: 0 }],
    warn: (m) => warnings.push(m),
  });
  const s = await openSession(gw.ports[0].trsvcid, gw.nqn, HOST);
  try {
    t.is((await s.io.write(1, 0, randomBytes(4096))).status, 0, 'the first write takes the lease');
  } finally {
    s.close();
  }
  const other = new FileLease(leaseFile, 'b');
  await other.acquire(); // fences the gateway: its flush now fails with EFENCED
  await other.close();
  await gw.stop();
  t.is(warnings.length, 1, warnings.join('\n'));
  t.regex(warnings[0] ?? '', /^flush at stop failed \(\S+\): lease \S+ moved to b /);
  t.notRegex(warnings[0] ?? '', /\n/);
  t.true(await portClosed(gw.ports[0].trsvcid), 'stopped serving');
});

test('a file gateway that never took its lease stops without flushing or warning', async (t) => {
  const { dir: fileDir, cleanup: cleanFiles } = tempDataDir();
  t.teardown(cleanFiles);
  const warnings: string[] = [];
  const gw = await startGateway({
    source: { kind: 'file', path: join(fileDir, 'vol.img'), size: 4 * MiB, leaseFile: join(fileDir, 'lease'), holder: 'a' },
    listen: [{ host: '127.0.0.1', port: 0 }],
    warn: (m) => warnings.push(m),
  });
  await gw.stop();
  t.deepEqual(warnings, []);
});
