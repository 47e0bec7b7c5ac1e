/**
 * Must-show "Corruption" (DESIGN promise 3: nothing corrupt is ever returned; a bad copy is
 * repaired from a good one), on real node processes: data pages of an extent are overwritten
 * with random bytes in a stopped member's device file, the member is started again, and
 *
 * - reads through the Volume return the right bytes;
 * - a host read of the bad member itself (over the wire, with the writer's lease and the
 *   placed members, so it can repair) returns the right bytes, and its log names the repair
 *   (volume, extent, partition, cause, source);
 * - a recovery read of that member afterwards (Flag.Recovery: no repair path) is good, so
 *   the copy was rewritten, not merely served around;
 * - with two of three copies bad, the third still serves the data (and repairs the others);
 * - with the balanced read policy, reads reach every copy, so host reads repair bad
 *   secondaries too.
 */
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { LocalCluster } from '../../src/cluster/index.ts';
import { Flag, Op, Status, WireClient, type Reply, type RequestHeader } from '../../src/wire/index.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';
import { corruptPages, nodeLog, waitMarkedDown, waitSettled } from '../helpers/device.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const PAGE = 4096;
/** Bytes of each write: 16 pages. */
const CHUNK = 64 * KiB;
const WRITES = 16;

/**
 * Logs what a failed expectation needs to be understood: the volume's failover counters and
 * the named nodes' log lines about peering, currency, map changes and repairs.
 */
async function explain(t: ExecutionContext, dir: string, nodes: number[], counters: object): Promise<void> {
  t.log(`volume counters: ${JSON.stringify(counters)}`);
  for (const n of nodes) {
    const lines = (await nodeLog(dir, n)).filter((l) => (l.level as number) >= 40 || /peer|repair|epoch|map|current|stale/i.test(String(l.msg)));
    for (const l of lines.slice(-40)) t.log(`node ${n}: ${JSON.stringify(l)}`);
  }
}

test('a corrupt copy is never returned: it is repaired from another member and rewritten', async (t) => {
  t.timeout(240000);
  const { dir, cleanup } = tempDataDir();
  const cluster = await LocalCluster.start({ dataDir: dir, layout: { deviceBytes: 256 * MiB, volumeBytes: 64 * MiB } });
  const clients = new Map<number, WireClient>();
  try {
    const record = cluster.config.volumes.find((v) => v.name === 'vol0')!;
    // The plan below (which copy a Volume read meets first) needs reads to go to the primary
    // first; the balanced policy (the default) is checked at the end with extent D.
    const volume = await cluster.attach('vol0', { readPolicy: 'primary' });

    // 16 × 64 KiB of random data, one write per extent (extents 0, 4, ..., 60), at varying pages.
    const writes = Array.from({ length: WRITES }, (_, i) => ({ offset: i * 4 * record.extentBytes + (i % 4) * CHUNK, data: randomBytes(CHUNK) }));
    for (const w of writes) await volume.write(w.offset, w.data);
    await volume.flush();
    const extentOf = (w: (typeof writes)[number]): number => Math.floor(w.offset / record.extentBytes);
    const firstPageOf = (w: (typeof writes)[number]): number => (w.offset % record.extentBytes) / PAGE;
    const pagesOf = (w: (typeof writes)[number]): Buffer[] => Array.from({ length: CHUNK / PAGE }, (_, p) => w.data.subarray(p * PAGE, (p + 1) * PAGE));

    // A: a secondary copy bad (host reads go to the primary; the direct read repairs it).
    // B: the primary copy bad (the host read through the Volume meets it and repairs it).
    // C: primary and secondary bad (only the third copy is good).
    // D: secondary and third bad, the primary good (never met by primary-first reads; three
    //    balanced reads ask each member first once, so they repair both).
    const view = cluster.view;
    const placed = writes.map((w) => view.members(record.id, extentOf(w), record.pool));
    t.true(placed.every((m) => m.length === 3 && new Set(m.map((x) => view.nodeOf(x))).size === 3), 'three copies on three nodes');
    // The bad copies avoid one node (the map authority's), which stays up throughout.
    const keeper = cluster.config.authority?.node ?? 0;
    const pick = (ok: (m: number[]) => boolean, not: number[]): number => {
      const i = placed.findIndex((m, j) => !not.includes(j) && ok(m.map((x) => view.nodeOf(x))));
      if (i < 0) throw new Error('no written extent with the placement this test needs');
      return i;
    };
    const iC = pick((n) => n[2] === keeper, []);
    const iA = pick((n) => n[1] !== keeper, [iC]);
    const iB = pick((n) => n[0] !== keeper, [iC, iA]);
    const iD = pick((n) => n[0] === keeper, [iC, iA, iB]);
    const [A, B, C, D] = [writes[iA], writes[iB], writes[iC], writes[iD]];
    const plan: Array<{ w: (typeof writes)[number]; leaf: number }> = [
      { w: A, leaf: placed[iA][1] },
      { w: B, leaf: placed[iB][0] },
      { w: C, leaf: placed[iC][0] },
      { w: C, leaf: placed[iC][1] },
      { w: D, leaf: placed[iD][1] },
      { w: D, leaf: placed[iD][2] },
    ];
    const victims = [...new Set(plan.map((p) => view.nodeOf(p.leaf)))];
    t.log(`extents: A ${extentOf(A)} (bad secondary), B ${extentOf(B)} (bad primary), C ${extentOf(C)} (bad primary and secondary), D ${extentOf(D)} (bad secondary and third); nodes stopped: ${victims.join(', ')}`);

    // Stop the members gracefully, wait until the map marks them down (so that no mark-down
    // lands while the test reads), overwrite their copies' pages in the device files, start
    // them again.
    let t0 = Date.now();
    await Promise.all(victims.map((n) => cluster.stopNode(n)));
    t.true(await waitMarkedDown(cluster, victims, 60000), `the map marks nodes ${victims.join(', ')} down`);
    for (const { w, leaf } of plan) {
      const hits = await corruptPages(cluster, leaf, pagesOf(w));
      t.is(hits.length, CHUNK / PAGE, `every page of extent ${extentOf(w)} found once in partition ${leaf} and overwritten`);
    }
    await Promise.all(victims.map((n) => cluster.startNode(n)));
    t.true(await cluster.waitPeered(victims, 60000), `nodes ${victims.join(', ')} peered after their restart`);
    t.true(await waitSettled(cluster, 60000), 'every node holds the same map with every node up');
    t.log(`stop, corrupt, start, peer: ${Date.now() - t0} ms`);
    t0 = Date.now();

    const client = async (node: number): Promise<WireClient> => {
      let c = clients.get(node);
      if (!c || !c.alive) {
        const n = cluster.view.address(node)!;
        c = new WireClient({ host: n.host, port: n.port, token: cluster.config.token });
        await c.connect();
        clients.set(node, c);
      }
      return c;
    };
    /** A read of `w`'s pages from partition `leaf`, repeated on StaleEpoch with the node's epoch. */
    const readMember = async (w: (typeof writes)[number], leaf: number, over: Partial<RequestHeader>): Promise<Reply> => {
      const c = await client(cluster.view.nodeOf(leaf));
      let epoch = cluster.view.epoch;
      for (let i = 0; ; i++) {
        const r = await c.request({ op: Op.Read, flags: 0, epoch, volume: record.id, extent: extentOf(w), partition: leaf, firstPage: firstPageOf(w), pages: CHUNK / PAGE, lease: volume.leaseGeneration, version: 0, members: [], ...over });
        if (r.h.status !== Status.StaleEpoch || i >= 5) return r;
        epoch = r.h.aux;
      }
    };
    const repairLines = async (node: number, w: (typeof writes)[number], leaf: number): Promise<Array<Record<string, unknown>>> =>
      (await nodeLog(dir, node)).filter((l) => l.msg === 'read repair: bad copy served from another member and rewritten' && l.volume === record.id && l.extent === extentOf(w) && l.partition === leaf);

    // Before any host read, the bad copies are bad: a recovery read (no repair) says so.
    for (const { w, leaf } of plan) {
      const r = await readMember(w, leaf, { flags: Flag.Recovery, lease: 0 });
      t.is(r.h.status, Status.BadChecksum, `partition ${leaf} serves its corrupt copy of extent ${extentOf(w)} to nobody (recovery read: BadChecksum)`);
    }

    // Every read through the Volume returns the right bytes (B's and C's primaries repair on the way).
    for (const w of writes) t.true((await volume.read(w.offset, CHUNK)).equals(w.data), `volume read of extent ${extentOf(w)}`);
    const whole = await volume.read(0, record.sizeBytes);
    t.true(writes.every((w) => whole.subarray(w.offset, w.offset + CHUNK).equals(w.data)), 'a whole-volume read too');

    // A: the bad secondary, read directly as a host read with the writer's lease and the placed members.
    const aLeaf = placed[iA][1];
    const aNode = view.nodeOf(aLeaf);
    t.deepEqual(await repairLines(aNode, A, aLeaf), [], 'the volume reads did not touch the secondary of A');
    const direct = await readMember(A, aLeaf, { members: placed[iA] });
    t.is(direct.h.status, Status.Ok, 'the host read of the bad member succeeds');
    t.true(direct.payload.equals(A.data), 'and returns the right bytes');
    const lines = await repairLines(aNode, A, aLeaf);
    t.is(lines.length, 1, `node ${aNode}'s log has one read-repair line for extent ${extentOf(A)} on partition ${aLeaf}`);
    t.regex(String(lines[0]?.cause), /checksum mismatch/, 'naming the cause');
    t.true(placed[iA].includes(lines[0]?.source as number) && lines[0]?.source !== aLeaf, `and another member as the source (${String(lines[0]?.source)})`);
    t.is(lines[0]?.firstPage, firstPageOf(A));
    t.is(lines[0]?.pages, CHUNK / PAGE);
    const again = await readMember(A, aLeaf, { flags: Flag.Recovery, lease: 0 });
    t.is(again.h.status, Status.Ok, 'a recovery read (no repair path) of the same member is good now: the copy was rewritten');
    t.true(again.payload.equals(A.data));

    // B: the bad primary was repaired by the Volume's read.
    const bLeaf = placed[iB][0];
    const bLines = await repairLines(view.nodeOf(bLeaf), B, bLeaf);
    if (bLines.length !== 1) await explain(t, dir, [view.nodeOf(bLeaf)], volume.counters);
    t.is(bLines.length, 1, `the primary of extent ${extentOf(B)} logged its repair`);
    t.regex(String(bLines[0]?.cause), /checksum mismatch/);
    const bAgain = await readMember(B, bLeaf, { flags: Flag.Recovery, lease: 0 });
    t.is(bAgain.h.status, Status.Ok, 'and its copy was rewritten');
    t.true(bAgain.payload.equals(B.data));

    // C: two bad copies; the third served the repair of the primary.
    const [c0, c1, c2] = placed[iC];
    const cLines = await repairLines(view.nodeOf(c0), C, c0);
    if (cLines.length !== 1) await explain(t, dir, [view.nodeOf(c0), view.nodeOf(c1)], volume.counters);
    t.is(cLines.length, 1, `the primary of extent ${extentOf(C)} logged its repair`);
    t.is(cLines[0]?.source, c2, 'from the only good copy (the second one was bad too)');
    const third = await readMember(C, c2, { flags: Flag.Recovery, lease: 0 });
    t.is(third.h.status, Status.Ok, 'the third copy serves it');
    t.true(third.payload.equals(C.data));
    const stillBad = await readMember(C, c1, { flags: Flag.Recovery, lease: 0 });
    t.is(stillBad.h.status, Status.BadChecksum, 'the second copy is still bad (nobody read it as a host yet)');
    const c1Read = await readMember(C, c1, { members: placed[iC] });
    t.is(c1Read.h.status, Status.Ok, 'a host read of it repairs it');
    t.true(c1Read.payload.equals(C.data));
    const c1Again = await readMember(C, c1, { flags: Flag.Recovery, lease: 0 });
    t.is(c1Again.h.status, Status.Ok);
    t.true(c1Again.payload.equals(C.data), 'now all three copies of C are good');

    // Pages outside the written ranges were never touched, and the whole data set reads back.
    for (const w of writes) t.true((await volume.read(w.offset, CHUNK)).equals(w.data), `volume read of extent ${extentOf(w)} after the repairs`);
    for (const leaf of placed[iD].slice(1)) {
      t.is((await readMember(D, leaf, { flags: Flag.Recovery, lease: 0 })).h.status, Status.BadChecksum, `primary-first reads left D's copy on partition ${leaf} bad`);
    }
    volume.close();

    // D under the balanced read policy: three reads start at each member once, so the two bad
    // copies are met by host reads, served right and rewritten.
    const balanced = await cluster.attach('vol0', { readPolicy: 'balance' });
    for (let i = 0; i < 3; i++) t.true((await balanced.read(D.offset, CHUNK)).equals(D.data), `balanced read ${i} of extent ${extentOf(D)}`);
    for (const leaf of placed[iD]) {
      const r = await readMember(D, leaf, { flags: Flag.Recovery, lease: 0 });
      t.is(r.h.status, Status.Ok, `D's copy on partition ${leaf} is good after the balanced reads`);
      t.true(r.payload.equals(D.data));
    }
    for (const leaf of placed[iD].slice(1)) t.is((await repairLines(view.nodeOf(leaf), D, leaf)).length, 1, `partition ${leaf} logged one repair of D`);
    balanced.close();
    t.log(`reads and repairs: ${Date.now() - t0} ms`);
  } finally {
    for (const c of clients.values()) c.close();
    await cluster.stop();
    cleanup();
  }
});
