/**
 * `npm run bench -- gossip [--peers 8,16,32] [--epochs 10]`: how fast a new map epoch
 * reaches every peer. For each peer count: a local cluster of 4 storage nodes (the map
 * authority in node 0) plus initiator peers — the launcher's in-process one and the rest as
 * separate processes (src/initiator/follower-main.ts) — all real libp2p peers on 127.0.0.1.
 * Each epoch (a reweight, alternating) is timed from the authority's publish to each peer's
 * acceptance (verified signature included). Reference, same run: an IPC message from this
 * process to every initiator process (the floor of "reach every process" on this machine
 * right now). Then (`commit`, bench/gossip/commit-latency.ts) the latency of committing an
 * epoch and granting a lease through the etcd authority next to the embedded one, in this
 * run (`--commits N`, default 200; `--skip-commit`). Prints one JSON object; progress goes to
 * stderr.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pMap from 'p-map';
import { FollowerProcess, LocalCluster, type FollowerMapEvent, type NodeMapEvent } from '../../src/cluster/index.ts';
import { ApiClient } from '../../src/api/index.ts';
import type { SubmitResult } from '../../src/authority/index.ts';
import { commitLatency } from './commit-latency.ts';

const { values } = parseArgs({
  options: { peers: { type: 'string', default: '8,16,32' }, epochs: { type: 'string', default: '10' }, commits: { type: 'string', default: '200' }, 'skip-commit': { type: 'boolean', default: false } },
});
const SIZES = values.peers!.split(',').map(Number);
const EPOCHS = Number(values.epochs);
const STORAGE_NODES = 4;
const log = (s: string): void => void process.stderr.write(`[bench gossip] ${s}\n`);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] : NaN;
}
const r1 = (x: number): number => Math.round(x * 10) / 10;

async function measure(peers: number): Promise<object> {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-gossip-'));
  const t0 = Date.now();
  const cluster = await LocalCluster.start({
    dataDir: dir,
    layout: { nodes: STORAGE_NODES, devicesPerNode: 1, deviceBytes: 16 << 20, partitionsPerDevice: 1, replicas: 1, volumeBytes: 0 },
    startTimeoutMs: 180000,
  });
  const nodeAt = new Map<string, number>();
  cluster.events.on('map', (e: NodeMapEvent) => nodeAt.set(`${e.node}@${e.epoch}`, e.at));
  const followers: FollowerProcess[] = [];
  try {
    const n = Math.max(0, peers - STORAGE_NODES - 1);
    followers.push(...await pMap(Array.from({ length: n }, (_, i) => i), (i) => FollowerProcess.spawn(dir, { name: `bench${i}`, timeoutMs: 180000 }), { concurrency: 4 }));
    const folAt = new Map<string, number>();
    followers.forEach((f, i) => f.events.on('map', (e: FollowerMapEvent) => folAt.set(`${i}@${e.epoch}`, e.at)));
    log(`${peers} peers (${STORAGE_NODES} storage nodes, 1 in-process initiator, ${n} initiator processes) up in ${Date.now() - t0} ms`);
    const api = new ApiClient(`http://127.0.0.1:${cluster.config.nodes[0].apiPort}`, cluster.config.token);
    // Let the mesh settle: everybody at the current epoch, plus two gossipsub heartbeats.
    const cur = cluster.follower!.epoch;
    const settleEnd = Date.now() + 30000;
    while (Date.now() < settleEnd && !followers.every((f) => f.epoch >= cur)) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 1500));
    // One unmeasured warm-up epoch (its time is reported apart): the first epoch after start-up
    // also measures mesh formation; the timed ones measure the steady state.
    const w = await api.call<SubmitResult>('POST', '/v1/map/changes', { type: 'reweight', node: 1, weight: 0.9 });
    const warmEnd = Date.now() + 30000;
    const warmDone = (): boolean => cluster.config.nodes.every((nd) => nodeAt.has(`${nd.id}@${w.epoch}`)) && followers.every((f) => f.epoch >= w.epoch) && cluster.follower!.epoch >= w.epoch;
    while (Date.now() < warmEnd && !warmDone()) await new Promise((r) => setTimeout(r, 10));
    const warmupMs = warmDone() ? r1(Math.max(...cluster.config.nodes.map((nd) => nodeAt.get(`${nd.id}@${w.epoch}`)!), ...followers.map((_, i) => folAt.get(`${i}@${w.epoch}`) ?? 0),
      cluster.follower!.control.keeper.acceptedAt.get(w.epoch) ?? 0) - w.publishedAt) : null;
    await new Promise((r) => setTimeout(r, 500));

    const convergence: number[] = [];
    const perPeer: number[] = [];
    const reference: number[] = [];
    let missed = 0;
    for (let e = 0; e < EPOCHS; e++) {
      const r = await api.call<SubmitResult>('POST', '/v1/map/changes', { type: 'reweight', node: STORAGE_NODES - 1, weight: e % 2 === 0 ? 0.5 : 1 });
      const times = (): Array<number | undefined> => [
        ...cluster.config.nodes.map((nd) => nodeAt.get(`${nd.id}@${r.epoch}`)),
        ...followers.map((_, i) => folAt.get(`${i}@${r.epoch}`)),
        cluster.follower!.control.keeper.acceptedAt.get(r.epoch),
      ];
      const end = Date.now() + 10000;
      while (Date.now() < end && times().some((x) => x === undefined)) await new Promise((res) => setTimeout(res, 10));
      const ts = times();
      if (ts.some((x) => x === undefined)) {
        missed++;
        log(`epoch ${r.epoch}: ${ts.filter((x) => x === undefined).length} peers did not get it within 10 s`);
        continue;
      }
      const lags = (ts as number[]).map((x) => x - r.publishedAt);
      perPeer.push(...lags);
      convergence.push(Math.max(...lags));
      if (followers.length) {
        const sent = performance.timeOrigin + performance.now();
        const got = await Promise.all(followers.map((f) => f.ping()));
        reference.push(Math.max(...got) - sent);
      }
      await new Promise((res) => setTimeout(res, 200));
    }
    log(`${peers} peers: convergence p50 ${r1(pct(convergence, 50))} ms, max ${r1(Math.max(...convergence))} ms`);
    return {
      peers,
      storageNodes: STORAGE_NODES,
      initiators: followers.length + 1,
      epochs: convergence.length,
      epochsNotConverged: missed,
      warmupEpochMs: warmupMs,
      convergenceMs: { p50: r1(pct(convergence, 50)), max: r1(Math.max(...convergence)) },
      perPeerDeliveryMs: { p50: r1(pct(perPeer, 50)), p99: r1(pct(perPeer, 99)), max: r1(Math.max(...perPeer)) },
      reference: followers.length ? { ipcFanoutMs: { p50: r1(pct(reference, 50)), max: r1(Math.max(...reference)) } } : null,
      ratioToReference: followers.length ? { p50: r1(pct(convergence, 50) / pct(reference, 50)), max: r1(Math.max(...convergence) / Math.max(...reference)) } : null,
    };
  } finally {
    await Promise.all(followers.map((f) => f.stop()));
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const results = [];
for (const p of SIZES) results.push(await measure(p));
const commit = values['skip-commit'] ? null : await commitLatency(Number(values.commits), log);
process.stdout.write(`${JSON.stringify({
  bench: 'gossip',
  what: 'time from the authority publishing a new map epoch to each peer accepting it (signature verified)',
  machine: { cpus: cpus().length, loadavg: loadavg().map((x) => r1(x)) },
  epochsPerSize: EPOCHS,
  results,
  commit,
}, null, 2)}\n`);
