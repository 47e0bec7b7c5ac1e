/**
 * Must-show 1 and 2 of the replication issue, on real node processes under supervision:
 *
 * 1. `kill -9` of one node (3 replicas) during a fio randwrite + crc32c verify run over NBD:
 *    fio finishes with no error, the supervisor restarts the node, and log-guided resync
 *    copies only the extents written while it was down (printed next to the number of
 *    extents the workload wrote in that window); afterwards every extent's copies are
 *    identical, compared member by member (page versions and bytes).
 * 2. The sequence that used to lose data: kill node 1 under writes, let it return and
 *    resync, then kill node 2: every write acknowledged before the last completed flush
 *    reads back — no zeros, no error.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { cpSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalCluster } from '../../src/cluster/index.ts';
import { ApiClient } from '../../src/api/index.ts';
import { NbdServer } from '../../src/nbd/index.ts';
import type { BlockDevice } from '../../src/volume/index.ts';
import type { Volume } from '../../src/initiator/index.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';
import { eventually, until } from '../helpers/cluster.ts';
import { compareMembers, readOnNode, recoveryReport, resyncDone } from '../helpers/recovery.ts';
import { have, run } from '../helpers/tools.ts';
import { slowSerial } from '../helpers/slow.ts';

const MiB = 1024 * 1024;
/** Fast failure detection so the killed node is marked down before the supervisor has it back. */
const MEMBERSHIP = { heartbeatMs: 250, downAfterMs: 1200, digestMs: 250 };

async function startCluster(dir: string, supervisorLines: string[]): Promise<LocalCluster> {
  return LocalCluster.start({
    dataDir: dir,
    layout: { deviceBytes: 512 * MiB, volumeBytes: 128 * MiB, membership: MEMBERSHIP },
    supervise: true,
    onSupervisor: (l) => supervisorLines.push(l),
  });
}

const report = recoveryReport;
const resynced = (cluster: LocalCluster, node: number, timeoutMs: number): Promise<boolean> => resyncDone(cluster, timeoutMs, [node]);

/**
 * Runs `body` against a fresh cluster (3 nodes unless `nodes`; fast failure detection) with
 * vol0 attached, then closes the volume, stops the cluster and removes its data directory.
 */
async function withVolume(opts: { nodes?: number; deviceBytes?: number; volumeBytes?: number }, body: (cluster: LocalCluster, volume: Volume, dir: string) => Promise<void>): Promise<void> {
  const { dir, cleanup } = tempDataDir();
  const cluster = opts.nodes
    ? await LocalCluster.start({ dataDir: dir, layout: { nodes: opts.nodes, deviceBytes: opts.deviceBytes ?? 256 * MiB, volumeBytes: opts.volumeBytes ?? 32 * MiB, membership: MEMBERSHIP } })
    : await startCluster(dir, []);
  const volume = await cluster.attach('vol0');
  try {
    await body(cluster, volume, dir);
  } finally {
    volume.close();
    await cluster.stop();
    cleanup();
  }
}

/** A BlockDevice that records when each extent was written (ms since 1970). */
function recording(dev: Volume, extentBytes: number, log: Array<[number, number]>): BlockDevice {
  return new Proxy(dev, {
    get(target, prop) {
      if (prop === 'write') {
        return async (offset: number, data: Buffer, fua?: boolean) => {
          await target.write(offset, data, fua);
          for (let x = Math.floor(offset / extentBytes); x * extentBytes < offset + data.length; x++) log.push([Date.now(), x]);
        };
      }
      // The target as receiver: Volume keeps its size in an ES private field (#size), which a
      // getter called on the proxy cannot read.
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  }) as BlockDevice;
}

slowSerial('kill -9 of a node during fio randwrite+verify: no error, supervised restart, resync of only what it missed, identical copies', async (t) => {
  t.timeout(600000);
  t.true(await have('fio'), 'fio is not installed (.ci/run installs it)');
  const { dir, cleanup } = tempDataDir();
  const lines: string[] = [];
  const cluster = await startCluster(dir, lines);
  const downAt: number[] = [];
  cluster.events.on('map', (e: { node: number; down: number[]; at: number }) => {
    if (e.node === 0 && e.down.includes(1)) downAt.push(e.at);
  });
  let peeredAt = 0;
  cluster.events.on('peered', (e: { node: number }) => {
    if (e.node === 1) peeredAt = Date.now();
  });
  const volume = await cluster.attach('vol0');
  const rec = cluster.config.volumes[0];
  const writes: Array<[number, number]> = [];
  const nbd = new NbdServer({});
  nbd.addExport('vol0', recording(volume, rec.extentBytes, writes));
  const port = await nbd.listen(0, '127.0.0.1');
  const uri = `nbd://127.0.0.1:${port}/vol0`;
  try {
    // Every extent holds data first, so a full copy would be 128 extents.
    let r = await run('fio', ['--name=fill', '--ioengine=nbd', `--uri=${uri}`, '--rw=write', '--bs=1m', '--size=128m', '--iodepth=4', '--output-format=json']);
    t.is(r.code, 0, r.stderr);
    // Random writes to the first 16 extents, with verify and a flush every 32 writes.
    const fio = run('fio', ['--name=degraded', '--ioengine=nbd', `--uri=${uri}`, '--rw=randwrite', '--bs=4k', '--size=16m', '--iodepth=16',
      '--verify=crc32c', '--verify_fatal=1', '--verify_state_save=0', '--fsync=32', '--loops=4', '--rate_iops=1500', '--output-format=json']);
    const startWrites = writes.length;
    t.true(await until(() => writes.length > startWrites + 1500, 60000), 'fio is writing');
    const before = cluster.pidOf(1)!;
    process.kill(before, 'SIGKILL');
    t.true(await until(() => cluster.restarts(1) >= 1, 60000), 'the supervisor restarted node 1');
    r = await fio;
    t.is(r.code, 0, `fio failed: ${r.stderr}${r.stdout.slice(-2000)}`);
    const job = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))).jobs[0];
    t.is(job.error, 0);
    t.true(await resynced(cluster, 1, 120000), 'node 1 caught up and nobody owes it a resync');
    t.true(lines.some((l) => /node 1 exited .*SIGKILL.*restarting/.test(l)), lines.join('\n'));
    t.true(lines.some((l) => /node 1 restarted/.test(l)), lines.join('\n'));
    t.true(downAt.length > 0, 'node 1 was marked down while it was away');

    // What it pulled vs what was written while it was away (down → peered again).
    const r1 = (await report(cluster, 1))!;
    const window = new Set(writes.filter(([at]) => at >= downAt[0] - 200 && at <= peeredAt + 200).map(([, x]) => x));
    t.log(`resync pulled ${r1.recovered.extents} extents (${r1.recovered.pages} pages); the workload wrote ${window.size} distinct extents while node 1 was down; the volume holds 128`);
    t.true(r1.recovered.extents >= 1, 'something was resynced');
    t.true(r1.recovered.extents <= window.size, 'only extents written in the window were copied');
    t.true(r1.recovered.extents < 128, 'not a full copy');

    const diffs = await compareMembers(cluster, volume, 128);
    t.deepEqual(diffs, [], 'every extent identical on its three members');

    r = await run('fio', ['--name=degraded', '--ioengine=nbd', `--uri=${uri}`, '--rw=randwrite', '--bs=4k', '--size=16m', '--verify=crc32c', '--verify_only', '--verify_state_save=0', '--output-format=json']);
    t.is(r.code, 0, `verify after resync: ${r.stderr}${r.stdout.slice(-1500)}`);
  } finally {
    await nbd.close();
    volume.close();
    await cluster.stop();
    cleanup();
  }
});

test.serial('kill node 1 under writes, let it resync, then kill node 2: every write acknowledged before the last flush reads back', async (t) => {
  t.timeout(600000);
  const { dir, cleanup } = tempDataDir();
  const lines: string[] = [];
  const cluster = await startCluster(dir, lines);
  const volume = await cluster.attach('vol0');
  const BLOCK = 16 * 1024;
  const slots = (128 * MiB) / BLOCK;
  /** Newest acknowledged content per slot. */
  const acked = new Map<number, Buffer>();
  let stop = false;
  let errors = 0;
  const writer = async (): Promise<void> => {
    while (!stop) {
      const slot = Math.floor(Math.random() * slots);
      const data = randomBytes(BLOCK);
      try {
        await volume.write(slot * BLOCK, data);
        acked.set(slot, data);
      } catch (e) {
        errors++;
        t.log(`write error: ${(e as Error).message}`);
      }
    }
  };
  try {
    const writers = Array.from({ length: 8 }, writer);
    await until(() => acked.size > 500, 60000);
    await cluster.stopNode(1, 'SIGKILL'); // an operator-style kill: no supervisor restart yet
    const afterKill = acked.size;
    await until(() => acked.size > afterKill + 1500, 60000);
    await cluster.startNode(1);
    t.true(await resynced(cluster, 1, 120000), 'node 1 resynced');
    await volume.flush();
    stop = true;
    await Promise.all(writers);
    await volume.flush();
    const snapshot = new Map(acked);
    t.is(errors, 0, 'no write failed while node 1 was down or resyncing');
    t.true(volume.counters.degradedWrites > 0, 'writes went on degraded while node 1 was down');
    t.log(`${volume.counters.degradedWrites} degraded writes, ${volume.counters.memberRetries} member retries`);

    // Now lose node 2 instead: node 1 must serve what it missed while it was down.
    await cluster.stopNode(2, 'SIGKILL');
    let zeros = 0;
    let wrong = 0;
    for (const [slot, data] of snapshot) {
      const got = await volume.read(slot * BLOCK, BLOCK);
      if (got.equals(data)) continue;
      if (got.every((b) => b === 0)) zeros++;
      else wrong++;
    }
    t.log(`${snapshot.size} acknowledged blocks of 16 KiB read back with node 2 killed (node 1 down for part of their writes)`);
    t.is(zeros, 0, 'no acknowledged block reads as zeros');
    t.is(wrong, 0, 'no acknowledged block reads other bytes');
  } finally {
    stop = true;
    volume.close();
    await cluster.stop();
    cleanup();
  }
});

test.serial('out, writes on two members, in again: the returning node compares every extent placed on it before it serves them', async (t) => {
  t.timeout(300000);
  await withVolume({}, async (cluster, volume, dir) => {
    const api = new ApiClient(`http://127.0.0.1:${cluster.config.nodes[0].apiPort}`, cluster.config.token);
    const a = randomBytes(32 * MiB);
    await volume.write(0, a);
    await volume.flush();
    const out = await api.call<{ epoch: number }>('POST', '/v1/map/changes', { type: 'out', node: 2 });
    t.true(await until(() => cluster.view.epoch >= out.epoch, 10000));
    // Node 2 is out: every extent lives on nodes 0 and 1 only; overwrite half, trim a little.
    const b = randomBytes(16 * MiB);
    await volume.write(8 * MiB, b);
    await volume.trim(30 * MiB, MiB);
    await volume.flush();
    t.true(volume.counters.degradedWrites > 0, 'undersized writes');
    // Node 2's copies are misplaced now, but the extents are undersized (2 of 3 members):
    // a whole trim pass over them (started after the writes) must keep every copy.
    const passes = (await report(cluster, 2))!.traffic.trimPasses;
    t.true(await eventually(async () => (await report(cluster, 2))!.traffic.trimPasses >= passes + 2, 30000, 250), 'a trim pass ran on node 2 while it was out');
    t.is((await report(cluster, 2))!.traffic.trimmedExtents, 0, 'no copy of an undersized extent trimmed');
    const back = await api.call<{ epoch: number }>('POST', '/v1/map/changes', { type: 'in', node: 2 });
    t.true(await until(() => cluster.view.epoch >= back.epoch, 10000));
    t.true(await resynced(cluster, 2, 120000), 'node 2 compared and pulled what changed while it was out');
    const r2 = (await report(cluster, 2))!;
    t.log(`node 2 pulled ${r2.recovered.extents} extents (${r2.recovered.pages} pages) after coming back in`);
    t.true(r2.recovered.extents >= 17 && r2.recovered.extents <= 32, 'the 17 changed extents, not all 32');
    t.deepEqual(await compareMembers(cluster, volume, 32), [], 'every extent identical on its members, node 2 included');
    // Reads served by node 2 itself (node 0 stopped) return the new data.
    await cluster.stopNode(0);
    const expect = Buffer.from(a);
    b.copy(expect, 8 * MiB);
    expect.fill(0, 30 * MiB, 31 * MiB);
    const { bad } = await readOnNode(cluster, 2, 1, 0, volume.leaseGeneration, expect, MiB);
    t.deepEqual(bad, [], 'node 2 serves the data written while it was out');
  });
});

test.serial('a resync cut halfway (the sender killed -9) resumes from the other member and completes; nothing half-pulled is served', async (t) => {
  t.timeout(300000);
  await withVolume({}, async (cluster, volume, dir) => {
    await volume.write(0, randomBytes(128 * MiB));
    await volume.flush();
    await cluster.stopNode(1, 'SIGKILL');
    // While node 1 is away every extent changes: it will have 128 extents to pull.
    const data = randomBytes(128 * MiB);
    await volume.write(0, data);
    await volume.flush();
    await cluster.startNode(1);
    // Kill a sender as soon as node 1 has pulled a few extents.
    t.true(await until(() => cluster.peered.has(1), 60000), 'node 1 peered');
    let pulled = 0;
    const end = Date.now() + 60000;
    while (Date.now() < end) {
      const r = await report(cluster, 1);
      pulled = r?.recovered.extents ?? 0;
      if (pulled >= 2) break;
    }
    await cluster.stopNode(2, 'SIGKILL'); // node 0 runs the map authority: kill the other sender
    t.log(`node 2 killed after node 1 had pulled ${pulled} of 128 extents`);
    t.true(pulled < 128, 'the pull was cut halfway');
    // Node 1 finishes from node 0 alone.
    const caughtUp = async (): Promise<boolean> => {
      const r = await report(cluster, 1);
      return !!r && !r.peering && r.stale.length === 0;
    };
    let ok = false;
    for (const stop = Date.now() + 120000; Date.now() < stop && !(ok = await caughtUp());) await new Promise((r) => setTimeout(r, 200));
    t.true(ok, 'node 1 caught up from node 0 alone');
    // Node 1 serves exactly the new data (host reads of its own copies, which it refuses while not current).
    const { bad, firstStatus } = await readOnNode(cluster, 1, 1, 0, volume.leaseGeneration, data, MiB);
    t.deepEqual(bad, [], `every extent on node 1 is whole and new (first bad: status ${firstStatus})`);
    // The killed sender returns: the records it still holds for node 1 are compared and dropped.
    await cluster.startNode(2);
    t.true(await resynced(cluster, 1, 120000), 'no node owes node 1 anything once node 0 is back');
    t.deepEqual(await compareMembers(cluster, volume, 128), [], 'every extent identical on its three members');
  });
});

test.serial('a node that loses what it had not made durable (power loss, simulated) compares every extent before serving again', async (t) => {
  t.timeout(300000);
  await withVolume({}, async (cluster, volume, dir) => {
    const snap = join(dir, 'node1.snapshot');
    const a = randomBytes(32 * MiB);
    await volume.write(0, a);
    await volume.flush();
    // Node 1's durable state at this point: what a power loss would take it back to.
    await cluster.stopNode(1);
    cpSync(join(dir, 'node1'), snap, { recursive: true });
    await cluster.startNode(1);
    t.true(await cluster.waitPeered([1], 60000));
    // Writes node 1 acknowledges but never makes durable: it loses power before the flush.
    const b = randomBytes(8 * MiB);
    await volume.write(4 * MiB, b);
    await cluster.stopNode(1, 'SIGKILL');
    await volume.flush(); // durable on nodes 0 and 2 once node 1 is marked down
    rmSync(join(dir, 'node1'), { recursive: true });
    renameSync(snap, join(dir, 'node1'));
    // On disk its state said "running" (it never stopped cleanly).
    const state = join(dir, 'node1', 'peering.json');
    writeFileSync(state, JSON.stringify({ ...JSON.parse(readFileSync(state, 'utf8')), clean: false }));
    await cluster.startNode(1);
    t.true(await resynced(cluster, 1, 120000), 'node 1 compared its extents and caught up');
    const r1 = (await report(cluster, 1))!;
    t.log(`node 1 pulled ${r1.recovered.extents} extents (${r1.recovered.pages} pages) after its simulated power loss`);
    t.true(r1.recovered.extents >= 8 && r1.recovered.extents < 32, 'the extents it lost, not all');
    const expect = Buffer.from(a);
    b.copy(expect, 4 * MiB);
    const { bad, firstStatus } = await readOnNode(cluster, 1, 1, 0, volume.leaseGeneration, expect, MiB);
    t.deepEqual(bad, [], `node 1 serves the writes it had lost (first bad: status ${firstStatus})`);
    t.deepEqual(await compareMembers(cluster, volume, 32), [], 'every extent identical on its members');
  });
});

slowSerial('out on a 4-node cluster: each replacement member is backfilled before it serves reads, and serves the data after', async (t) => {
  t.timeout(300000);
  await withVolume({ nodes: 4 }, async (cluster, volume, dir) => {
    const api = new ApiClient(`http://127.0.0.1:${cluster.config.nodes[0].apiPort}`, cluster.config.token);
    const data = randomBytes(32 * MiB);
    await volume.write(0, data);
    await volume.flush();
    const before = cluster.view;
    const out = await api.call<{ epoch: number }>('POST', '/v1/map/changes', { type: 'out', node: 3 });
    t.true(await until(() => cluster.view.epoch >= out.epoch, 10000));
    const after = cluster.view;
    // Extents that had a member on node 3 now have a replacement that held nothing of them.
    const moved = [...Array(32).keys()].filter((x) => before.members(1, x, 0).some((m) => before.nodeOf(m) === 3));
    t.true(moved.length > 0, 'node 3 held some extents');
    const gainers = new Set(moved.flatMap((x) => after.members(1, x, 0).map((m) => after.nodeOf(m)).filter((n) => !before.members(1, x, 0).some((m) => before.nodeOf(m) === n))));
    t.true(gainers.size > 0, 'some node gained extents');
    // Reads through the volume never see a replacement's empty copy.
    t.true((await volume.read(0, 32 * MiB)).equals(data), 'the volume reads the data right after out');
    t.true(await resynced(cluster, 3, 120000), 'replacements backfilled');
    for (const n of gainers) {
      const r = (await report(cluster, n))!;
      t.log(`node ${n} backfilled ${r.recovered.extents} extents (${r.recovered.pages} pages)`);
      t.true(r.recovered.extents > 0);
      const { bad, firstStatus } = await readOnNode(cluster, n, 1, 0, volume.leaseGeneration, data, MiB);
      t.deepEqual(bad, [], `node ${n} serves every extent placed on it (first bad: status ${firstStatus})`);
    }
    t.deepEqual(await compareMembers(cluster, volume, 32), [], 'every extent identical on its members');
  });
});
