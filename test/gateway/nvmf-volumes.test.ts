/**
 * `cairn up` serves every catalog volume over NVMe/TCP, one subsystem per volume
 * (nqn.2024-01.io.cairn:<cluster>:<volume>, nsid 1), following the catalog (NvmfVolumes in
 * src/gateway/frontends.ts). Against the real `cairn up` child, with our NVMe/TCP host:
 *  1. the discovery log page (70h) lists vol0 on both paths; a volume created through the API
 *     shows up there too, and the discovery controller gets a Discovery Log Page Change notice;
 *  2. an online resize (PATCH size) completes an armed Asynchronous Event Request with Notice /
 *     Namespace Attribute Changed / log page 04h, the Changed Namespace List names nsid 1, a
 *     new Identify Namespace has the new NSZE, and the blocks past the old end are usable;
 *  3. the volume's allow-list (PATCH allowHosts, then `cairn volume hosts --any`) decides who
 *     may Connect (Connect Invalid Host, IATTR/IPO naming HOSTNQN) and who sees it in discovery;
 *     a host just added connects at once (the refused Connect rechecks the record);
 *  4. DELETE (a job) removes the subsystem from discovery.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { AdminOpc, buildSqe } from '../../src/nvmf/command.ts';
import { DISCOVERY_NQN, NvmeStatus as S } from '../../src/nvmf/index.ts';
import { ApiClient } from '../../src/api/index.ts';
import { loadConfig } from '../../src/config/index.ts';
import { CAIRN, cairnUp, tempDataDir } from '../helpers/cairn-up.ts';
import { openSession, TestHost } from '../nvmf/helpers/host.ts';
import { OPT, RawNbd } from '../helpers/raw-nbd.ts';
import { NvmfTarget } from '../../src/nvmf/index.ts';
import { NvmfVolumes, type CatalogVolume, type VolumeSet } from '../../src/gateway/index.ts';
import type { BlockDevice } from '../../src/volume/index.ts';

const HOST_A = 'nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-00000000000a';
const HOST_B = 'nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-00000000000b';
const MiB = 1 << 20;

/** Async event completion DW0: type (bits 2:0), info (15:8), log page (23:16). */
const event = (type: number, info: number, lid: number): number => (type & 7) | (info << 8) | (lid << 16);
const NOTICE = 2;
const NS_ATTR_CHANGED = event(NOTICE, 0x00, 0x04);
const DISCOVERY_CHANGED = event(NOTICE, 0xf0, 0x70);

const nqnAt = (b: Buffer, off: number): string => b.toString('utf8', off, b.indexOf(0, off));
const ascii = (b: Buffer, off: number, len: number): string => b.toString('latin1', off, off + len).replace(/\0+$/, '').trim();

/** Polls `cond` every 100 ms until it returns a truthy value. */
async function until<T>(what: string, cond: () => Promise<T | undefined | false>, ms = 20000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A discovery controller session of host `hostnqn`. */
async function discovery(port: number, hostnqn: string): Promise<TestHost> {
  const d = await TestHost.open(port);
  const c = await d.connect(DISCOVERY_NQN, hostnqn);
  if (c.status !== 0) throw new Error(`discovery Connect failed: 0x${c.status.toString(16)}`);
  await d.enable();
  return d;
}

interface Entry { subnqn: string; portId: number; trsvcid: string; traddr: string; trtype: number; subtype: number }

/** Reads the whole discovery log page (header first for NUMREC, then every entry). */
async function discoveryLog(d: TestHost): Promise<Entry[]> {
  const hdr = (await d.getLogPage(0x70, 1024)).data!;
  const n = Number(hdr.readBigUInt64LE(8));
  const page = (await d.getLogPage(0x70, 1024 * (n + 1))).data!;
  return Array.from({ length: Number(page.readBigUInt64LE(8)) }, (_, i) => {
    const e = page.subarray(1024 * (i + 1), 1024 * (i + 2));
    return { trtype: e[0], subtype: e[2], portId: e.readUInt16LE(4), trsvcid: ascii(e, 32, 32), subnqn: nqnAt(e, 256), traddr: ascii(e, 512, 256) };
  });
}

/** One-shot discovery as `hostnqn`: the (subnqn, trsvcid) pairs it sees. */
async function discover(port: number, hostnqn: string): Promise<Entry[]> {
  const d = await discovery(port, hostnqn);
  try {
    return await discoveryLog(d);
  } finally {
    d.close();
  }
}

const aer = (h: TestHost) => h.submit(buildSqe({ opcode: AdminOpc.ASYNC_EVENT_REQUEST, cid: h.cid() }));

/** NSZE and the LBA size in use, from Identify Namespace. */
async function identifyNs(h: TestHost): Promise<{ nsze: bigint; ncap: bigint; lbaBytes: number }> {
  const r = await h.identify(0, 1);
  if (r.cqe.status !== 0) throw new Error(`Identify Namespace: 0x${r.cqe.status.toString(16)}`);
  const ns = r.data!;
  const flbas = ns[26] & 0xf;
  const lbads = (ns.readUInt32LE(128 + 4 * flbas) >> 16) & 0xff;
  return { nsze: ns.readBigUInt64LE(0), ncap: ns.readBigUInt64LE(8), lbaBytes: 2 ** lbads };
}

/** Runs the real CLI; resolves with its exit code and output. */
function cli(args: string[]): Promise<{ code: number | null; out: string }> {
  const p = spawn(process.execPath, [CAIRN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((r) => p.once('exit', (code) => r({ code, out })));
}

test.serial('cairn up follows the catalog over NVMe/TCP: discovery, resize notice, allow-list, delete', async (t) => {
  t.timeout(120_000);
  const { dir, cleanup } = tempDataDir();
  const up = await cairnUp(dir, ['--nodes', '3', '--devices', '1', '--device-size', '256MiB', '--partitions', '2', '--volume-size', '32MiB', '--nvmf-paths', '2']);
  const closers: Array<() => void> = [];
  try {
    const out = up.output();
    const vol0Nqn = /NVMe\/TCP export: (\S+)/.exec(out)?.[1];
    const ports = [...out.matchAll(/NVMe\/TCP path (\d+): [\d.]+:(\d+)/g)].map((m) => ({ portId: Number(m[1]), port: Number(m[2]) }));
    t.truthy(vol0Nqn, out);
    t.deepEqual(ports.map((p) => p.portId), [1, 2], 'two NVMe/TCP paths');
    const [p1, p2] = ports.map((p) => p.port);
    const config = (await loadConfig(dir))!;
    const api = new ApiClient(`http://127.0.0.1:${config.nodes[0].apiPort}`, config.token);
    const db2Nqn = `nqn.2024-01.io.cairn:${config.clusterId}:db2`;
    t.is(vol0Nqn, `nqn.2024-01.io.cairn:${config.clusterId}:vol0`);
    const pairs = (es: Entry[], nqn: string): string[] => es.filter((e) => e.subnqn === nqn).map((e) => `${e.portId}@${e.trsvcid}`);

    // (1) Discovery: vol0 on both paths (TCP, IPv4, NVM subsystem), from either port.
    const d = await discovery(p1, HOST_A);
    closers.push(() => d.close());
    const first = await discoveryLog(d);
    t.deepEqual(pairs(first, vol0Nqn!), [`1@${p1}`, `2@${p2}`], 'vol0 is listed on both paths');
    t.true(first.every((e) => e.trtype === 3 && e.subtype === 2 && e.traddr === '127.0.0.1'));
    t.deepEqual(pairs(await discover(p2, HOST_B), vol0Nqn!), [`1@${p1}`, `2@${p2}`], 'the second port gives the same list');
    t.deepEqual(pairs(first, db2Nqn), [], 'no db2 yet');
    // The discovery controller is told when the log page changes (Discovery Log Page Change).
    t.is((await d.setFeature(0x0b, 1 << 31)).status, 0);
    const discoveryEvent = aer(d);
    const created = await api.call<{ name: string; sizeBytes: number }>('POST', '/v1/volumes', { name: 'db2', size: 32 * MiB });
    t.is(created.sizeBytes, 32 * MiB);
    const listed = await until('db2 in the discovery log', async () => {
      const es = await discoveryLog(d);
      return pairs(es, db2Nqn).length > 0 && es;
    });
    t.deepEqual(pairs(listed, db2Nqn), [`1@${p1}`, `2@${p2}`], 'db2 is listed on both paths');
    t.deepEqual(pairs(listed, vol0Nqn!), [`1@${p1}`, `2@${p2}`], 'vol0 is still listed');
    const ev = await discoveryEvent;
    t.is(ev.cqe.status, 0);
    t.is(ev.cqe.result, DISCOVERY_CHANGED, 'Notice / Discovery Log Page Change / log page 70h');

    // (2) Online resize: AER, Changed Namespace List, new NSZE, I/O past the old end.
    const s = await openSession(p1, db2Nqn, HOST_A);
    closers.push(() => s.close());
    const before = await identifyNs(s.admin);
    t.is(before.lbaBytes, 4096);
    t.is(before.nsze, BigInt((32 * MiB) / before.lbaBytes), 'NSZE = size / LBA size');
    t.is(before.ncap, before.nsze, 'NCAP = NSZE');
    // The API names the identity the gateway reports (a Cinder driver hands it to os-brick).
    const shown = await api.call<{ nvmf: { nqn: string; nsid: number; uuid: string; nguid: string } }>('GET', '/v1/volumes/db2');
    t.is(shown.nvmf.nqn, db2Nqn, 'the volume view names its subsystem NQN');
    t.is(shown.nvmf.nsid, 1);
    const idns = (await s.admin.identify(0, 1)).data!;
    t.is(idns.subarray(104, 120).toString('hex'), shown.nvmf.nguid, 'Identify Namespace NGUID = the view\'s nguid');
    const descs = (await s.admin.identify(3, 1)).data!;
    let uuid = '';
    for (let o = 0; o + 4 <= descs.length && descs[o] !== 0; o += 4 + descs[o + 1]) {
      if (descs[o] === 3) uuid = descs.subarray(o + 4, o + 20).toString('hex');
    }
    t.is(uuid, shown.nvmf.uuid.replace(/-/g, ''), 'Namespace Identification Descriptor UUID = the view\'s uuid');
    const map = await api.call<{ clusterId: string }>('GET', '/v1/map');
    t.true(db2Nqn.includes(`:${map.clusterId}:`), 'GET /v1/map names the cluster id in the NQNs');
    const oldEnd = Number(before.nsze);
    // I/O attaches the volume (its lease): the resize then has to reach the attached device too.
    const low = randomBytes(8192);
    t.is((await s.io.write(1, oldEnd - 2, low)).status, 0, 'write the last two blocks');
    t.is((await s.io.write(1, oldEnd, randomBytes(4096))).status, S.LBA_OUT_OF_RANGE, 'past the end: LBA Out of Range');
    t.is((await s.admin.setFeature(0x0b, 1 << 8)).status, 0, 'Namespace Attribute Notices enabled');
    const nsEvent = aer(s.admin);
    const grown = await api.call<{ sizeBytes: number }>('PATCH', '/v1/volumes/db2', { size: 64 * MiB });
    t.is(grown.sizeBytes, 64 * MiB);
    const nsEv = await Promise.race([nsEvent, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('no AER completion within 15 s of the resize')), 15000))]);
    t.is(nsEv.cqe.status, 0);
    t.is(nsEv.cqe.result & 7, NOTICE, 'Asynchronous Event Type: Notice');
    t.is((nsEv.cqe.result >> 8) & 0xff, 0x00, 'Asynchronous Event Information: Namespace Attribute Changed');
    t.is((nsEv.cqe.result >> 16) & 0xff, 0x04, 'Log Page Identifier: Changed Namespace List');
    const changed = (await s.admin.getLogPage(0x04, 4096)).data!;
    t.is(changed.readUInt32LE(0), 1, 'Changed Namespace List: nsid 1');
    t.is(changed.readUInt32LE(4), 0, '…and nothing else');
    const after = await identifyNs(s.admin);
    t.is(after.nsze, BigInt((64 * MiB) / after.lbaBytes), 'new NSZE');
    const high = randomBytes(4096 * 4);
    t.is((await s.io.write(1, oldEnd + 10, high)).status, 0, 'write past the old end');
    t.deepEqual((await s.io.read(1, oldEnd + 10, 4)).data, high, 'read past the old end');
    t.deepEqual((await s.io.read(1, oldEnd - 2, 2)).data, low, 'the old last blocks are intact');
    // A second path sees the new size at once.
    const s2 = await openSession(p2, db2Nqn, HOST_A);
    closers.push(() => s2.close());
    t.is((await identifyNs(s2.admin)).nsze, after.nsze, 'path 2 reports the new NSZE');
    t.deepEqual((await s2.io.read(1, oldEnd + 10, 4)).data, high, 'path 2 reads the new blocks');
    s2.close();

    // (3) Allow-list from the catalog record.
    const restricted = await api.call<{ allowHosts?: string[] }>('PATCH', '/v1/volumes/db2', { allowHosts: [HOST_A] });
    t.deepEqual(restricted.allowHosts, [HOST_A]);
    await until('db2 hidden from host B in discovery', async () => pairs(await discover(p1, HOST_B), db2Nqn).length === 0);
    t.deepEqual(pairs(await discover(p1, HOST_A), db2Nqn), [`1@${p1}`, `2@${p2}`], 'host A still sees db2');
    t.deepEqual(pairs(await discover(p1, HOST_B), vol0Nqn!), [`1@${p1}`, `2@${p2}`], 'host B still sees vol0 (gateway default: any)');
    const hb = await TestHost.open(p1);
    closers.push(() => hb.close());
    const refused = await hb.connect(db2Nqn, HOST_B);
    t.is(refused.status, S.CONNECT_INVALID_HOST, 'Connect Invalid Host (SCT 1, SC 84h, DNR)');
    t.is(refused.result, (1 << 16) | 512, 'IATTR = data, IPO = HOSTNQN');
    hb.close();
    // A host added to the record connects at once, before the gateway's next catalog refresh
    // (2 s): the refused Connect makes the gateway read the record (a Cinder attach connects
    // right after initialize_connection added its host).
    const HOST_C = 'nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-00000000000c';
    await api.call('PATCH', '/v1/volumes/db2', { allowHosts: [HOST_A, HOST_C] });
    const hc = await TestHost.open(p1);
    closers.push(() => hc.close());
    const addedAt = Date.now();
    const accepted = await hc.connect(db2Nqn, HOST_C);
    t.is(accepted.status, 0, `a host just added to the record is accepted at once (${Date.now() - addedAt} ms after the PATCH)`);
    hc.close();
    const sa = await openSession(p2, db2Nqn, HOST_A);
    closers.push(() => sa.close());
    t.deepEqual((await sa.io.read(1, oldEnd + 10, 4)).data, high, 'host A is accepted and reads');
    sa.close();
    t.is((await s.io.write(1, 0, randomBytes(4096))).status, 0, 'the connected host keeps its association');
    // `cairn volume hosts db2 --any` (allowHosts []): the gateway default again (any).
    const any = await cli(['volume', 'hosts', 'db2', '--any', '--data-dir', dir, '--json']);
    t.is(any.code, 0, any.out);
    t.deepEqual((JSON.parse(any.out) as { allowHosts?: string[] }).allowHosts ?? [], []);
    await until('db2 visible to host B again', async () => pairs(await discover(p1, HOST_B), db2Nqn).length === 2);
    const sb = await openSession(p1, db2Nqn, HOST_B);
    closers.push(() => sb.close());
    t.deepEqual((await sb.io.read(1, oldEnd + 10, 4)).data, high, 'host B is accepted again');
    sb.close();
    s.close();

    // (4) Delete: a job; the subsystem leaves discovery.
    const job = await api.call<{ id: string; state: string }>('DELETE', '/v1/volumes/db2');
    const done = await until('the delete job to end', async () => {
      const j = await api.call<{ state: string; error?: string }>('GET', `/v1/jobs/${encodeURIComponent(job.id)}`);
      return j.state !== 'running' && j;
    }, 30000);
    t.is(done.state, 'succeeded', done.error);
    const gone = await until('db2 gone from discovery', async () => {
      const es = await discoveryLog(d);
      return pairs(es, db2Nqn).length === 0 && es;
    });
    t.deepEqual(pairs(gone, vol0Nqn!), [`1@${p1}`, `2@${p2}`], 'vol0 stays');
    const late = await TestHost.open(p1);
    closers.push(() => late.close());
    t.is((await late.connect(db2Nqn, HOST_A)).status, S.CONNECT_INVALID_PARAMETERS, 'no such subsystem any more');
    late.close();
  } finally {
    for (const c of closers) c();
    t.is(await up.stop(), 0, up.output());
    cleanup();
  }
});

/*
 * The refresh loop hands every catalog change to NvmfVolumes (onList) even when another
 * list() caller — NBD_OPT_LIST through nbdExports, an empty-name NBD_OPT_GO — saw the new
 * list first: a new volume gets its subsystem and an allow-list change is applied.
 */
test.serial('an NBD export list right after a catalog change does not hide the change from NVMe/TCP', async (t) => {
  t.timeout(120_000);
  const { dir, cleanup } = tempDataDir();
  const up = await cairnUp(dir, ['--nodes', '3', '--devices', '1', '--device-size', '256MiB', '--partitions', '2', '--volume-size', '32MiB', '--nvmf-paths', '1']);
  try {
    const p1 = Number(/NVMe\/TCP path 1: [\d.]+:(\d+)/.exec(up.output())![1]);
    const config = (await loadConfig(dir))!;
    const api = new ApiClient(`http://127.0.0.1:${config.nodes[0].apiPort}`, config.token);
    const db3Nqn = `nqn.2024-01.io.cairn:${config.clusterId}:db3`;
    const vol0Nqn = `nqn.2024-01.io.cairn:${config.clusterId}:vol0`;
    const seen = async (host: string, nqn: string): Promise<boolean> => (await discover(p1, host)).some((e) => e.subnqn === nqn);
    const within = async (ms: number, cond: () => Promise<boolean>): Promise<boolean> => until('', async () => cond(), ms).then(() => true, () => false);
    /** `change`, then at once an NBD_OPT_LIST (as `nbdinfo --list` would send). */
    const changeThenList = async (change: () => Promise<unknown>): Promise<void> => {
      const nbd = await RawNbd.open(up.port);
      await change();
      const replies = await nbd.option(OPT.LIST);
      nbd.socket.destroy();
      t.is(replies.at(-1)!.type, 1, 'NBD_REP_ACK');
    };
    // A new volume: its subsystem must show up in discovery.
    await changeThenList(() => api.call('POST', '/v1/volumes', { name: 'db3', size: 32 * MiB }));
    const created = await within(8000, () => seen(HOST_B, db3Nqn));
    // An allow-list that shuts host B out of vol0 must be applied.
    await changeThenList(() => api.call('PATCH', '/v1/volumes/vol0', { allowHosts: [HOST_A] }));
    const restricted = await within(8000, async () => !(await seen(HOST_B, vol0Nqn)));
    t.true(created, 'db3 appears in discovery within 8 s of its creation');
    t.true(restricted, 'vol0 leaves host B\'s discovery within 8 s of its allow-list change');
  } finally {
    t.is(await up.stop(), 0, up.output());
    cleanup();
  }
});

/** An in-memory BlockDevice that counts the writes it took. */
function memDevice(size: number): BlockDevice & { writes: number } {
  const mem = Buffer.alloc(size);
  return {
    size, blockSize: 4096, writes: 0,
    async read(off, len) { return Buffer.from(mem.subarray(off, off + len)); },
    async write(off, data) { this.writes++; data.copy(mem, off); },
    async flush() {},
    async trim(off, len) { mem.fill(0, off, off + len); },
    async writeZeroes(off, len) { mem.fill(0, off, off + len); },
  };
}

test.serial('a volume deleted and created again under the same name (between two refreshes) gets a new subsystem', async (t) => {
  // NvmfVolumes alone, with a stand-in VolumeSet: volume "db" id 7, then a new volume "db" id 8.
  const devices = new Map<number, BlockDevice & { writes: number }>([[7, memDevice(8 * MiB)], [8, memDevice(8 * MiB)]]);
  let current = 7;
  const set = { open: async (name: string) => (name === 'db' ? { device: devices.get(current)! } : undefined) } as unknown as VolumeSet;
  const target = new NvmfTarget({ cntlidRange: [1, 99] });
  t.teardown(() => target.close());
  const vols = new NvmfVolumes({ target, set, clusterId: 'test', token: 't', map: () => ({ nodes: [] }) as never, pools: [], anaStates: { 1: 'optimized' } });
  const rec = (id: number): CatalogVolume => ({ name: 'db', id, sizeBytes: 8 * MiB, pool: 0, extentBytes: MiB, thin: true, state: 'ready', snapshots: [], parent: null });
  const nqn = 'nqn.2024-01.io.cairn:test:db';
  t.deepEqual(vols.sync([rec(7)]), [nqn]);
  const { trsvcid } = await target.listen({ portId: 1, host: '127.0.0.1', port: 0 });
  const old = await openSession(trsvcid, nqn, HOST_A);
  t.teardown(() => old.close());
  t.is((await old.io.write(1, 0, randomBytes(4096))).status, 0);
  t.is(devices.get(7)!.writes, 1, 'the first volume took the write');
  // The catalog now has another volume of that name.
  current = 8;
  vols.sync([rec(8)]);
  await Promise.race([old.admin.closed, new Promise((r) => setTimeout(r, 2000))]);
  t.is((await old.io.write(1, 0, randomBytes(4096)).catch(() => null))?.status ?? 'closed', 'closed', "the old volume's association ends");
  const s = await openSession(trsvcid, nqn, HOST_A);
  t.teardown(() => s.close());
  t.is((await s.io.write(1, 0, randomBytes(4096))).status, 0);
  t.is(devices.get(8)!.writes, 1, 'a new association writes to the new volume');
  t.is(devices.get(7)!.writes, 1, 'never to the old one');
});
