/**
 * Read policies (src/initiator/member-io.ts ReadPolicy) on a real three-node LocalCluster,
 * counted by each node's own `cairn_node_requests_total{op="Read"}`:
 * - 'adaptive' (the default): reads issued one at a time stay on one node; reads issued
 *   many at once reach every copy; and the one node takes over from another when it stops;
 * - 'balance': reads issued one at a time still rotate over every copy.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { LocalCluster } from '../../src/cluster/index.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';

const MiB = 1 << 20;
const PAGE = 4096;
const READS = 60;

/** Host reads each node served so far (its cairn_node_requests_total{op="Read",status="Ok"}). */
async function nodeReads(cluster: LocalCluster, ids: number[]): Promise<number[]> {
  return Promise.all(ids.map(async (id) => {
    const n = cluster.config.nodes.find((x) => x.id === id)!;
    const r = await fetch(`http://${n.host}:${n.apiPort}/metrics`, { headers: { authorization: `Bearer ${cluster.config.token}` } });
    const line = (await r.text()).split('\n').find((l) => l.startsWith('cairn_node_requests_total{') && l.includes('op="Read"') && l.includes('status="Ok"'));
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
  }));
}

test('adaptive reads stay on one node at queue depth 1 and use every copy when deeper; balance always rotates', async (t) => {
  t.timeout(120000);
  const { dir, cleanup } = tempDataDir();
  const cluster = await LocalCluster.start({ dataDir: dir, layout: { deviceBytes: 64 * MiB, volumeBytes: 16 * MiB } });
  try {
    const size = cluster.config.volumes.find((v) => v.name === 'vol0')!.sizeBytes;
    const data = randomBytes(size);
    const volume = await cluster.attach('vol0');
    await volume.write(0, data);
    await volume.flush();
    const ids = cluster.config.nodes.map((n) => n.id);
    const offsets = Array.from({ length: READS }, (_, i) => ((i * 7919) % (size / PAGE)) * PAGE);
    const delta = (a: number[], b: number[]): number[] => b.map((x, i) => x - a[i]);

    // One at a time: every read after the first goes where the first went.
    let before = await nodeReads(cluster, ids);
    for (const off of offsets) t.true((await volume.read(off, PAGE)).equals(data.subarray(off, off + PAGE)), `read at ${off}`);
    let d = delta(before, await nodeReads(cluster, ids));
    t.log(`adaptive, one at a time: reads per node ${d.join(' / ')}`);
    t.is(d.reduce((a, b) => a + b, 0), READS, 'each read asked one node (no failover)');
    t.is(Math.max(...d), READS, 'all of them the same node');
    const stayed = ids[d.indexOf(READS)];

    // Many at once: the reads rotate over the copies.
    before = await nodeReads(cluster, ids);
    const got = await Promise.all(offsets.map((off) => volume.read(off, PAGE)));
    t.true(got.every((b, i) => b.equals(data.subarray(offsets[i], offsets[i] + PAGE))), 'concurrent reads return the data');
    d = delta(before, await nodeReads(cluster, ids));
    t.log(`adaptive, ${READS} at once: reads per node ${d.join(' / ')}`);
    t.true(d.every((x) => x > 0), 'every node served some');

    // The node it stays on stops: reads fail over, then stay on the new one.
    await cluster.stopNode(stayed);
    const rest = ids.filter((id) => id !== stayed);
    before = await nodeReads(cluster, rest);
    for (const off of offsets) t.true((await volume.read(off, PAGE)).equals(data.subarray(off, off + PAGE)), `read at ${off} with node ${stayed} stopped`);
    d = delta(before, await nodeReads(cluster, rest));
    t.log(`adaptive with node ${stayed} stopped: reads per node ${d.join(' / ')} (nodes ${rest.join(', ')})`);
    t.is(Math.max(...d), READS, 'all on one of the other nodes');
    await cluster.startNode(stayed);
    t.true(await cluster.waitPeered([stayed], 60000));
    volume.close();

    // 'balance': one at a time, still every copy.
    const balanced = await cluster.attach('vol0', { readPolicy: 'balance' });
    before = await nodeReads(cluster, ids);
    for (const off of offsets) await balanced.read(off, PAGE);
    d = delta(before, await nodeReads(cluster, ids));
    t.log(`balance, one at a time: reads per node ${d.join(' / ')}`);
    t.true(d.every((x) => x >= READS / ids.length - 1), 'each node about a third');
    balanced.close();
  } finally {
    await cluster.stop();
    cleanup();
  }
});
