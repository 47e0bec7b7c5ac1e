/**
 * Part 1 of the volumes bench: the catalog under many volumes. Creates a few volumes one at a
 * time (the latency of one create), then N thin volumes through the management API (`POST /v1/volumes`, a fixed number in flight, the requests
 * spread round-robin over the nodes' APIs: the authority's node runs them, the others forward),
 * then times `GET /v1/volumes` listing them all, from the authority's node and from the others.
 * References, same cluster, same run: `GET /v1/nodes` (an API round trip that reads no
 * catalog record) and a 4 KiB write with FUA through an attached volume (one replicated,
 * durable write: the data-path cost each catalog record write pays).
 */
import { randomBytes } from 'node:crypto';
import pMap from 'p-map';
import { ApiClient } from '../../src/api/index.ts';
import type { LocalCluster } from '../../src/cluster/index.ts';
import type { VolumeSet } from '../../src/gateway/index.ts';
import { ratio, round, summarize, timed, type Summary } from './stats.ts';

/** Options of measureCatalog. */
export interface CatalogOptions {
  cluster: LocalCluster;
  set: VolumeSet;
  volumes: number;
  concurrency: number;
  /** Creates made one at a time before the concurrent ones (their latency unloaded). */
  soloCreates: number;
  /** Repeats of each listing and of GET /v1/nodes. */
  repeats: number;
  /** Timed 4 KiB FUA writes. */
  fuaWrites: number;
  log: (line: string) => void;
}

/** What part 1 measured. */
export interface CatalogFigures {
  volumes: number;
  concurrency: number;
  /**
   * The N concurrent creates: wall time, rate, latency under that load and reply statuses;
   * oneAtATimeMs: the latency of the creates made one at a time before them.
   */
  create: { seconds: number; perSecond: number; latencyMs: Summary; statuses: Record<string, number>; oneAtATimeMs: Summary };
  /**
   * GET /v1/volumes with every volume listed: the first call and the repeats after it, per node
   * asked; `listed` counts the created volumes, `total` every volume (the reference one too).
   */
  list: Record<string, { listed: number; total: number; firstMs: number; ms: Summary }>;
  reference: {
    /** GET /v1/nodes from node 0. */
    nodesMs: Summary;
    /** 4 KiB write with FUA, QD1, random offsets in a 64 MiB volume. */
    write4kFuaMs: Summary;
  };
  ratios: {
    /** Median list time (node 0) ÷ median GET /v1/nodes. */
    listOverNodes: number | null;
    /** Median create latency, one at a time, ÷ median 4 KiB FUA write. */
    createOverWrite4kFua: number | null;
    /** Median list time (node 0) per volume listed ÷ median 4 KiB FUA write. */
    listPerVolumeOverWrite4kFua: number | null;
  };
}

/** See the module comment. */
export async function measureCatalog(o: CatalogOptions): Promise<CatalogFigures> {
  const { cluster } = o;
  const apis = cluster.config.nodes.map((n) => new ApiClient(`http://${n.host}:${n.apiPort}`, cluster.config.token, 120000));

  // Reference first (an empty catalog does not flatter it: GET /v1/nodes reads no record).
  const nodesMs: number[] = [];
  for (let i = 0; i < o.repeats + 1; i++) {
    const ms = await timed(() => apis[0].call('GET', '/v1/nodes'));
    if (i > 0) nodesMs.push(ms); // the first call opens the connection
  }
  await apis[0].call('POST', '/v1/volumes', { name: 'ref-io', size: 64 << 20 });
  const ref = await o.set.open('ref-io');
  if (!ref) throw new Error('volume ref-io did not open');
  const page = randomBytes(4096);
  const slots = (64 << 20) / 4096;
  const writeMs: number[] = [];
  for (let i = 0; i < o.fuaWrites + 20; i++) {
    const off = Math.floor(Math.random() * slots) * 4096;
    const ms = await timed(() => ref.device.write(off, page, true));
    if (i >= 20) writeMs.push(ms); // 20 warm-up writes (first extents placed, connections up)
  }
  o.log(`reference: GET /v1/nodes median ${summarize(nodesMs).median} ms; 4 KiB write+FUA median ${summarize(writeMs).median} ms`);

  // Creates: a few one at a time (the latency of one create on a quiet catalog), then N concurrently.
  const soloMs: number[] = [];
  for (let i = 0; i < o.soloCreates; i++) {
    soloMs.push(await timed(() => apis[i % apis.length].call('POST', '/v1/volumes', { name: `solo-${String(i).padStart(3, '0')}`, size: 1 << 30 })));
  }
  o.log(`${o.soloCreates} creates one at a time: median ${summarize(soloMs).median} ms`);
  o.log(`creating ${o.volumes} volumes, ${o.concurrency} in flight, round-robin over ${apis.length} nodes`);
  const statuses: Record<string, number> = {};
  const latencies: number[] = [];
  const t0 = performance.now();
  let done = 0;
  await pMap(Array.from({ length: o.volumes }, (_, i) => i), async (i) => {
    const name = `bench-${String(i).padStart(5, '0')}`;
    const t = performance.now();
    try {
      await apis[i % apis.length].call('POST', '/v1/volumes', { name, size: 1 << 30 });
      statuses.ok = (statuses.ok ?? 0) + 1;
    } catch (e) {
      const k = String((e as { status?: number }).status ?? 'error');
      statuses[k] = (statuses[k] ?? 0) + 1;
      throw new Error(`create of ${name} failed: ${(e as Error).message}`);
    }
    latencies.push(performance.now() - t);
    if (++done % Math.max(1, Math.floor(o.volumes / 10)) === 0) o.log(`${done}/${o.volumes} created`);
  }, { concurrency: o.concurrency });
  const seconds = (performance.now() - t0) / 1000;
  o.log(`${o.volumes} creates in ${seconds.toFixed(1)} s (${(o.volumes / seconds).toFixed(1)}/s)`);

  // Listings: node 0 (the authority's), nodes 1 and 2 (reads are served by any node), in turn.
  const listMs: Record<number, number[]> = { 0: [], 1: [], 2: [] };
  const counts: Record<number, { listed: number; total: number }> = {};
  for (let i = 0; i < o.repeats + 1; i++) {
    for (const id of [0, 1, 2]) {
      const t = performance.now();
      const r = await apis[id].call<{ volumes: Array<{ name: string }> }>('GET', '/v1/volumes');
      listMs[id].push(performance.now() - t);
      counts[id] = { listed: r.volumes.filter((v) => /^bench-\d+$/.test(v.name)).length, total: r.volumes.length };
      if (counts[id].listed !== o.volumes) throw new Error(`GET /v1/volumes on node ${id} listed ${counts[id].listed} of the ${o.volumes} volumes created`);
    }
  }
  const list: CatalogFigures['list'] = {};
  for (const id of [0, 1, 2]) {
    const ms = listMs[id];
    list[`node${id}`] = { ...counts[id], firstMs: round(ms[0]), ms: summarize(ms.slice(1)) };
    o.log(`GET /v1/volumes on node ${id}: ${counts[id].total} volumes, first ${ms[0].toFixed(1)} ms, median ${summarize(ms.slice(1)).median} ms`);
  }

  const nodes = summarize(nodesMs);
  const write = summarize(writeMs);
  const create = summarize(latencies);
  const solo = summarize(soloMs);
  return {
    volumes: o.volumes,
    concurrency: o.concurrency,
    create: { seconds: round(seconds), perSecond: round(o.volumes / seconds, 1), latencyMs: create, statuses, oneAtATimeMs: solo },
    list,
    reference: { nodesMs: nodes, write4kFuaMs: write },
    ratios: {
      listOverNodes: ratio(list.node0.ms.median, nodes.median),
      createOverWrite4kFua: ratio(solo.median, write.median),
      listPerVolumeOverWrite4kFua: ratio(list.node0.ms.median / o.volumes, write.median, 3),
    },
  };
}
