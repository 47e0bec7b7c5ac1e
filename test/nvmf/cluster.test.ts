/**
 * NVMe/TCP over a real cluster (no VM): `cairn up`'s own export, and `cairn export nvmf` as a
 * separate gateway process that takes the volume's write lease on its first I/O, fencing
 * `cairn up`'s attachment (its NBD I/O then fails).
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { CAIRN, cairnUp, tempDataDir } from '../helpers/cairn-up.ts';
import { CMD, RawNbd } from '../helpers/raw-nbd.ts';
import { buildSqe, IoOpc, SglId } from '../../src/nvmf/command.ts';
import { openSession, TestHost } from './helpers/host.ts';
import { ApiClient } from '../../src/api/index.ts';
import { loadConfig } from '../../src/config/index.ts';

const HOST = 'nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-000000c1a5e7';

async function waitFor(get: () => string, re: RegExp, ms = 30000): Promise<RegExpExecArray> {
  const end = Date.now() + ms;
  for (;;) {
    const m = re.exec(get());
    if (m) return m;
    if (Date.now() > end) throw new Error(`timed out waiting for ${re}: ${get()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('cairn up exports the volume on three ANA paths; I/O over NVMe/TCP reads back over NBD', async (t) => {
  t.timeout(180_000);
  const { dir, cleanup } = tempDataDir();
  // Small devices, so that what the test writes shows in the pool's free share.
  const up = await cairnUp(dir, ['--nvmf-allow-host', HOST, '--device-size', '64MiB', '--volume-size', '64MiB']);
  try {
    const m = await waitFor(up.output, /NVMe\/TCP export: (\S+)\n {2}NVMe\/TCP path 1: [\d.]+:(\d+) \(ANA optimized\)\n {2}NVMe\/TCP path 2: [\d.]+:(\d+) \(ANA non-optimized\)\n {2}NVMe\/TCP path 3: [\d.]+:(\d+)/);
    const [, nqn, p1, p2] = m;
    const s = await openSession(Number(p1), nqn, HOST);
    const data = randomBytes(256 * 1024);
    t.is((await s.io.write(1, 100, data)).status, 0);
    t.is((await s.io.submit(buildSqe({ opcode: IoOpc.FLUSH, cid: s.io.cid(), nsid: 1 }))).cqe.status, 0, 'Flush');
    t.deepEqual((await s.io.read(1, 100, 64)).data, data);
    // The same bytes over NBD.
    const nbd = await RawNbd.open(up.port);
    await nbd.go('vol0');
    const r = await nbd.cmd(CMD.READ, 100 * 4096, data.length);
    t.is(r.error, 0);
    t.deepEqual(r.data, data);
    nbd.socket.destroy();
    // Path 2 is the same subsystem, reported non-optimized.
    const s2 = await openSession(Number(p2), nqn, HOST);
    const ana = (await s2.admin.getLogPage(0x0c, 4096)).data!;
    t.is(ana[16 + 16], 2, 'non-optimized');
    t.deepEqual((await s2.io.read(1, 100, 64)).data, data);
    // SMART / Health: Available Spare is the pool's free share from the nodes' heartbeats.
    for (let i = 0; i < 32; i++) t.is((await s.io.write(1, 1024 + i * 64, randomBytes(256 * 1024))).status, 0);
    const config = (await loadConfig(dir))!;
    const api = new ApiClient(`http://127.0.0.1:${config.nodes[0].apiPort}`, config.token);
    const expected = async (): Promise<number> => {
      const { nodes } = await api.call<{ nodes: Array<{ in: boolean; capacityBytes: number; liveBytes: number }> }>('GET', '/v1/nodes');
      const cap = nodes.reduce((a, n) => a + (n.in ? n.capacityBytes : 0), 0);
      const live = nodes.reduce((a, n) => a + (n.in ? n.liveBytes : 0), 0);
      return Math.round(100 * (1 - live / cap));
    };
    let spare = 100;
    let want = -1;
    for (let tries = 0; tries < 100 && !(spare < 100 && spare === want); tries++) {
      want = await expected();
      spare = (await s.admin.getLogPage(0x02, 512)).data![3];
      if (spare < 100 && spare === want) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    t.true(spare < 100, `8 MiB × 3 replicas on 384 MiB raw should show in Available Spare (got ${spare})`);
    t.is(spare, want, 'Available Spare = 1 − live ÷ capacity of the pool, as GET /v1/nodes reports it');
    // Identify Namespace NUSE: the LBAs written (64 at LBA 100, 32 × 64 from LBA 1024), from the
    // nodes' per-volume stored bytes ÷ 3 replicas; a deallocate (DSM) takes its range back out.
    const nuse = async (): Promise<bigint> => (await s.admin.identify(0, 1)).data!.readBigUInt64LE(16);
    const waitNuse = async (n: bigint): Promise<bigint> => {
      let got = -1n;
      for (let i = 0; i < 200 && got !== n; i++) {
        got = await nuse();
        if (got !== n) await new Promise((r) => setTimeout(r, 100));
      }
      return got;
    };
    t.is(await waitNuse(64n + 32n * 64n), 64n + 32n * 64n, 'NUSE counts the written LBAs once');
    const range = Buffer.alloc(16);
    range.writeUInt32LE(512, 4); // NLB
    range.writeBigUInt64LE(1024n, 8); // SLBA
    t.is((await s.io.submit(buildSqe({ opcode: IoOpc.DSM, cid: s.io.cid(), nsid: 1, sglId: SglId.IN_CAPSULE, sglLength: 16, cdw: { 10: 0, 11: 1 << 2 } }), { h2c: range, inCapsule: true })).cqe.status, 0, 'DSM deallocate');
    t.is(await waitNuse(64n + 32n * 64n - 512n), 64n + 32n * 64n - 512n, 'NUSE drops by the deallocated LBAs');
    // An unknown host is refused.
    const h = await TestHost.open(Number(p1));
    t.is((await h.connect(nqn, 'nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-0000000000ff')).status, 0x4184);
    h.close();
    s.close();
    s2.close();
  } finally {
    t.is(await up.stop(), 0, up.output());
    cleanup();
  }
});

test('cairn export nvmf: a separate gateway takes the write lease on first I/O and fences the old attachment', async (t) => {
  t.timeout(180_000);
  const { dir, cleanup } = tempDataDir();
  const up = await cairnUp(dir, ['--nvmf-paths', '0']);
  const gw = spawn(process.execPath, [CAIRN, 'export', 'nvmf', '--data-dir', dir, '--listen', '127.0.0.1:0', '--allow-host', HOST, '--verbose'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  gw.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  gw.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => gw.once('exit', (c) => r(c)));
  try {
    const nbd = await RawNbd.open(up.port);
    await nbd.go('vol0');
    const before = randomBytes(8192);
    t.is((await nbd.cmd(CMD.WRITE, 0, before.length, 0, before)).error, 0, 'cairn up writes while it holds the lease');
    const m = await waitFor(() => out, /NVMe\/TCP export: (\S+)[\s\S]*NVMe\/TCP path 4: [\d.]+:(\d+)/);
    const s = await openSession(Number(m[2]), m[1], HOST);
    t.deepEqual((await s.io.read(1, 0, 2)).data, before, 'the gateway reads what NBD wrote');
    await waitFor(() => out, /lease taken/);
    const after = randomBytes(8192);
    t.is((await s.io.write(1, 0, after)).status, 0);
    const fenced = await nbd.cmd(CMD.WRITE, 0, 4096, 0, randomBytes(4096));
    t.not(fenced.error, 0, 'the old attachment is fenced');
    t.deepEqual((await s.io.read(1, 0, 2)).data, after, "the fenced write did not land");
    nbd.socket.destroy();
    s.close();
  } finally {
    gw.kill('SIGINT');
    t.is(await exited, 0, out);
    t.is(await up.stop(), 0, up.output());
    cleanup();
  }
});
