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
 *   out, any up node did not answer (unreachable) or is peering, any extent is degraded, or
 *   resync, backfill or rebalance is in progress on some node; HEALTH_OK otherwise (misplaced
 *   copies and scrubs do not count). `checks` holds one human-readable line per reason.
 *
 * Volumes that cluster.json does not list — the catalog's (volume 0) and every volume created
 * through it — are placed in pool 0, as the nodes place them. Extents of a volume whose pool
 * cluster.json does not know cannot be placed here: they count in `extents` and are degraded
 * only through `missed`/`stale`, and their volume ids are listed in `unknownVolumes` (no
 * effect on health).
 *
 * Background work and data movement (src/recovery/report.ts):
 * - **progress**: per recovery kind, the cluster-wide sums of the nodes' passes
 *   (summarizeProgress). Resync, backfill or rebalance active on any node makes the health
 *   HEALTH_WARN with one check line per such kind ("backfill: 120/300 extents, 45.0 MiB/s,
 *   ETA 12 s"); a scrub alone does not change the health.
 * - **misplaced**: copies a node holds (`held`) of an extent whose placed members do not
 *   include that node — the copy of a former member that awaits trimming once every member
 *   has the extent. Only extents that can be placed count. Misplaced copies do not change
 *   the health: unlike Ceph, which warns about misplaced objects, Cairn stays HEALTH_OK once
 *   every extent is fully replicated on its members, and lists misplaced copies in the
 *   output only. Copies are compared per node: a copy on the wrong partition of a member's
 *   node is not seen here (`held` does not name partitions).
 * - **traffic**: the sums of the nodes' recovery traffic counters (since each node started).
 *
 * Reports from nodes that do not yet fill `progress`, `traffic` or `rateLimit` count as
 * idle, with no traffic and no rate limit.
 */
import { z } from 'zod';
import type { ClusterMap } from '../clustermap/index.ts';
import type { ClusterConfig, PoolConfig, VolumeConfig } from '../config/index.ts';
import { ClusterView, PlacementError } from '../initiator/index.ts';
import { RECOVERY_KINDS, type NodeRecoveryReport, type RecoveryKind, type RecoveryProgress, type RecoveryTraffic } from '../recovery/report.ts';
import { formatBytes, formatProgress, plural } from './format.ts';

/** The health word, as in Ceph. */
export type Health = 'HEALTH_OK' | 'HEALTH_WARN' | 'HEALTH_ERR';

/**
 * Cluster-wide progress of one kind of recovery work (summarizeProgress): sums over the
 * nodes' passes of the kind (bytes; rates in bytes per second; times in ms since 1970).
 */
export interface ProgressSummary {
  kind: RecoveryKind;
  /** Some node's pass of this kind has work left. */
  active: boolean;
  /** Nodes whose pass of this kind is active, ascending. */
  nodes: number[];
  /** Earliest start among the active passes; null when none is active (or none says when). */
  startedAt: number | null;
  /** When idle: the latest end among the nodes' last passes (null before any). Null while active. */
  finishedAt: number | null;
  extentsTotal: number;
  extentsDone: number;
  bytesTotal: number;
  bytesDone: number;
  /** Sum of the nodes' rates (bytes per second over about the last 10 s). */
  rate: number;
  /**
   * Estimated seconds to completion (whole seconds, rounded up): bytes left ÷ rate, or, when
   * the bytes left are not known (bytesTotal 0, or already reached while extents remain), the
   * extents left × the mean bytes of a done extent ÷ rate. Null when idle, when the rate is 0,
   * or when neither estimate is possible.
   */
  etaSeconds: number | null;
}

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
  /** Volumes holding data on some node, and those cluster.json lists (the catalog itself not counted; `cairn volume list` has them all). */
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
  /** Cluster-wide progress per recovery kind, in RECOVERY_KINDS order (summarizeProgress). */
  progress: ProgressSummary[];
  /** Sums of the reporting nodes' recovery traffic since each started (bytes). */
  traffic: RecoveryTraffic;
  /**
   * Copies held by a node that placement does not put the extent on (awaiting trimming; no
   * effect on health): extents with at least one such copy, the copies, and their bytes.
   */
  misplaced: { extents: number; copies: number; bytes: number };
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
    /** Its recovery traffic since it started (bytes). */
    traffic: RecoveryTraffic;
    /** Its recovery rate limit (bytes/s; 0: unlimited). */
    rateLimit: number;
  }>;
}

/** An idle entry of `kind` that has never run a pass (what a report without progress means). */
export function idleProgress(kind: RecoveryKind): RecoveryProgress {
  return { kind, active: false, startedAt: null, finishedAt: null, extentsTotal: 0, extentsDone: 0, bytesTotal: 0, bytesDone: 0, rate: 0 };
}

/** Zero traffic (what a report without traffic means). */
function noTraffic(): RecoveryTraffic {
  return { bytesIn: 0, bytesOut: 0, trimmedExtents: 0, trimmedBytes: 0, trimPasses: 0 };
}

/**
 * One entry per RECOVERY_KINDS entry, in that order, from a node's entries in any order:
 * a missing kind is idle, an unknown kind is dropped, and of two entries of a kind the last counts.
 */
function progressByKind(entries: ReadonlyArray<Omit<RecoveryProgress, 'kind'> & { kind: string }>): RecoveryProgress[] {
  const byKind = new Map<string, RecoveryProgress>();
  for (const e of entries) byKind.set(e.kind, { ...e, kind: e.kind as RecoveryKind });
  return RECOVERY_KINDS.map((k) => byKind.get(k) ?? idleProgress(k));
}

/**
 * `r` with the fields a node may not fill yet defaulted (idle progress, no traffic, no rate
 * limit) and its progress put in RECOVERY_KINDS order.
 */
function withRecoveryDefaults(r: NodeRecoveryReport): NodeRecoveryReport {
  const loose = r as Partial<Pick<NodeRecoveryReport, 'progress' | 'traffic' | 'rateLimit'>>;
  return { ...r, progress: progressByKind(loose.progress ?? []), traffic: loose.traffic ?? noTraffic(), rateLimit: loose.rateLimit ?? 0 };
}

/**
 * Cluster-wide progress per recovery kind, in RECOVERY_KINDS order, from the nodes' reports
 * (a report without `progress`, or without an entry of a kind, counts as idle for it). Pure.
 *
 * Which passes are summed: while some node's pass of a kind is active, the active passes
 * and the finished passes that ended at or after the earliest active start (a node that
 * finished its share of the same wave of work); when no pass is active, every node's last
 * pass. `rate` sums the active passes' rates only; `etaSeconds` is defined on
 * ProgressSummary.
 */
export function summarizeProgress(reports: ReadonlyArray<{ node: number; progress?: readonly RecoveryProgress[] }>): ProgressSummary[] {
  return RECOVERY_KINDS.map((kind) => {
    const passes = reports.map((r) => ({ node: r.node, p: r.progress?.find((x) => x.kind === kind) ?? idleProgress(kind) }));
    const active = passes.filter((x) => x.p.active);
    const starts = active.map((x) => x.p.startedAt).filter((t): t is number => t !== null);
    const startedAt = starts.length ? Math.min(...starts) : null;
    const summed = active.length
      ? passes.filter((x) => x.p.active || (startedAt !== null && x.p.finishedAt !== null && x.p.finishedAt >= startedAt))
      : passes;
    const sum = (f: (p: RecoveryProgress) => number, of = summed): number => of.reduce((s, x) => s + f(x.p), 0);
    const ends = passes.map((x) => x.p.finishedAt).filter((t): t is number => t !== null);
    const s: ProgressSummary = {
      kind,
      active: active.length > 0,
      nodes: active.map((x) => x.node).sort((a, b) => a - b),
      startedAt,
      finishedAt: active.length || !ends.length ? null : Math.max(...ends),
      extentsTotal: sum((p) => p.extentsTotal),
      extentsDone: sum((p) => p.extentsDone),
      bytesTotal: sum((p) => p.bytesTotal),
      bytesDone: sum((p) => p.bytesDone),
      rate: sum((p) => p.rate, active),
      etaSeconds: null,
    };
    s.etaSeconds = etaSeconds(s);
    return s;
  });
}

/** ProgressSummary.etaSeconds of `s` (its other fields set). */
function etaSeconds(s: ProgressSummary): number | null {
  if (!s.active || !(s.rate > 0)) return null;
  const bytesLeft = Math.max(0, s.bytesTotal - s.bytesDone);
  const extentsLeft = Math.max(0, s.extentsTotal - s.extentsDone);
  let left: number;
  if (bytesLeft > 0) left = bytesLeft;
  else if (extentsLeft === 0) left = 0;
  else if (s.extentsDone > 0 && s.bytesDone > 0) left = extentsLeft * (s.bytesDone / s.extentsDone);
  else return null;
  return Math.ceil(left / s.rate);
}

const count = z.number().int().min(0);
const u32 = count.max(0xffffffff);

/**
 * Validates a NodeRecoveryReport received from another node (untrusted JSON): parse with
 * `.safeParse(body)`.
 */
const nonNegative = z.number().finite().min(0);

/** One progress entry; its kind is checked by progressByKind (unknown kinds are dropped). */
const RecoveryProgressSchema = z.object({
  kind: z.string().max(64),
  active: z.boolean(),
  startedAt: nonNegative.nullable(),
  finishedAt: nonNegative.nullable(),
  extentsTotal: count,
  extentsDone: count,
  bytesTotal: count,
  bytesDone: count,
  rate: nonNegative,
});

/**
 * Validates a NodeRecoveryReport received from another node (untrusted JSON): parse with
 * `.safeParse(body)`. `progress`, `traffic` and `rateLimit` may be absent (nodes that do not
 * fill them yet): they parse as idle progress, zero traffic and no limit. Progress comes out
 * one entry per RECOVERY_KINDS entry, in that order (missing kinds idle, unknown kinds dropped).
 */
export const NodeRecoveryReportSchema: z.ZodType<NodeRecoveryReport, z.ZodTypeDef, unknown> = z.object({
  node: count.max(32767),
  epoch: u32,
  held: z.array(z.tuple([u32, u32, count])),
  missed: z.array(z.object({ node: count.max(32767), volume: u32, extent: u32 })),
  stale: z.array(z.tuple([u32, u32])),
  peering: z.boolean(),
  recovered: z.object({ extents: count, pages: count, repairs: count }),
  progress: z.array(RecoveryProgressSchema).max(64).optional().transform((p) => progressByKind(p ?? [])),
  traffic: z.object({ bytesIn: count, bytesOut: count, trimmedExtents: count, trimmedBytes: count, trimPasses: count.default(0) }).optional().transform((t) => t ?? noTraffic()),
  rateLimit: nonNegative.optional().transform((l) => l ?? 0),
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
  /** Nodes holding a copy, with the copy's bytes. */
  holders: Array<[node: number, bytes: number]>;
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
  for (const r of reports) byNode.set(r.node, withRecoveryDefaults(r));
  const sorted = [...byNode.values()].sort((a, b) => a.node - b.node);

  // Gather extents: bytes = max over holders; flags from missed/stale records.
  const extents = new Map<string, ExtentFacts>();
  const facts = (volume: number, extent: number): ExtentFacts => {
    const key = `${volume}:${extent}`;
    let f = extents.get(key);
    if (!f) {
      f = { volume, extent, bytes: 0, flagged: false, catchingUp: false, holders: [] };
      extents.set(key, f);
    }
    return f;
  };
  for (const r of sorted) {
    for (const [volume, extent, bytes] of r.held) {
      const f = facts(volume, extent);
      if (bytes > f.bytes) f.bytes = bytes;
      f.holders.push([r.node, bytes]);
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
  const misplaced = { extents: 0, copies: 0, bytes: 0 };
  for (const f of extents.values()) {
    data.bytes += f.bytes;
    let degraded = f.flagged;
    let inactive = false;
    const pool = pools.get(volumes.get(f.volume)?.pool ?? 0);
    if (!pool) {
      unknownVolumes.add(f.volume);
    } else {
      let upMembers: number;
      try {
        const memberNodes = view.members(f.volume, f.extent, pool.id).map((leaf) => view.nodeOf(leaf));
        upMembers = memberNodes.filter((n) => view.isUp(n)).length;
        const stray = f.holders.filter(([n]) => !memberNodes.includes(n));
        if (stray.length) {
          misplaced.extents++;
          misplaced.copies += stray.length;
          misplaced.bytes += stray.reduce((s, [, b]) => s + b, 0);
        }
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
  const progress = summarizeProgress(sorted);
  for (const p of progress) if (p.active && p.kind !== 'scrub') checks.push(`${p.kind}: ${formatProgress(p)}`);
  const health: Health = data.inactive ? 'HEALTH_ERR' : checks.length ? 'HEALTH_WARN' : 'HEALTH_OK';

  return {
    clusterId: map.clusterId,
    epoch: map.epoch,
    health,
    checks,
    nodes: { total: map.nodes.length, up: map.nodes.filter((n) => n.up).length, in: map.nodes.filter((n) => n.in).length, down, out, peering },
    unreachable,
    pools: config.pools.map((p) => ({ id: p.id, name: p.name, size: p.replicas, min_size: p.minSize })),
    volumes: new Set([...config.volumes.map((v) => v.id), ...[...extents.values()].map((f) => f.volume).filter((v) => v !== 0)]).size,
    data,
    unknownVolumes: [...unknownVolumes].sort((a, b) => a - b),
    progress,
    traffic: sorted.reduce((t, r) => ({
      bytesIn: t.bytesIn + r.traffic.bytesIn,
      bytesOut: t.bytesOut + r.traffic.bytesOut,
      trimmedExtents: t.trimmedExtents + r.traffic.trimmedExtents,
      trimmedBytes: t.trimmedBytes + r.traffic.trimmedBytes,
      trimPasses: t.trimPasses + r.traffic.trimPasses,
    }), noTraffic()),
    misplaced,
    recovery: sorted.map((r) => ({
      node: r.node,
      epoch: r.epoch,
      peering: r.peering,
      extents: r.held.length,
      bytes: r.held.reduce((s, h) => s + h[2], 0),
      recovered: { ...r.recovered },
      traffic: { ...r.traffic },
      rateLimit: r.rateLimit,
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
