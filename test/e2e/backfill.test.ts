/**
 * Data follows the map (recovery issue, must-show 1 and 3), on real node processes:
 *
 * 1. `node out` of one node of four under a fio randwrite + crc32c verify run over NBD:
 *    backfill puts 3 copies of every extent on the remaining nodes, fio sees no error, the
 *    out node's copies are trimmed (its space comes back); `node in` moves data back
 *    (rebalance) and the copies that stood in are trimmed — every extent ends with exactly
 *    its three placed copies, identical.
 * 2. A receiving node killed (-9) halfway through a throttled backfill restarts and the
 *    backfill finishes: the bytes sent in total stay within 1.2× the bytes placement says
 *    must move, and every copy is identical at the end.
 * 3. `addNode` (what `cairn node add` does) to four nodes under fio verify: the extent
 *    copies made are within 1.05× of placement's own prediction for the two maps, nothing
 *    else moves, and fio sees no error.
 * 4. A device out: extents move between devices of one node too, and reads never see zeros.
 */
import test from 'ava';
import { ApiClient } from '../../src/api/index.ts';
import { LocalCluster } from '../../src/cluster/index.ts';
import type { ClusterView } from '../../src/initiator/index.ts';
import { NbdServer } from '../../src/nbd/index.ts';
import { predictMoves, type NodeRecoveryReport } from '../../src/recovery/index.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';
import { until } from '../helpers/cluster.ts';
import { compareMembers, recoveryReport } from '../helpers/recovery.ts';
import { have, run } from '../helpers/tools.ts';
import { slowSerial } from '../helpers/slow.ts';

const MiB = 1024 * 1024;
const MEMBERSHIP = { heartbeatMs: 250, downAfterMs: 1200, digestMs: 250 };
const EXTENTS = 64;

function api(cluster: LocalCluster): ApiClient {
  const n = cluster.config.nodes[0];
  return new ApiClient(`http://${n.host}:${n.apiPort}`, cluster.config.token, 10000);
}

async function change(cluster: LocalCluster, body: object): Promise<number> {
  const r = await api(cluster).call<{ epoch: number }>('POST', '/v1/map/changes', body);
  return r.epoch;
}

/** Reports of every node the initiator's map marks up (null entries for those that did not answer). */
async function reports(cluster: LocalCluster): Promise<Array<NodeRecoveryReport | null>> {
  const up = cluster.view.map.nodes.filter((n) => n.up).map((n) => n.id);
  return Promise.all(up.map((id) => recoveryReport(cluster, id)));
}

/** Copies held by a node that placement does not put there, per the initiator's current map. */
function misplaced(view: ClusterView, rs: NodeRecoveryReport[], pool: number): string[] {
  const out: string[] = [];
  for (const r of rs) {
    for (const [v, e] of r.held) {
      if (!view.members(v, e, pool).some((m) => view.nodeOf(m) === r.node)) out.push(`node ${r.node} holds extent ${e} of volume ${v}`);
    }
  }
  return out;
}

/**
 * Waits until the map has reached `epoch` everywhere and data movement is over: every up node
 * answers at that epoch, is not peering, has nothing stale and no pass active but scrub, and
 * no copy is misplaced. @returns the last reports, or the reason it did not settle.
 */
async function settled(cluster: LocalCluster, epoch: number, timeoutMs: number): Promise<{ ok: boolean; why: string; reports: NodeRecoveryReport[] }> {
  const end = Date.now() + timeoutMs;
  let why = '';
  let last: NodeRecoveryReport[] = [];
  while (Date.now() < end) {
    if (cluster.view.epoch < epoch) await cluster.follower!.refresh(epoch).catch(() => undefined);
    if (cluster.view.epoch < epoch) {
      why = `this test's map is at epoch ${cluster.view.epoch}, not ${epoch}`;
      await new Promise((r) => setTimeout(r, 250));
      continue;
    }
    const rs = await reports(cluster);
    last = rs.filter((r): r is NodeRecoveryReport => r !== null);
    const busy = last.filter((r) => r.epoch < epoch || r.peering || r.stale.length > 0 || r.progress.some((p) => p.active && p.kind !== 'scrub'));
    const extra = rs.every((r) => r) ? misplaced(cluster.view, last, 0) : ['a node did not answer'];
    if (busy.length === 0 && extra.length === 0) return { ok: true, why: '', reports: last };
    why = busy.length ? `busy: ${busy.map((r) => `node ${r.node} (epoch ${r.epoch}, stale ${r.stale.length}, ${r.progress.filter((p) => p.active).map((p) => `${p.kind} ${p.extentsDone}/${p.extentsTotal}`).join(' ')})`).join('; ')}` : `misplaced: ${extra.slice(0, 5).join('; ')} (${extra.length})`;
    await new Promise((r) => setTimeout(r, 250));
  }
  return { ok: false, why, reports: last };
}

const fioArgs = (uri: string, extra: string[]): string[] => ['--name=bf', '--ioengine=nbd', `--uri=${uri}`, '--output-format=json', ...extra];

/** Starts a 4-node cluster with vol0 filled (64 extents of 1 MiB) and exported over NBD. */
async function filledCluster(t: { is: (a: unknown, b: unknown, m?: string) => void }, supervise: boolean): Promise<{ cluster: LocalCluster; nbd: NbdServer; uri: string; done: () => Promise<void> }> {
  const { dir, cleanup } = tempDataDir();
  const cluster = await LocalCluster.start({ dataDir: dir, layout: { nodes: 4, deviceBytes: 256 * MiB, volumeBytes: EXTENTS * MiB, membership: MEMBERSHIP }, supervise, startTimeoutMs: 90000 });
  const volume = await cluster.attach('vol0');
  const nbd = new NbdServer({});
  nbd.addExport('vol0', volume);
  const port = await nbd.listen(0, '127.0.0.1');
  const uri = `nbd://127.0.0.1:${port}/vol0`;
  const r = await run('fio', fioArgs(uri, ['--rw=write', '--bs=1m', `--size=${EXTENTS}m`, '--iodepth=4']));
  t.is(r.code, 0, r.stderr);
  return {
    cluster, nbd, uri,
    done: async () => {
      await nbd.close();
      volume.close();
      await cluster.stop();
      cleanup();
    },
  };
}

test.serial('node out under fio verify: backfill to 3 copies on the rest, out copies trimmed; node in moves data back and stand-in copies are trimmed', async (t) => {
  t.timeout(600000);
  t.true(await have('fio'), 'fio is not installed (.ci/run installs it)');
  const { cluster, uri, done } = await filledCluster(t, false);
  try {
    const fio = run('fio', fioArgs(uri, ['--rw=randwrite', '--bs=4k', '--size=16m', '--iodepth=16', '--verify=crc32c', '--verify_fatal=1',
      '--verify_state_save=0', '--fsync=32', '--loops=3', '--rate_iops=1000']));
    await new Promise((r) => setTimeout(r, 1000)); // let fio start writing before the change
    const outEpoch = await change(cluster, { type: 'out', node: 3 });
    const s1 = await settled(cluster, outEpoch, 180000);
    t.true(s1.ok, `backfill after out did not settle: ${s1.why}`);
    let r = await fio;
    t.is(r.code, 0, `fio failed during backfill: ${r.stderr}${r.stdout.slice(-1500)}`);
    // 3 copies of every extent on nodes 0-2, identical; node 3 holds nothing any more.
    const view = cluster.view;
    for (let x = 0; x < EXTENTS; x++) t.deepEqual(view.members(1, x, 0).map((m) => view.nodeOf(m)).sort(), [0, 1, 2]);
    t.deepEqual(await compareMembers(cluster, { name: 'vol0' }, EXTENTS), [], 'every extent identical on its three members');
    const r3 = s1.reports.find((x) => x.node === 3)!;
    t.deepEqual(r3.held.filter(([v]) => v === 1), [], 'the out node trimmed its copies');
    t.true(r3.traffic.trimmedBytes > 0, 'trimmed bytes counted');
    const backfilled = s1.reports.reduce((a, x) => a + x.progress.find((p) => p.kind === 'backfill')!.extentsDone, 0);
    t.log(`backfill: ${backfilled} extents copied, node 3 trimmed ${r3.traffic.trimmedExtents} extents (${r3.traffic.trimmedBytes / MiB} MiB)`);
    t.true(backfilled >= 1 && backfilled <= EXTENTS, `backfilled ${backfilled}`);

    // Back in: rebalance moves the extents placed on node 3 back; the stand-ins are trimmed.
    const inEpoch = await change(cluster, { type: 'in', node: 3 });
    const s2 = await settled(cluster, inEpoch, 180000);
    t.true(s2.ok, `rebalance after in did not settle: ${s2.why}`);
    t.deepEqual(await compareMembers(cluster, { name: 'vol0' }, EXTENTS), [], 'every extent identical after moving back');
    // vol0's copies (the catalog, volume 0, is placed and trimmed the same way but is not counted).
    const copies = s2.reports.reduce((a, x) => a + x.held.filter(([v]) => v === 1).length, 0);
    t.is(copies, EXTENTS * 3, 'exactly three copies of every extent: the stand-in copies were trimmed');
    t.true(s2.reports.find((x) => x.node === 3)!.held.length > 0, 'node 3 holds data again');
    r = await run('fio', fioArgs(uri, ['--rw=randwrite', '--bs=4k', '--size=16m', '--verify=crc32c', '--verify_only', '--verify_state_save=0']));
    t.is(r.code, 0, `verify after moving back: ${r.stderr}${r.stdout.slice(-1500)}`);
  } finally {
    await done();
  }
});

slowSerial('receiving node killed halfway through a throttled backfill: it resumes, bytes sent ≤ 1.2× the bytes to move, copies identical', async (t) => {
  t.timeout(600000);
  t.true(await have('fio'), 'fio is not installed (.ci/run installs it)');
  const { cluster, done } = await filledCluster(t, true);
  try {
    // 2 MiB/s per receiving node: a backfill of ~48 MiB over three receivers takes ~8 s.
    await change(cluster, { type: 'settings', settings: { recoveryBytesPerSec: 2 * MiB } });
    const before = cluster.view;
    const outEpoch = await change(cluster, { type: 'out', node: 3 });
    await cluster.follower!.refresh(outEpoch);
    const after = cluster.view;
    // What placement says must move: each new member of each extent copies it whole.
    let toMove = 0;
    for (let x = 0; x < EXTENTS; x++) {
      const was = before.members(1, x, 0);
      toMove += after.members(1, x, 0).filter((m) => !was.includes(m)).length * MiB;
    }
    // Halfway: the receiver with the most to do has done 40%.
    let victim = -1;
    let sentBefore = 0;
    const end = Date.now() + 60000;
    while (victim < 0 && Date.now() < end) {
      const rs = (await reports(cluster)).filter((r): r is NodeRecoveryReport => r !== null);
      for (const r of rs) {
        const b = r.progress.find((p) => p.kind === 'backfill')!;
        if (b.active && b.bytesTotal > 0 && b.bytesDone >= 0.4 * b.bytesTotal && b.bytesDone < 0.8 * b.bytesTotal) {
          victim = r.node;
          sentBefore = r.traffic.bytesOut;
          t.log(`killing node ${r.node} at ${b.bytesDone / MiB}/${b.bytesTotal / MiB} MiB of its backfill`);
          break;
        }
      }
      if (victim < 0) await new Promise((r) => setTimeout(r, 100));
    }
    t.true(victim >= 0, 'a receiver reached the halfway point');
    const pid = cluster.pidOf(victim)!;
    process.kill(pid, 'SIGKILL');
    t.true(await until(() => cluster.restarts(victim) >= 1, 60000), 'the supervisor restarted the receiver');
    await change(cluster, { type: 'settings', settings: { recoveryBytesPerSec: 64 * MiB } });
    const s = await settled(cluster, outEpoch, 240000);
    t.true(s.ok, `backfill did not finish after the restart: ${s.why}`);
    const sent = s.reports.reduce((a, r) => a + r.traffic.bytesOut, 0) + sentBefore;
    t.log(`bytes to move ${toMove / MiB} MiB, sent ${(sent / MiB).toFixed(1)} MiB (${(sent / toMove).toFixed(2)}×)`);
    t.true(toMove > 0);
    t.true(sent <= 1.2 * toMove, `sent ${sent} bytes for ${toMove} to move`);
    t.deepEqual(await compareMembers(cluster, { name: 'vol0' }, EXTENTS), [], 'every extent identical on its members');
  } finally {
    await done();
  }
});

slowSerial('device out: extents move to the other device of the same node and to other nodes; reads never see zeros', async (t) => {
  t.timeout(300000);
  const { dir, cleanup } = tempDataDir();
  const cluster = await LocalCluster.start({ dataDir: dir, layout: { nodes: 3, devicesPerNode: 2, deviceBytes: 128 * MiB, volumeBytes: 32 * MiB, membership: MEMBERSHIP } });
  const volume = await cluster.attach('vol0');
  try {
    const data = Buffer.alloc(32 * MiB);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE(i / 4096 + 1, i);
    await volume.write(0, data);
    await volume.flush();
    const epoch = await change(cluster, { type: 'out', node: 0, device: 1 });
    // Reads during the move: always the data, never zeros.
    const reader = (async () => {
      let reads = 0;
      while (!(await settled(cluster, epoch, 1)).ok && reads < 200) {
        const x = Math.floor(Math.random() * 32);
        t.true((await volume.read(x * MiB, MiB)).equals(data.subarray(x * MiB, (x + 1) * MiB)), `extent ${x} read during the move`);
        reads++;
      }
      return reads;
    })();
    const s = await settled(cluster, epoch, 120000);
    t.true(s.ok, `device out did not settle: ${s.why}`);
    t.log(`${await reader} reads during the move`);
    const view = cluster.view;
    for (let x = 0; x < 32; x++) t.false(view.members(1, x, 0).some((m) => view.nodeOf(m) === 0 && ((m >>> 8) & 0xff) === 1), `extent ${x} still placed on the out device`);
    t.deepEqual(await compareMembers(cluster, { name: 'vol0' }, 32), [], 'every extent identical on its members');
    t.true((await volume.read(0, 32 * MiB)).equals(data), 'the volume reads back whole');
  } finally {
    volume.close();
    await cluster.stop();
    cleanup();
  }
});

slowSerial('node add under fio verify: copies made ≤ 1.05× placement\'s prediction, nothing else moves', async (t) => {
  t.timeout(600000);
  t.true(await have('fio'), 'fio is not installed (.ci/run installs it)');
  const { cluster, uri, done } = await filledCluster(t, false);
  try {
    const fio = run('fio', fioArgs(uri, ['--rw=randwrite', '--bs=4k', '--size=16m', '--iodepth=16', '--verify=crc32c', '--verify_fatal=1',
      '--verify_state_save=0', '--fsync=32', '--loops=2', '--rate_iops=1000']));
    const before = cluster.view;
    // Every extent held anywhere before the change, of every volume: the catalog's own
    // (volume 0, a few one-page extents) moves like vol0's.
    const heldBefore = new Map<number, Set<number>>();
    for (const r of await reports(cluster)) {
      for (const [v, e] of r?.held ?? []) {
        if (!heldBefore.has(v)) heldBefore.set(v, new Set());
        heldBefore.get(v)!.add(e);
      }
    }
    const id = await cluster.addNode();
    const epoch = (await api(cluster).call<{ epoch: number }>('GET', '/v1/map')).epoch;
    const s = await settled(cluster, epoch, 240000);
    t.true(s.ok, `rebalance after adding node ${id} did not settle: ${s.why}`);
    const after = cluster.view;
    t.is(after.map.nodes.length, 5);
    const predicted = predictMoves(before, after, [...heldBefore].map(([v, xs]) => ({ id: v, pool: 0, extents: [...xs] })));
    const kinds = (k: string): number => s.reports.reduce((a, r) => a + r.progress.find((p) => p.kind === k)!.extentsDone, 0);
    const copied = kinds('rebalance');
    const moved = s.reports.reduce((a, r) => a + r.traffic.bytesOut, 0);
    t.log(`placement predicts ${predicted.copies} extent copies (${predicted.extents} of ${predicted.total} extents); rebalance made ${copied}; ${(moved / MiB).toFixed(1)} MiB sent`);
    t.true(predicted.copies > 0, 'the new node gets data');
    t.true(copied >= predicted.copies && copied <= 1.05 * predicted.copies, `copied ${copied} for ${predicted.copies} predicted`);
    t.is(kinds('backfill'), 0, 'no backfill');
    t.true(moved <= 1.05 * predicted.copies * MiB, `sent ${moved} bytes for ${predicted.copies} MiB predicted`);
    t.true(s.reports.find((r) => r.node === id)!.held.length > 0, 'the new node holds extents');
    const r = await fio;
    t.is(r.code, 0, `fio failed during the rebalance: ${r.stderr}${r.stdout.slice(-1500)}`);
    t.deepEqual(await compareMembers(cluster, { name: 'vol0' }, EXTENTS), [], 'every extent identical on its members');
  } finally {
    await done();
  }
});
