/**
 * Must-show: clock skew. One node's clock runs ten minutes ahead, another's ten minutes
 * behind (the node test knob CAIRN_CLOCK_SKEW_MS, through LocalClusterOptions.nodeEnv).
 * Writes go on while the gateway (a fresh attachment, i.e. a new lease generation, every
 * round) and the members (a node stopped before each round's writes and restarted after, so
 * reads and writes move to other members and the returning node resyncs) change back and
 * forth, and no acknowledged write is lost: after each round every block reads back as that
 * round's data through the Volume and from every member directly, and every block's version
 * grows strictly from round to round although the nodes' clocks disagree by 20 minutes
 * (versions come from lease generations, never from clocks).
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalCluster } from '../../src/cluster/index.ts';
import type { Volume } from '../../src/initiator/index.ts';
import { decodeVersions } from '../../src/recovery/index.ts';
import { BlockDeviceError } from '../../src/volume/index.ts';
import { Flag, Op, Status, WireClient, statusName, versionGeneration, type Reply, type RequestHeader } from '../../src/wire/index.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';
import { until } from '../helpers/cluster.ts';
import { slowSerial } from '../helpers/slow.ts';
import { resyncDone } from '../helpers/recovery.ts';

const MiB = 1024 * 1024;
const MINUTE = 60000;
/** Clock skew per node (ms): node 1 ten minutes ahead, node 2 ten minutes behind. */
const SKEW: Record<number, number> = { 0: 0, 1: 10 * MINUTE, 2: -10 * MINUTE };
const ROUNDS = 6;
const BLOCKS = 64;
/** Fast failure detection: a stopped node is marked down within a second or two. */
const MEMBERSHIP = { heartbeatMs: 250, downAfterMs: 1200, digestMs: 250 };

/** Block i: one 4 KiB page in extent i (64 extents of 1 MiB), at a page that varies per block. */
const blockOffset = (i: number): number => i * MiB + ((i * 37) % 256) * 4096;

/** Round r's data for block i: names the round, the block and the writer's generation. */
function blockData(round: number, i: number, gen: number): Buffer {
  const b = Buffer.alloc(4096, 0x20);
  const text = `round ${round} block ${i} generation ${gen}\n`;
  for (let o = 0; o + text.length <= 4096; o += text.length) b.write(text, o, 'latin1');
  return b;
}

const resynced = (cluster: LocalCluster, timeoutMs: number): Promise<boolean> => resyncDone(cluster, timeoutMs);

/** Sends `h` (at the initiator's epoch, following StaleEpoch replies) to node `node`. */
async function request(cluster: LocalCluster, node: number, h: Omit<RequestHeader, 'id' | 'epoch'>): Promise<Reply> {
  const n = cluster.view.address(node)!;
  const c = new WireClient({ host: n.host, port: n.port, token: cluster.config.token, timeoutMs: 60000 });
  await c.connect();
  try {
    let epoch = cluster.view.epoch;
    for (let i = 0; ; i++) {
      const r = await c.request({ ...h, epoch });
      if (r.h.status !== Status.StaleEpoch || i >= 5) return r;
      epoch = Math.max(epoch, r.h.aux);
    }
  } finally {
    c.close();
  }
}

/** The time (ms since 1970, by that node's clock) of the last line of node `id`'s log. */
function lastLogTime(dataDir: string, id: number): number {
  const lines = readFileSync(join(dataDir, 'logs', `node${id}.log`), 'utf8').trim().split('\n');
  return (JSON.parse(lines[lines.length - 1]) as { time: number }).time;
}

slowSerial('clock skew of ±10 minutes: writers and members change back and forth, no acknowledged write is lost, versions grow', async (t) => {
  t.timeout(1200000);
  const { dir, cleanup } = tempDataDir();
  const cluster = await LocalCluster.start({
    dataDir: dir,
    layout: { deviceBytes: 256 * MiB, volumeBytes: 64 * MiB, membership: MEMBERSHIP },
    nodeEnv: (id): Record<string, string> => (SKEW[id] ? { CAIRN_CLOCK_SKEW_MS: String(SKEW[id]) } : {}),
  });
  const volumes: Volume[] = [];
  try {
    const rec = cluster.config.volumes.find((v) => v.name === 'vol0')!;
    t.is(rec.extentBytes, MiB);
    t.is(rec.sizeBytes / rec.extentBytes, BLOCKS, 'one block per extent');
    const pages = rec.extentBytes / 4096;

    // The knob works: each node's log is stamped by its own (skewed) clock.
    for (const n of cluster.config.nodes) {
      const off = lastLogTime(dir, n.id) - Date.now();
      t.true(Math.abs(off - SKEW[n.id]) < 2 * MINUTE, `node ${n.id}'s clock is off by ${Math.round(off / 1000)} s (want ${SKEW[n.id] / 1000} s)`);
    }

    /** Every block's version per round (the same on every member). */
    const versions: number[][] = [];
    let prev: Volume | null = null;
    for (let round = 0; round < ROUNDS; round++) {
      // Members change: from round 1 on, one node (1 and 2, the skewed ones, in turn; a
      // crash every other time) is down while the round writes, and returns afterwards.
      const downNode = round === 0 ? null : round % 2 === 1 ? 1 : 2;
      if (downNode !== null) {
        await cluster.stopNode(downNode, round % 4 === 1 ? 'SIGTERM' : 'SIGKILL');
        t.true(await until(() => !cluster.view.isUp(downNode), 60000), `round ${round}: node ${downNode} is marked down`);
      }

      // The writer changes: a fresh attachment fences the previous one.
      const vol = await cluster.attach('vol0');
      volumes.push(vol);
      const gen = vol.leaseGeneration;
      if (prev) {
        t.true(gen > prev.leaseGeneration, `round ${round}: generation ${gen} after ${prev.leaseGeneration}`);
        const e = await t.throwsAsync(prev.write(blockOffset(round), Buffer.alloc(4096, 0xff)), { instanceOf: BlockDeviceError });
        t.is(e?.code, 'EFENCED', `round ${round}: the previous attachment is fenced`);
        prev.close();
      }
      prev = vol;

      // Write every block with data naming this round, then flush: all of it is acknowledged.
      await Promise.all(Array.from({ length: BLOCKS }, (_, i) => vol.write(blockOffset(i), blockData(round, i, gen))));
      await vol.flush();
      const check = async (where: string): Promise<void> => {
        for (let i = 0; i < BLOCKS; i++) {
          const got = await vol.read(blockOffset(i), 4096);
          if (!got.equals(blockData(round, i, gen))) t.fail(`round ${round} ${where}: block ${i} reads ${JSON.stringify(got.subarray(0, 40).toString('latin1'))}`);
        }
      };
      await check(downNode === null ? 'through the Volume' : `through the Volume with node ${downNode} down`);

      if (downNode !== null) {
        await cluster.startNode(downNode);
        t.true(await cluster.waitPeered([downNode], 120000), `round ${round}: node ${downNode} peered after its restart`);
        t.true(await resynced(cluster, 180000), `round ${round}: node ${downNode} pulled what it missed`);
        await check(`through the Volume after node ${downNode} returned`);
      }

      // Every member, directly (recovery reads: no fence, no "current" check): the round's
      // data, and one version per block, the same on every member, of this round's generation.
      const view = cluster.view;
      const roundVersions: number[] = [];
      for (let i = 0; i < BLOCKS; i++) {
        const page = (blockOffset(i) % MiB) / 4096;
        const placed = view.members(rec.id, i, rec.pool);
        t.is(placed.length, 3, `block ${i}: three members`);
        let seen: number | undefined;
        for (const leaf of placed) {
          const base = { flags: Flag.Recovery, volume: rec.id, extent: i, partition: leaf, lease: 0, version: 0, members: [] };
          const d = await request(cluster, view.nodeOf(leaf), { ...base, op: Op.Read, firstPage: page, pages: 1 });
          t.is(statusName(d.h.status), 'Ok', `round ${round} block ${i} on partition ${leaf}: read`);
          if (!d.payload.equals(blockData(round, i, gen))) {
            t.fail(`round ${round}: block ${i} on partition ${leaf} (node ${view.nodeOf(leaf)}) reads ${JSON.stringify(d.payload.subarray(0, 40).toString('latin1'))}`);
          }
          const v = await request(cluster, view.nodeOf(leaf), { ...base, op: Op.Versions, firstPage: 0, pages });
          t.is(statusName(v.h.status), 'Ok', `round ${round} block ${i} on partition ${leaf}: versions`);
          const version = decodeVersions(v.payload).find((p) => p.page === page)?.version ?? 0;
          if (seen === undefined) seen = version;
          else t.is(version, seen, `round ${round}: block ${i} has the same version on partition ${leaf} as on ${placed[0]}`);
        }
        t.is(versionGeneration(seen!), gen, `round ${round}: block ${i}'s version is of generation ${gen}`);
        if (round > 0) t.true(seen! > versions[round - 1][i], `round ${round}: block ${i}'s version ${seen} > ${versions[round - 1][i]}`);
        roundVersions.push(seen!);
      }
      versions.push(roundVersions);
      t.log(`round ${round}: generation ${gen}, ${downNode === null ? 'all nodes up' : `node ${downNode} (clock ${SKEW[downNode] / MINUTE} min) down while writing, then resynced`}; block 0 version ${roundVersions[0]}`);
    }
  } finally {
    for (const v of volumes) v.close();
    await cluster.stop();
    cleanup();
  }
});
