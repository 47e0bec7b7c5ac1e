/**
 * Scrub on real node processes (src/node/scrub.ts, `cairn scrub start|status`):
 *
 * - deep: one page of a secondary copy is overwritten with random bytes in the stopped
 *   member's device file; after its restart nothing reads it (the test's reads go to the primary first),
 *   `cairn scrub start --deep --wait` finds the bad page and rewrites it from another member
 *   (a recovery read of that partition — no repair path — returns the right bytes again),
 *   `cairn scrub status --json` reports it, and a second deep scrub finds nothing;
 * - shallow: one member gets a page at a newer version than the others (an Op.Put sent to it
 *   alone); `cairn scrub start --wait` finds the extent's digests differ and reconciles it, so
 *   every member then holds the newest page and every digest is equal.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { ScrubReply } from '../../src/api/scrub.ts';
import { LocalCluster } from '../../src/cluster/index.ts';
import type { Volume } from '../../src/initiator/index.ts';
import { decodeDigest } from '../../src/node/extent-copies.ts';
import { decodeVersions, encodePut } from '../../src/recovery/index.ts';
import { Flag, Op, Status, WireClient, type Reply, type RequestHeader } from '../../src/wire/index.ts';
import { CAIRN, tempDataDir } from '../helpers/cairn-up.ts';
import { corruptPages, nodeLog, waitMarkedDown, waitSettled } from '../helpers/device.ts';
import { run } from '../helpers/tools.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const PAGE = 4096;
/** Bytes of each write: 16 pages. */
const CHUNK = 64 * KiB;
const WRITES = 8;

interface Ctx {
  dir: string;
  cleanup: () => void;
  cluster: LocalCluster;
  volume: Volume;
  record: { id: number; pool: number; extentBytes: number };
  writes: Array<{ offset: number; data: Buffer }>;
  clients: Map<number, WireClient>;
}
let ctx: Ctx | null = null;




/** Runs `cairn scrub ARGS --data-dir DIR` and parses its JSON output. */
async function cairnScrub(dir: string, args: string[]): Promise<{ code: number; reply: ScrubReply | null; out: string }> {
  const r = await run(process.execPath, [CAIRN, 'scrub', ...args, '--json', '--data-dir', dir], 120000);
  let reply: ScrubReply | null = null;
  try {
    reply = JSON.parse(r.stdout) as ScrubReply;
  } catch {
    // left null: the test reports the output
  }
  return { code: r.code, reply, out: `${r.stdout}\n${r.stderr}` };
}

/** A wire client to node `node` (reconnected when its connection died). */
async function client(c: Ctx, node: number): Promise<WireClient> {
  let w = c.clients.get(node);
  if (!w || !w.alive) {
    const a = c.cluster.view.address(node)!;
    w = new WireClient({ host: a.host, port: a.port, token: c.cluster.config.token });
    await w.connect();
    c.clients.set(node, w);
  }
  return w;
}

/** A request to partition `leaf` about `extent` of the volume, repeated on StaleEpoch with the node's epoch. */
async function ask(c: Ctx, leaf: number, extent: number, over: Partial<RequestHeader>, payload?: Buffer): Promise<Reply> {
  const w = await client(c, c.cluster.view.nodeOf(leaf));
  let epoch = c.cluster.view.epoch;
  for (let i = 0; ; i++) {
    const r = await w.request({ op: Op.Read, flags: 0, epoch, volume: c.record.id, extent, partition: leaf, firstPage: 0, pages: 1, lease: 0, version: 0, members: [], ...over }, payload);
    if (r.h.status !== Status.StaleEpoch || i >= 5) return r;
    epoch = r.h.aux;
  }
}

/** Recovery read (Flag.Recovery: no repair path) of one page of a partition's copy. */
function recoveryRead(c: Ctx, leaf: number, extent: number, page: number): Promise<Reply> {
  return ask(c, leaf, extent, { op: Op.Read, flags: Flag.Recovery, firstPage: page, pages: 1 });
}

test.before(async () => {
  const { dir, cleanup } = tempDataDir();
  const cluster = await LocalCluster.start({ dataDir: dir, layout: { deviceBytes: 256 * MiB, volumeBytes: 64 * MiB } });
  try {
    const record = cluster.config.volumes.find((v) => v.name === 'vol0')!;
    // Primary-first reads, so that no host read meets (and repairs) the bad secondary page
    // before the scrub does.
    const volume = await cluster.attach('vol0', { readPolicy: 'primary' });
    // 8 × 64 KiB of random data, one write per extent (extents 0, 4, ..., 28), at varying pages.
    const writes = Array.from({ length: WRITES }, (_, i) => ({ offset: i * 4 * record.extentBytes + (i % 4) * CHUNK, data: randomBytes(CHUNK) }));
    for (const w of writes) await volume.write(w.offset, w.data);
    await volume.flush();
    ctx = { dir, cleanup, cluster, volume, record, writes, clients: new Map() };
  } catch (e) {
    await cluster.stop();
    cleanup();
    throw e;
  }
});

test.after.always(async () => {
  if (!ctx) return;
  for (const c of ctx.clients.values()) c.close();
  ctx.volume.close();
  await ctx.cluster.stop();
  ctx.cleanup();
});

test.serial('deep scrub finds a corrupt page of a secondary copy and rewrites it from another member', async (t) => {
  t.timeout(240000);
  const c = ctx!;
  const { cluster, record, writes } = c;
  const view = cluster.view;
  const keeper = cluster.config.authority?.node ?? 0;
  // A write whose secondary is not on the authority's node (which stays up).
  const i = writes.findIndex((w) => view.nodeOf(view.members(record.id, Math.floor(w.offset / record.extentBytes), record.pool)[1]) !== keeper);
  t.true(i >= 0, 'a written extent whose secondary is not on the authority node');
  const w = writes[i];
  const extent = Math.floor(w.offset / record.extentBytes);
  const members = view.members(record.id, extent, record.pool);
  const leaf = members[1];
  const node = view.nodeOf(leaf);
  const k = 5; // the 6th page of the write
  const page = (w.offset % record.extentBytes) / PAGE + k;
  const good = w.data.subarray(k * PAGE, (k + 1) * PAGE);
  t.log(`extent ${extent}, members ${members.join(', ')}: corrupting page ${page} on partition ${leaf} (node ${node})`);

  let t0 = Date.now();
  await cluster.stopNode(node);
  t.true(await waitMarkedDown(cluster, [node], 60000), `the map marks node ${node} down (no mark-down lands during the scrub)`);
  const hits = await corruptPages(cluster, leaf, [good]);
  t.is(hits.length, 1, 'the page is found once in the partition and overwritten');
  await cluster.startNode(node);
  t.true(await cluster.waitPeered([node], 60000), `node ${node} peered after its restart`);
  t.true(await waitSettled(cluster, 60000), 'every node holds the same map with every node up');

  t.log(`stop, corrupt, start, settle: ${Date.now() - t0} ms`);
  t0 = Date.now();
  const before = await recoveryRead(c, leaf, extent, page);
  t.is(before.h.status, Status.BadChecksum, 'the copy is bad before the scrub (recovery read: BadChecksum)');

  const first = await cairnScrub(c.dir, ['start', '--deep', '--wait']);
  t.is(first.code, 0, first.out);
  t.truthy(first.reply, first.out);
  t.true(first.reply!.nodes.every((n) => !('error' in n) && !n.running && n.deep), 'every node ran a deep pass to its end');
  t.true(first.reply!.totals.badPages >= 1, `bad pages found: ${first.reply!.totals.badPages}`);
  t.true(first.reply!.totals.repaired >= 1, `repaired: ${first.reply!.totals.repaired}`);
  t.is(first.reply!.totals.unrepaired, 0);

  t.log(`cairn scrub start --deep --wait: ${Date.now() - t0} ms`);
  const status = await cairnScrub(c.dir, ['status']);
  t.is(status.code, 0, status.out);
  const mine = status.reply!.nodes.find((n) => n.node === node);
  t.true(!!mine && !('error' in mine) && mine.badPages === 1 && mine.repaired === 1 && mine.lastDeepAt !== null, `node ${node} reports 1 bad page, 1 repaired: ${JSON.stringify(mine)}`);
  t.true(status.reply!.totals.badPages >= 1 && status.reply!.totals.repaired >= 1, '`cairn scrub status --json` totals');

  const after = await recoveryRead(c, leaf, extent, page);
  t.is(after.h.status, Status.Ok, 'a recovery read (no repair path) of the partition is good now');
  t.true(after.payload.equals(good), 'and returns the written bytes: the copy was rewritten');

  const lines = (await nodeLog(c.dir, node)).filter((l) => l.volume === record.id && l.extent === extent && l.partition === leaf && l.page === page);
  t.true(lines.some((l) => l.msg === 'scrub: page failed its checksum'), 'the node logged the bad page (volume, extent, partition, page)');
  t.true(lines.some((l) => l.msg === 'scrub: bad page rewritten from another member' && members.includes(l.source as number) && l.source !== leaf), 'and its repair from another member');

  const second = await cairnScrub(c.dir, ['start', '--deep', '--wait']);
  t.is(second.code, 0, second.out);
  t.is(second.reply!.totals.badPages, 0, 'a second deep scrub finds no bad page');
  t.is(second.reply!.totals.inconsistent, 0);
  t.true(second.reply!.totals.extentsDone > 0 && second.reply!.totals.extentsDone === second.reply!.totals.extentsTotal, 'and went over every extent');

  const text = await run(process.execPath, [CAIRN, 'scrub', 'status', '--data-dir', c.dir]);
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, /NODE\s+STATE\s+PASS\s+EXTENTS/);
  t.regex(text.stdout, /total: 0 of 3 nodes scrubbing/);
  t.log(text.stdout);
});

test.serial('shallow scrub finds a member with a newer page and reconciles the extent', async (t) => {
  t.timeout(240000);
  const c = ctx!;
  const { cluster, record, writes } = c;
  const view = cluster.view;
  const w = writes[1];
  const extent = Math.floor(w.offset / record.extentBytes);
  const members = view.members(record.id, extent, record.pool);
  const extentPages = record.extentBytes / PAGE;
  const page = (w.offset % record.extentBytes) / PAGE + 2;
  const target = members[2];

  const vr = await ask(c, target, extent, { op: Op.Versions, pages: extentPages });
  t.is(vr.h.status, Status.Ok);
  const v = decodeVersions(vr.payload).find((x) => x.page === page);
  t.truthy(v, `partition ${target} holds page ${page}`);
  const newer = randomBytes(PAGE);
  const put = await ask(c, target, extent, { op: Op.Put, pages: 1 }, encodePut([{ page, version: v!.version + 1, trim: false, data: newer }]));
  t.is(put.h.status, Status.Ok, 'a newer version of the page was put on one member only');

  const digests = async (): Promise<number[]> => Promise.all(members.map(async (m) => {
    const r = await ask(c, m, extent, { op: Op.Digest, pages: extentPages });
    if (r.h.status !== Status.Ok) throw new Error(`digest of partition ${m}: status ${r.h.status}`);
    return decodeDigest(r.payload).digest;
  }));
  const d0 = await digests();
  t.not(d0[2], d0[0], 'that member\'s digest differs');
  t.is(d0[1], d0[0]);

  const r = await cairnScrub(c.dir, ['start', '--wait']);
  t.is(r.code, 0, r.out);
  t.true(r.reply!.nodes.every((n) => !('error' in n) && !n.running && !n.deep), 'every node ran a shallow pass to its end');
  t.true(r.reply!.totals.inconsistent >= 1, `inconsistent: ${r.reply!.totals.inconsistent}`);
  t.true(r.reply!.totals.repaired >= 1, `repaired: ${r.reply!.totals.repaired}`);
  t.is(r.reply!.totals.unrepaired, 0);
  t.is(r.reply!.totals.badPages, 0, 'a shallow pass reads no pages');

  const d1 = await digests();
  t.true(d1.every((d) => d === d1[0]), `every member's digest is equal now (${d1.join(', ')})`);
  for (const m of members) {
    const rr = await recoveryRead(c, m, extent, page);
    t.is(rr.h.status, Status.Ok);
    t.true(rr.payload.equals(newer), `partition ${m} holds the newest version of page ${page}`);
  }
  const primaryNode = view.nodeOf(members[0]);
  const lines = (await nodeLog(c.dir, primaryNode)).filter((l) => l.volume === record.id && l.extent === extent);
  t.true(lines.some((l) => l.msg === 'scrub: copies differ; reconciling (newest version of each page wins)' && Array.isArray(l.digests)), 'the primary logged the inconsistency with the digests');
});
