/**
 * Cluster health at a glance (`cairn status`, `GET /v1/status`), in the spirit of `ceph -s`:
 * the serving node gathers every up node's NodeRecoveryReport (src/recovery/report.ts) and
 * computes, against its own map and the pools and volumes of cluster.json, how many extents
 * are degraded, recovering or inactive, and one health word with its reasons.
 *
 * Definitions (the words of DESIGN.md; an extent is (volume id, extent index)):
 * - **extents**: the union over reports of `held` (plus any extent named only in a `missed`
 *   or `stale` record, with 0 bytes); an extent's **bytes** are the largest a holder reports.
 * - **up members**: the members placement computes for the extent (ClusterView.members on
 *   the map's weights and in/out) whose node the map marks up.
 * - **degraded**: fewer up members than the pool's `replicas` (size), or named by some
 *   report in `missed` (a member must resync it) or `stale` (a member knows it lacks it).
 * - **recovering**: a degraded extent with a `missed` record whose target node is up, or
 *   listed `stale` by an up node — a member that is there to catch up.
 * - **inactive**: fewer up members than the pool's `minSize` (I/O on it waits), including
 *   an extent placement cannot give min_size members at all (PlacementError). Inactive
 *   extents are also degraded.
 * - **health**: HEALTH_ERR when any extent is inactive; HEALTH_WARN when any node is down or
 *   out, any up node did not answer (unreachable) or is peering, or any extent is degraded;
 *   HEALTH_OK otherwise. `checks` holds one human-readable line per reason.
 *
 * Extents of volumes that cluster.json does not know (or whose pool it does not know) cannot
 * be placed here: they count in `extents` and are degraded only through `missed`/`stale`,
 * and their volume ids are listed in `unknownVolumes` (no effect on health).
 */
import { z } from 'zod';
import type { ClusterMap } from '../clustermap/index.ts';
import type { ClusterConfig, PoolConfig, VolumeConfig } from '../config/index.ts';
import { ClusterView, PlacementError } from '../initiator/index.ts';
import type { NodeRecoveryReport } from '../recovery/report.ts';
import { formatBytes, plural } from './format.ts';

/** The health word, as in Ceph. */
export type Health = 'HEALTH_OK' | 'HEALTH_WARN' | 'HEALTH_ERR';

/** The cluster-wide status of `GET /v1/status` (bytes; node ids as in the map). */
export interface ClusterStatus {
  clusterId: string;
  /** Epoch of the map the status was computed with (the serving node's). */
  epoch: number;
  health: Health;
  /** One line per reason the health is not HEALTH_OK, e.g. "1 node down: 2". Empty when OK. */
  checks: string[];
  nodes: {
    total: number;
    up: number;
    in: number;
    /** Ids of nodes the map marks down, ascending. */
    down: number[];
    /** Ids of nodes the map marks out, ascending. */
    out: number[];
    /** Ids of nodes whose report says they are peering, ascending. */
    peering: number[];
  };
  /** Up nodes whose report could not be had, with why, ascending by node. */
  unreachable: Array<{ node: number; error: string }>;
  pools: Array<{ id: number; name: string; size: number; min_size: number }>;
  /** Number of volume records in cluster.json. */
  volumes: number;
  data: {
    extents: number;
    /** Sum over extents of their bytes. */
    bytes: number;
    degraded: number;
    degradedBytes: number;
    recovering: number;
    inactive: number;
    inactiveBytes: number;
  };
  /** Volume ids that reports hold extents of but cluster.json does not place, ascending. */
  unknownVolumes: number[];
  /** Per reporting node, ascending: its epoch, peering flag, what it holds and has recovered. */
  recovery: Array<{
    node: number;
    epoch: number;
    peering: boolean;
    /** Extents it holds a copy of. */
    extents: number;
    /** Bytes of those copies. */
    bytes: number;
    recovered: NodeRecoveryReport['recovered'];
  }>;
}

const count = z.number().int().min(0);
const u32 = count.max(0xffffffff);

/**
 * Validates a NodeRecoveryReport received from another node (untrusted JSON): parse with
 * `.safeParse(body)`.
 */
export const NodeRecoveryReportSchema: z.ZodType<NodeRecoveryReport> = z.object({
  node: count.max(32767),
  epoch: u32,
  held: z.array(z.tuple([u32, u32, count])),
  missed: z.array(z.object({ node: count.max(32767), volume: u32, extent: u32 })),
  stale: z.array(z.tuple([u32, u32])),
  peering: z.boolean(),
  recovered: z.object({ extents: count, pages: count, repairs: count }),
});

/** Per-extent facts gathered from the reports. */
interface ExtentFacts {
  volume: number;
  extent: number;
  bytes: number;
  /** Named in some `missed` or `stale` record. */
  flagged: boolean;
  /** A `missed` record targets an up node, or an up node lists it `stale`. */
  catchingUp: boolean;
}

/**
 * Computes the cluster status from `map` (the serving node's), `config` (pools and volumes
 * of cluster.json) and the reports gathered from the nodes. Pure; see the module comment
 * for the definitions.
 *
 * Every node the map marks up that has no report in `reports` is listed as unreachable,
 * with the reason from `errors` (by node id) or "no report". Reports of nodes the map marks
 * down are used all the same. When two reports name the same node, the last one counts.
 * @throws Error only on a map that ClusterView cannot compile (an invalid topology).
 */
export function computeStatus(map: ClusterMap, config: ClusterConfig, reports: readonly NodeRecoveryReport[], errors: ReadonlyMap<number, string> = new Map()): ClusterStatus {
  const view = new ClusterView(map, config.pools);
  const byNode = new Map<number, NodeRecoveryReport>();
  for (const r of reports) byNode.set(r.node, r);
  const sorted = [...byNode.values()].sort((a, b) => a.node - b.node);

  // Gather extents: bytes = max over holders; flags from missed/stale records.
  const extents = new Map<string, ExtentFacts>();
  const facts = (volume: number, extent: number): ExtentFacts => {
    const key = `${volume}:${extent}`;
    let f = extents.get(key);
    if (!f) {
      f = { volume, extent, bytes: 0, flagged: false, catchingUp: false };
      extents.set(key, f);
    }
    return f;
  };
  for (const r of sorted) {
    for (const [volume, extent, bytes] of r.held) {
      const f = facts(volume, extent);
      if (bytes > f.bytes) f.bytes = bytes;
    }
    for (const m of r.missed) {
      const f = facts(m.volume, m.extent);
      f.flagged = true;
      if (view.isUp(m.node)) f.catchingUp = true;
    }
    const reporterUp = view.isUp(r.node);
    for (const [volume, extent] of r.stale) {
      const f = facts(volume, extent);
      f.flagged = true;
      if (reporterUp) f.catchingUp = true;
    }
  }

  // Classify each extent against placement.
  const volumes = new Map<number, VolumeConfig>(config.volumes.map((v) => [v.id, v]));
  const pools = new Map<number, PoolConfig>(config.pools.map((p) => [p.id, p]));
  const unknownVolumes = new Set<number>();
  const data = { extents: extents.size, bytes: 0, degraded: 0, degradedBytes: 0, recovering: 0, inactive: 0, inactiveBytes: 0 };
  for (const f of extents.values()) {
    data.bytes += f.bytes;
    let degraded = f.flagged;
    let inactive = false;
    const pool = pools.get(volumes.get(f.volume)?.pool ?? -1);
    if (!pool) {
      unknownVolumes.add(f.volume);
    } else {
      let upMembers: number;
      try {
        upMembers = view.members(f.volume, f.extent, pool.id).filter((leaf) => view.isUp(view.nodeOf(leaf))).length;
      } catch (e) {
        if (!(e instanceof PlacementError)) throw e;
        upMembers = 0;
        inactive = true;
      }
      if (upMembers < pool.replicas) degraded = true;
      if (upMembers < pool.minSize) inactive = true;
    }
    if (inactive) {
      degraded = true;
      data.inactive++;
      data.inactiveBytes += f.bytes;
    }
    if (degraded) {
      data.degraded++;
      data.degradedBytes += f.bytes;
      if (f.catchingUp) data.recovering++;
    }
  }

  // Nodes.
  const ids = (pred: (n: ClusterMap['nodes'][number]) => boolean): number[] => map.nodes.filter(pred).map((n) => n.id).sort((a, b) => a - b);
  const down = ids((n) => !n.up);
  const out = ids((n) => !n.in);
  const unreachable = ids((n) => n.up && !byNode.has(n.id)).map((node) => ({ node, error: errors.get(node) ?? 'no report' }));
  const peering = sorted.filter((r) => r.peering).map((r) => r.node);

  // Health and its reasons.
  const checks: string[] = [];
  if (data.inactive) checks.push(`${plural(data.inactive, 'extent')} inactive (${formatBytes(data.inactiveBytes)}): fewer than min_size members up, I/O waits`);
  if (down.length) checks.push(`${plural(down.length, 'node')} down: ${down.join(', ')}`);
  if (out.length) checks.push(`${plural(out.length, 'node')} out: ${out.join(', ')}`);
  for (const u of unreachable) checks.push(`node ${u.node} unreachable: ${u.error}`);
  if (peering.length) checks.push(`${peering.length === 1 ? 'node' : 'nodes'} ${peering.join(', ')} peering`);
  if (data.degraded) checks.push(`${plural(data.degraded, 'extent')} degraded (${formatBytes(data.degradedBytes)})${data.recovering ? `, ${data.recovering} recovering` : ''}`);
  const health: Health = data.inactive ? 'HEALTH_ERR' : checks.length ? 'HEALTH_WARN' : 'HEALTH_OK';

  return {
    clusterId: map.clusterId,
    epoch: map.epoch,
    health,
    checks,
    nodes: { total: map.nodes.length, up: map.nodes.filter((n) => n.up).length, in: map.nodes.filter((n) => n.in).length, down, out, peering },
    unreachable,
    pools: config.pools.map((p) => ({ id: p.id, name: p.name, size: p.replicas, min_size: p.minSize })),
    volumes: config.volumes.length,
    data,
    unknownVolumes: [...unknownVolumes].sort((a, b) => a - b),
    recovery: sorted.map((r) => ({
      node: r.node,
      epoch: r.epoch,
      peering: r.peering,
      extents: r.held.length,
      bytes: r.held.reduce((s, h) => s + h[2], 0),
      recovered: { ...r.recovered },
    })),
  };
}

/** Inputs of gatherStatus. */
export interface GatherStatusOptions {
  /** The serving node's current map: whom to ask, and what to compute against. */
  map: ClusterMap;
  /** cluster.json: pools and volumes. */
  config: ClusterConfig;
  /** Cluster token, sent as `Authorization: Bearer <token>`. */
  token: string;
  /** Id of the serving node: its report comes from `local`, not over HTTP. */
  self: number;
  /** The serving node's own report source (absent: the node counts as unreachable). */
  local?: () => NodeRecoveryReport;
  /** Per-node timeout in milliseconds (default 3000). */
  timeoutMs?: number;
}

/**
 * Fetches one node's report from its management API (`GET /v1/recovery`).
 * @throws Error with a one-line reason: unreachable, timeout, non-2xx (with the node's
 *   error text), or a reply that is not a valid report of that node.
 */
async function fetchReport(host: string, port: number, node: number, token: string, timeoutMs: number): Promise<NodeRecoveryReport> {
  let r: Response;
  try {
    r = await fetch(`http://${host}:${port}/v1/recovery`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    const err = e as Error;
    if (err.name === 'TimeoutError') throw new Error(`no answer from ${host}:${port} within ${timeoutMs} ms`);
    throw new Error(`${host}:${port}: ${err.cause instanceof Error ? err.cause.message : err.message}`);
  }
  const text = await r.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`${host}:${port} answered HTTP ${r.status} with a body that is not JSON`);
  }
  if (!r.ok) throw new Error(`HTTP ${r.status}: ${(body as { error?: unknown } | null)?.error ?? 'no error text'}`);
  const parsed = NodeRecoveryReportSchema.safeParse(body);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new Error(`bad report: ${i.path.join('.') || '(body)'}: ${i.message}`);
  }
  if (parsed.data.node !== node) throw new Error(`bad report: it is node ${parsed.data.node}'s`);
  return parsed.data;
}

/**
 * The cluster status as the serving node sees it: asks every node the map marks up for its
 * report in parallel (itself in-process through `local`, the others over HTTP with the
 * cluster token, each within `timeoutMs`), then computeStatus. A node that does not answer
 * in time, answers with an error or with a malformed report is listed as unreachable with
 * the reason. Never rejects for a node's failure.
 * @throws Error only as computeStatus does.
 */
export async function gatherStatus(opts: GatherStatusOptions): Promise<ClusterStatus> {
  const timeoutMs = opts.timeoutMs ?? 3000;
  const errors = new Map<number, string>();
  const reports: NodeRecoveryReport[] = [];
  await Promise.all(opts.map.nodes.filter((n) => n.up).map(async (n) => {
    try {
      if (n.id === opts.self) {
        if (!opts.local) throw new Error('this node has no recovery report source');
        reports.push(opts.local());
      } else {
        reports.push(await fetchReport(n.host, n.apiPort, n.id, opts.token, timeoutMs));
      }
    } catch (e) {
      errors.set(n.id, (e as Error).message);
    }
  }));
  return computeStatus(opts.map, opts.config, reports, errors);
}
