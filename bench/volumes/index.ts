/**
 * `npm run bench -- volumes [--quick] [--volumes N] [--snapshots N] [--concurrency N]
 *   [--snap-size SIZE] [--parts catalog,snapshots]`
 *
 * The volume catalog and snapshots on a local cluster of 3 node processes (3 replicas,
 * file-backed devices; the API served by every node, the initiator in this process):
 *
 * 1. catalog — creates 20 volumes one at a time (latency of one create), then `--volumes`
 *    (default 1000) thin volumes through `POST /v1/volumes`, `--concurrency` (default 16) in
 *    flight, and reports the create rate (volumes/s) and per-create latency under that load, then the time of one `GET /v1/volumes` listing them all (node 0, the
 *    authority's, and nodes 1 and 2). References in the same run: `GET /v1/nodes` (ms) and a 4 KiB
 *    write with FUA through an attached volume (ms) (catalog.ts).
 * 2. snapshots — a `--snap-size` (default 1 GiB) volume attached and written whole, then
 *    `--snapshots` (default 10) snapshots through the API timed at the client after flushed
 *    random 4 KiB writes, and as many after writes that were not flushed; min / median / p90
 *    of each, the first write after each snapshot (lease resume) and the server's phases
 *    (snapshots.ts).
 *
 * `--quick`: 100 volumes, 3 snapshots of each kind, a 256 MiB snapshot volume. Progress goes
 * to stderr, one JSON document to stdout; times in ms, MB = 10^6 bytes. Exit code 1 when a
 * part failed (its error is in the JSON).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ApiClient } from '../../src/api/index.ts';
import { LocalCluster } from '../../src/cluster/index.ts';
import type { VolumeSet } from '../../src/gateway/index.ts';
import { measureCatalog, type CatalogFigures } from './catalog.ts';
import { measureSnapshots, type SnapshotFigures } from './snapshots.ts';
import { round } from './stats.ts';

const MiB = 1 << 20;
const T0 = Date.now();
const log = (s: string): void => void process.stderr.write(`[bench volumes ${((Date.now() - T0) / 1000).toFixed(0).padStart(4)}s] ${s}\n`);
const usage = (msg: string): never => {
  process.stderr.write(`bench volumes: ${msg}\n`);
  process.exit(2);
};

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    volumes: { type: 'string' },
    snapshots: { type: 'string' },
    concurrency: { type: 'string', default: '16' },
    'snap-size': { type: 'string' },
    parts: { type: 'string', default: 'catalog,snapshots' },
  },
});
const quick = values.quick!;
const volumes = Number(values.volumes ?? (quick ? 100 : 1000));
const snapshots = Number(values.snapshots ?? (quick ? 3 : 10));
const concurrency = Number(values.concurrency);
const snapBytes = parseSize(values['snap-size'] ?? (quick ? '256m' : '1g'));
const parts = new Set(values.parts!.split(',').map((s) => s.trim()));
if (!Number.isInteger(volumes) || volumes < 1) usage('--volumes must be a whole number ≥ 1');
if (!Number.isInteger(snapshots) || snapshots < 1) usage('--snapshots must be a whole number ≥ 1');
if (!Number.isInteger(concurrency) || concurrency < 1) usage('--concurrency must be a whole number ≥ 1');
if (snapBytes < 16 * MiB || snapBytes % MiB) usage('--snap-size must be whole MiB, at least 16m');
for (const p of parts) if (!['catalog', 'snapshots'].includes(p)) usage(`unknown part '${p}' (catalog, snapshots)`);

/** `256m`, `1g`, `512k` or a byte count. */
function parseSize(s: string): number {
  const m = /^(\d+)([kmg]?)i?b?$/i.exec(s.trim());
  if (!m) return usage(`bad size '${s}' (e.g. 256m, 1g)`);
  return Number(m[1]) * { '': 1, k: 1024, m: MiB, g: 1024 * MiB }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g'];
}

const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-volumes-'));
let cluster: LocalCluster | null = null;
let set: VolumeSet | null = null;
let stopping = false;
async function teardown(): Promise<void> {
  await set?.close().catch(() => undefined);
  set = null;
  await cluster?.stop(10000).catch(() => undefined);
  cluster = null;
  rmSync(dir, { recursive: true, force: true });
}
const onSignal = (signal: NodeJS.Signals): void => {
  if (stopping) return;
  stopping = true;
  log(`${signal}: stopping the cluster`);
  void teardown().finally(() => process.exit(130));
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

const errors: Record<string, string> = {};
const notes: string[] = [];
const loadStart = loadavg().map((l) => round(l));
let catalog: CatalogFigures | null = null;
let snaps: SnapshotFigures | null = null;
// Devices: 2 per node, sparse, room for a copy of the snapshot volume on each node twice over.
const deviceBytes = Math.max(1024 * MiB, snapBytes * 2);

try {
  log(`starting 3 nodes (3 replicas, 2 devices of ${deviceBytes / MiB} MiB each) in ${dir}`);
  cluster = await LocalCluster.start({ dataDir: dir, layout: { nodes: 3, replicas: 3, devicesPerNode: 2, deviceBytes, volumeBytes: 0 }, startTimeoutMs: 60000 });
  const c = cluster;
  set = c.volumeSet({ ioTimeoutMs: 60000 });
  const n0 = c.config.nodes[0];
  const api = new ApiClient(`http://${n0.host}:${n0.apiPort}`, c.config.token, 120000);
  // The catalog serves once its members have peered.
  const end = Date.now() + 60000;
  for (;;) {
    try {
      await api.call('GET', '/v1/volumes');
      break;
    } catch (e) {
      if (Date.now() > end) throw new Error(`the catalog did not serve within 60 s: ${(e as Error).message}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  if (parts.has('catalog') && !stopping) {
    try {
      catalog = await measureCatalog({ cluster: c, set, volumes, concurrency, soloCreates: 20, repeats: 5, fuaWrites: 200, log });
    } catch (e) {
      errors.catalog = (e as Error).message;
      log(`catalog failed: ${(e as Error).message}`);
    }
  }
  if (parts.has('snapshots') && !stopping) {
    try {
      snaps = await measureSnapshots({
        api, set, dataDir: dir, name: 'snapbench', volumeBytes: snapBytes, snapshots, writesPerRound: 64,
        write4kFuaMs: catalog?.reference.write4kFuaMs.median ?? null, log,
      });
    } catch (e) {
      errors.snapshots = (e as Error).message;
      log(`snapshots failed: ${(e as Error).message}`);
    }
  }
} catch (e) {
  errors.cluster = (e as Error).message;
  log(`failed: ${(e as Error).message}`);
} finally {
  await teardown();
}

if (cpus().length <= 2) notes.push(`${cpus().length} CPU cores run all 3 node processes, the API clients and the initiator: figures are CPU-bound and vary with other load on the machine`);
if (snaps && (!snaps.flushed.server || !snaps.unflushed.server)) notes.push('the authority node\'s log did not hold one \'snapshot taken\' line per snapshot: server-side phases left out');

console.log(JSON.stringify({
  bench: 'volumes',
  /** The figures at a glance; each is detailed, with its references, below. */
  headline: {
    createsPerSecond: catalog?.create.perSecond ?? null,
    createMs: catalog ? { oneAtATimeMedian: catalog.create.oneAtATimeMs.median, underLoadMedian: catalog.create.latencyMs.median, underLoadP90: catalog.create.latencyMs.p90 } : null,
    listAllMs: catalog ? { volumes: catalog.volumes, node0Median: catalog.list.node0.ms.median, node0First: catalog.list.node0.firstMs, node1Median: catalog.list.node1.ms.median, node2Median: catalog.list.node2.ms.median } : null,
    reference: catalog ? { nodesMs: catalog.reference.nodesMs.median, write4kFuaMs: catalog.reference.write4kFuaMs.median } : null,
    ratios: catalog?.ratios ?? null,
    snapshotMs: snaps ? {
      flushed: { min: snaps.flushed.ms.min, median: snaps.flushed.ms.median, p90: snaps.flushed.ms.p90 },
      unflushed: { min: snaps.unflushed.ms.min, median: snaps.unflushed.ms.median, p90: snaps.unflushed.ms.p90 },
      ...snaps.ratios,
    } : null,
  },
  setup: {
    quick,
    cpus: cpus().length,
    loadavgStart: loadStart,
    loadavgEnd: loadavg().map((l) => round(l)),
    node: process.version,
    nodes: 3,
    replicas: 3,
    deviceBytes,
    devicesPerNode: 2,
    volumes,
    concurrency,
    snapshots,
    snapshotVolumeBytes: snapBytes,
    creates: 'POST /v1/volumes {name, size: 1 GiB, thin}, round-robin over the 3 nodes\' APIs (nodes 1 and 2 forward to node 0, the authority): 20 one at a time (solo-*), then the N timed for the rate (bench-*)',
    listing: 'GET /v1/volumes listing every volume (N + 21): 1 call then 5 timed repeats per node, nodes 0, 1 and 2 in turn; nodesMs: GET /v1/nodes on node 0, 5 timed after 1 warm-up',
    write4kFua: '4 KiB writes with FUA, QD1, random offsets in a 64 MiB volume attached in this process (VolumeSet), 200 timed after 20 warm-up',
    snapshotsHow: 'POST /v1/volumes/snapbench/snapshots on node 0, timed at the client; before each: 64 random 4 KiB writes (first alone, then 8 in flight), with a flush (flushed) or without (unflushed); kinds alternate',
    units: 'ms of wall time; MB = 10^6 bytes',
    totalSeconds: round((Date.now() - T0) / 1000, 1),
  },
  catalog,
  snapshots: snaps,
  notes,
  errors,
}, null, 2));
process.exitCode = Object.keys(errors).length ? 1 : 0;
