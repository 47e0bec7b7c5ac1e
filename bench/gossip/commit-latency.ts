/**
 * Epoch commit latency of the two map authorities, measured in this process (issue 14):
 * `submit()` of a map change — sign, store durably, hand to the publisher (a no-op here,
 * so gossip is not in the figure) — and `acquireLease()`, each timed one at a time, through
 * the embedded authority (fsync'd files) and through the etcd authority on a local 3-member
 * etcd (a compare-and-swap transaction that etcd commits through Raft and fsyncs). Then three
 * etcd authorities (three "nodes") submit at once, to show what racing compare-and-swaps cost.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mean } from 'simple-statistics';
import { EmbeddedAuthority, EtcdAuthority, LocalEtcd, type MapAuthority } from '../../src/authority/index.ts';
import { DEFAULT_LAYOUT, createClusterConfig, provisionControlPlane, useEtcdAuthority } from '../../src/cluster/index.ts';
import type { ClusterConfig } from '../../src/config/index.ts';
import { percentile, round } from '../volumes/stats.ts';

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };
const publisher = { publishMap: async () => 0, publishDigest: async () => 0 };
const r2 = (x: number): number => round(x, 2);

/** p50/p90/p99/mean of `ms`, in ms. */
function summary(ms: number[]): { p50Ms: number; p90Ms: number; p99Ms: number; meanMs: number } {
  return { p50Ms: r2(percentile(ms, 50)), p90Ms: r2(percentile(ms, 90)), p99Ms: r2(percentile(ms, 99)), meanMs: r2(mean(ms)) };
}

/** Times `n` sequential calls of `f`, ms each. */
async function timed(n: number, f: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await f(i);
    out.push(performance.now() - t0);
  }
  return out;
}

/** The i-th change: node `node`'s weight, alternating, so that every submission changes the map. */
const change = (i: number, node = 1) => ({ type: 'reweight' as const, node, weight: i % 2 === 0 ? 0.9 : 0.8 });

/** A 3-node config in `dir` (embedded authority, key in node 0's directory). */
async function config(dir: string): Promise<ClusterConfig> {
  const c = await createClusterConfig({ ...DEFAULT_LAYOUT, nodes: 3 });
  await provisionControlPlane(dir, c);
  return c;
}

async function measureOne(a: MapAuthority, n: number): Promise<{ submit: ReturnType<typeof summary>; lease: ReturnType<typeof summary> }> {
  await a.submit(change(1)); // warm-up
  const submit = summary(await timed(n, (i) => a.submit(change(i))));
  const lease = summary(await timed(n, () => a.acquireLease(1)));
  return { submit, lease };
}

/**
 * Runs the measurement (`n` submissions and grants per authority); progress on `log`.
 * @returns the `commit` object of the gossip bench's JSON; `etcd` is null (with `etcdSkipped`) when etcd is not installed.
 */
export async function commitLatency(n: number, log: (s: string) => void): Promise<object> {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-commit-'));
  try {
    const c = await config(dir);
    const embedded = await EmbeddedAuthority.open({ config: c, dataDir: dir, selfNode: c.authority!.node, publisher, onLocalMap: () => undefined, log: silent });
    let emb;
    try {
      emb = await measureOne(embedded, n);
    } finally {
      await embedded.close();
    }
    log(`embedded authority: submit p50 ${emb.submit.p50Ms} ms, lease p50 ${emb.lease.p50Ms} ms`);
    let etcd: LocalEtcd;
    try {
      etcd = await LocalEtcd.start({ dir: join(dir, 'etcd'), members: 3 });
    } catch (e) {
      log(`etcd skipped: ${(e as Error).message.split('\n')[0]}`);
      return { n, embedded: emb, etcd: null, etcdSkipped: (e as Error).message.split('\n')[0] };
    }
    try {
      const ec: ClusterConfig = structuredClone(c);
      useEtcdAuthority(dir, ec, { endpoints: etcd.endpoints, prefix: `/bench/${c.clusterId}` });
      const auths = await Promise.all(c.nodes.map((nd) => EtcdAuthority.open({ config: ec, dataDir: dir, selfNode: nd.id, publisher, onLocalMap: () => undefined, log: silent })));
      try {
        const one = await measureOne(auths[0], n);
        log(`etcd authority (3 members): submit p50 ${one.submit.p50Ms} ms, lease p50 ${one.lease.p50Ms} ms`);
        // Three nodes at once: every submission commits (each retries on a lost race).
        const per = Math.max(1, Math.floor(n / 3));
        const lat: number[] = [];
        const t0 = performance.now();
        await Promise.all(auths.map((a, k) => timed(per, (i) => a.submit(change(i, k))).then((ms) => lat.push(...ms))));
        const wallS = (performance.now() - t0) / 1000;
        const racing = { nodes: auths.length, submissions: per * auths.length, epochsPerSecond: r2((per * auths.length) / wallS), submit: summary(lat) };
        log(`etcd, 3 nodes racing: ${racing.epochsPerSecond} epochs/s, submit p50 ${racing.submit.p50Ms} ms`);
        return {
          n,
          embedded: emb,
          etcd: { members: 3, ...one, racing },
          ratioEtcdToEmbedded: { submitP50: r2(one.submit.p50Ms / emb.submit.p50Ms), leaseP50: r2(one.lease.p50Ms / emb.lease.p50Ms) },
        };
      } finally {
        await Promise.all(auths.map((a) => a.close()));
      }
    } finally {
      await etcd.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
