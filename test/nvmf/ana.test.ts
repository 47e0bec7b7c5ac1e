/**
 * ANA and asynchronous events with our host client: ANA log page contents, the ANA change
 * event, ANA states refusing I/O, write-lease takeover between two gateways (fencing the old
 * one), namespace change notices, AER limit and Abort.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdminOpc, buildSqe } from '../../src/nvmf/command.ts';
import { NvmeStatus as S, NvmfTarget } from '../../src/nvmf/index.ts';
import { FileBlockDevice, FileLease } from '../../src/volume/index.ts';
import { openSession, TestHost, type Session } from './helpers/host.ts';
import { HOSTNQN, SUBNQN, startFixture } from './helpers/fixture.ts';

const ANA_CHANGE_EVENT = 2 | (0x03 << 8) | (0x0c << 16);

/** Submits an Asynchronous Event Request; resolves with its completion. */
function aer(h: TestHost, cid?: number) {
  return h.submit(buildSqe({ opcode: AdminOpc.ASYNC_EVENT_REQUEST, cid: cid ?? h.cid() }));
}

interface AnaView {
  chgcnt: bigint;
  groups: { id: number; nsids: number[]; chgcnt: bigint; state: number }[];
}

async function anaLog(h: TestHost, rgo = false): Promise<AnaView> {
  const b = (await h.getLogPage(0x0c, 4096, { lsp: rgo ? 1 : 0 })).data!;
  const n = b.readUInt16LE(8);
  const groups = [];
  let off = 16;
  for (let i = 0; i < n; i++) {
    const nn = b.readUInt32LE(off + 4);
    groups.push({ id: b.readUInt32LE(off), chgcnt: b.readBigUInt64LE(off + 8), state: b[off + 16], nsids: Array.from({ length: nn }, (_, k) => b.readUInt32LE(off + 32 + 4 * k)) });
    off += 32 + 4 * nn;
  }
  return { chgcnt: b.readBigUInt64LE(0), groups };
}

test('ANA log page, ANA change event, and I/O refused in inaccessible / change states', async (t) => {
  const f = await startFixture();
  t.teardown(() => f.close());
  const s = await openSession(f.port.trsvcid, SUBNQN, HOSTNQN);
  let log = await anaLog(s.admin);
  t.deepEqual(log.groups.map((g) => [g.id, g.nsids, g.state]), [[1, [1], 1]], 'group 1 holds nsid 1, optimized');
  t.is((await s.admin.setFeature(0x0b, 1 << 11)).status, 0);
  const ev = aer(s.admin);
  f.target.setAnaState(SUBNQN, 'non-optimized');
  const r = await ev;
  t.is(r.cqe.status, 0);
  t.is(r.cqe.result, ANA_CHANGE_EVENT, 'Notice / ANA change / log page 0Ch');
  log = await anaLog(s.admin);
  t.is(log.groups[0].state, 2);
  t.true(log.chgcnt >= 1n && log.groups[0].chgcnt === log.chgcnt);
  t.deepEqual((await anaLog(s.admin, true)).groups.map((g) => g.nsids), [[]], 'RGO: no NSID lists');
  t.is((await s.io.write(1, 0, randomBytes(4096))).status, 0, 'non-optimized still serves I/O');
  // Events stay masked until the log page is read; then the next change is reported.
  const ev2 = aer(s.admin);
  f.target.setAnaState(SUBNQN, 'inaccessible');
  t.is((await ev2).cqe.result, ANA_CHANGE_EVENT);
  t.is((await s.io.read(1, 0, 1)).cqe.status, S.ANA_INACCESSIBLE);
  f.target.setAnaState(SUBNQN, 'change');
  t.is((await s.io.read(1, 0, 1)).cqe.status, S.ANA_TRANSITION);
  f.target.setAnaState(SUBNQN, 'persistent-loss');
  t.is((await s.io.read(1, 0, 1)).cqe.status, S.ANA_PERSISTENT_LOSS);
  f.target.setAnaState(SUBNQN, 'optimized');
  t.is((await s.io.read(1, 0, 1)).cqe.status, 0);
  // Namespace attribute change: event, Changed Namespace List, cleared by reading.
  t.is((await s.admin.setFeature(0x0b, (1 << 11) | (1 << 8))).status, 0);
  await anaLog(s.admin);
  const ev3 = aer(s.admin);
  f.target.notifyNamespaceChanged(SUBNQN, 1);
  t.is((await ev3).cqe.result, 2 | (0x00 << 8) | (0x04 << 16));
  const ch = (await s.admin.getLogPage(0x04, 4096)).data!;
  t.is(ch.readUInt32LE(0), 1);
  t.is((await s.admin.getLogPage(0x04, 4096)).data!.readUInt32LE(0), 0, 'read clears the list');
  s.close();
});

test('AER limit and Abort of a pending AER', async (t) => {
  const f = await startFixture();
  t.teardown(() => f.close());
  const s = await openSession(f.port.trsvcid, SUBNQN, HOSTNQN);
  const pending = [100, 101, 102, 103].map((cid) => aer(s.admin, cid));
  for (const p of pending) p.catch(() => undefined); // outstanding when the test closes
  t.is((await aer(s.admin, 104)).cqe.status, S.AER_LIMIT_EXCEEDED, 'AERL = 3: four outstanding at most');
  const ab = await s.admin.submit(buildSqe({ opcode: AdminOpc.ABORT, cid: 105, cdw: { 10: 0 | (101 << 16) } }));
  t.is(ab.cqe.status, 0);
  t.is(ab.cqe.result & 1, 0, 'aborted');
  t.is((await pending[1]).cqe.status, S.ABORT_REQUESTED);
  const ab2 = await s.admin.submit(buildSqe({ opcode: AdminOpc.ABORT, cid: 106, cdw: { 10: 1 | (7 << 16) } }));
  t.is(ab2.cqe.result & 1, 1, 'an unknown command is not aborted');
  s.close();
});

async function gateway(dir: string, name: string, portId: number, ana: 'optimized' | 'non-optimized', cntlids: [number, number]) {
  const lease = new FileLease(join(dir, 'lease'), name);
  const device = await FileBlockDevice.open(join(dir, 'vol.img'), { size: 8 << 20, lease });
  const target = new NvmfTarget({ cntlidRange: cntlids });
  target.addSubsystem({ nqn: SUBNQN, allowHosts: [HOSTNQN], namespaces: [{ nsid: 1, device, lease }], anaState: ana });
  const port = await target.listen({ portId, port: 0 });
  return { target, port, device, lease, close: async () => { await target.close(); await device.close(); await lease.close(); } };
}

async function state(s: Session): Promise<number> {
  return (await anaLog(s.admin)).groups[0].state;
}

test('write-lease takeover: the gateway that gets I/O becomes optimized and fences the old one', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-nvmf-lease-'));
  const a = await gateway(dir, 'gwA', 1, 'optimized', [1, 99]);
  const b = await gateway(dir, 'gwB', 2, 'non-optimized', [100, 199]);
  t.teardown(async () => {
    await a.close();
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const sa = await openSession(a.port.trsvcid, SUBNQN, HOSTNQN);
  const sb = await openSession(b.port.trsvcid, SUBNQN, HOSTNQN);
  t.not(sa.cntlid, sb.cntlid, 'controller ids differ across gateways');
  for (const s of [sa, sb]) await s.admin.setFeature(0x0b, 1 << 11);
  const d1 = randomBytes(16384);
  t.is((await sa.io.write(1, 8, d1)).status, 0, 'A takes the lease on its first I/O');
  t.is((await a.lease.current()).holder, 'gwA');
  t.is(await state(sa), 1);
  t.is(await state(sb), 2);
  // The host moves to B (say A's path broke): B takes over and announces it.
  const evB = aer(sb.admin);
  const d2 = randomBytes(16384);
  t.is((await sb.io.write(1, 8, d2)).status, 0);
  t.is((await evB).cqe.result, ANA_CHANGE_EVENT);
  t.is(await state(sb), 1, 'B optimized');
  t.is((await b.lease.current()).holder, 'gwB');
  // A is fenced: its I/O fails with ANA Transition, and it reports itself non-optimized.
  const evA = aer(sa.admin);
  t.is((await sa.io.write(1, 8, randomBytes(4096))).status, S.ANA_TRANSITION);
  t.is((await evA).cqe.result, ANA_CHANGE_EVENT);
  t.is(await state(sa), 2, 'A non-optimized');
  t.deepEqual((await sb.io.read(1, 8, 4)).data, d2, "the fenced write did not land");
  // I/O arriving at A again takes the lease back.
  const evA2 = aer(sa.admin);
  t.deepEqual((await sa.io.read(1, 8, 4)).data, d2);
  t.is((await evA2).cqe.result, ANA_CHANGE_EVENT);
  t.is(await state(sa), 1);
  t.is((await sb.io.write(1, 0, randomBytes(4096))).status, S.ANA_TRANSITION, 'and B is fenced in turn');
  sa.close();
  sb.close();
});
