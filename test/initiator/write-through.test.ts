/**
 * Write-through for a synchronous writer (src/initiator/flush-predictor.ts), on a real
 * cluster: after STREAK flushes that each followed one write, a lone write goes to the
 * members with FUA — each member fdatasyncs before replying — and the flush that follows
 * completes without reaching any node. The nodes still get the settle watermark, in the
 * background. A writer that writes more than once between flushes, or has several writes
 * in flight, is served as before.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { LocalCluster } from '../../src/cluster/index.ts';
import { STREAK } from '../../src/initiator/flush-predictor.ts';
import { Op, WireClient } from '../../src/wire/index.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';
import { eventually } from '../helpers/cluster.ts';

const MiB = 1024 * 1024;
const PAGE = 4096;

/** One counter line of every node's /metrics (first sample whose line starts with `prefix` and holds every `has`). */
async function nodeCounter(cluster: LocalCluster, prefix: string, ...has: string[]): Promise<number[]> {
  return Promise.all(cluster.config.nodes.map(async (n) => {
    const r = await fetch(`http://${n.host}:${n.apiPort}/metrics`, { headers: { authorization: `Bearer ${cluster.config.token}` } });
    const line = (await r.text()).split('\n').find((l) => l.startsWith(prefix) && has.every((h) => l.includes(h)));
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
  }));
}

const flushes = (c: LocalCluster): Promise<number[]> => nodeCounter(c, 'cairn_node_requests_total{', 'op="Flush"', 'status="Ok"');
const fsyncs = (c: LocalCluster): Promise<number[]> => nodeCounter(c, 'cairn_node_fsyncs_total');
const minus = (a: number[], b: number[]): number[] => a.map((x, i) => x - b[i]);

/** Extents node `node` lists as unsettled for `volume` (Op.Suspects). */
async function suspects(cluster: LocalCluster, node: number, volume: number, lease: number): Promise<number> {
  const a = cluster.view.address(node)!;
  const c = new WireClient({ host: a.host, port: a.port, token: cluster.config.token, timeoutMs: 30000 });
  await c.connect();
  try {
    const r = await c.request({ op: Op.Suspects, flags: 0, epoch: cluster.view.epoch, volume, extent: 0, partition: 0, firstPage: 0, pages: 0, lease, version: 0, members: [] });
    return r.payload.length / 4;
  } finally {
    c.close();
  }
}

test('a synchronous writer: lone writes go through with FUA (fdatasync on every member), the flushes stay in the gateway, the watermark still settles', async (t) => {
  t.timeout(120000);
  const { dir, cleanup } = tempDataDir();
  const cluster = await LocalCluster.start({ dataDir: dir, layout: { deviceBytes: 64 * MiB, volumeBytes: 8 * MiB } });
  try {
    const rec = cluster.config.volumes.find((v) => v.name === 'vol0')!;
    const v = await cluster.attach('vol0');
    const pages = new Map<number, Buffer>();
    const put = async (page: number): Promise<void> => {
      const b = randomBytes(PAGE);
      pages.set(page, b);
      await v.write(page * PAGE, b);
      await v.flush();
    };
    // The streak builds: these writes are not FUA, and each flush reaches all three nodes.
    const f0 = await flushes(cluster);
    for (let i = 0; i < STREAK; i++) await put(i * 97);
    t.is(v.counters.writeThrough, 0);
    t.deepEqual(minus(await flushes(cluster), f0), [STREAK, STREAK, STREAK], 'before the streak, every flush reaches every node');

    // From now on each lone write is FUA: every member makes it durable before replying.
    const f1 = await flushes(cluster);
    const s1 = await fsyncs(cluster);
    const N = 6;
    for (let i = 0; i < N; i++) await put(500 + i * 131);
    t.is(v.counters.writeThrough, N);
    const synced = minus(await fsyncs(cluster), s1);
    t.true(synced.every((n) => n >= N), `each node fdatasynced once per write-through write at least: ${synced}`);
    // The flushes completed in the gateway; what reached the nodes is at most the background
    // watermark (one per node per 200 ms).
    const reached = minus(await flushes(cluster), f1);
    t.true(reached.every((n) => n <= 2), `flushes that reached the nodes: ${reached}`);

    // The watermark still goes out: after 200 ms, the next flush settles every extent written.
    t.true(await eventually(async () => {
      await put(1500);
      const left = await Promise.all(cluster.config.nodes.map((n) => suspects(cluster, n.id, rec.id, v.leaseGeneration)));
      return left.every((n) => n <= 1); // at most the extent of the newest write
    }, 10000), 'the background watermark settles the write-through writes');

    // Two writes per flush end the streak: then plain writes, and the flushes reach the nodes.
    const w0 = v.counters.writeThrough;
    const f2 = await flushes(cluster);
    await v.write(1900 * PAGE, randomBytes(PAGE));
    await v.write(1901 * PAGE, randomBytes(PAGE));
    await v.flush();
    await put(1600);
    // The first of the two was still predicted (lone, streak held): FUA is only ever extra durability.
    t.is(v.counters.writeThrough, w0 + 1, 'no write-through after a flush that followed two writes');
    t.true(minus(await flushes(cluster), f2).every((n) => n >= 2), 'those flushes reached every node');

    // Several writes in flight are never FUA, whatever the streak.
    for (let i = 0; i < STREAK; i++) await put(1700 + i);
    const w1 = v.counters.writeThrough;
    await Promise.all([v.write(1800 * PAGE, randomBytes(PAGE)), v.write(1801 * PAGE, randomBytes(PAGE))]);
    t.is(v.counters.writeThrough, w1 + 1, 'only the first of two concurrent writes (alone when it started) is FUA');
    await v.flush();

    // Everything reads back, also through a new attachment after the first one closed.
    v.close();
    const r = await cluster.attach('vol0');
    for (const [page, b] of pages) t.true((await r.read(page * PAGE, PAGE)).equals(b), `page ${page}`);
    r.close();
  } finally {
    await cluster.stop();
    cleanup();
  }
});
