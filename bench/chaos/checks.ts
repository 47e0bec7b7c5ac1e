/**
 * The chaos suite's checks between rounds: waiting for HEALTH_OK (GET /v1/status), and
 * comparing every extent's copies member by member over the data path.
 *
 * Replica check: every node's recovery report (GET /v1/recovery) lists the extents it holds;
 * for each extent of the volume under test held anywhere, placement on the newest map
 * (ClusterView.members) names its members, and each member is asked, with Flag.Recovery (no
 * fencing, no repair, no "current" check — the member's own copy as it is), for the page
 * versions (Op.Versions) and the bytes (Op.Read) of the whole extent. All members must
 * answer Ok with identical versions and bytes. Copies held by nodes that are no longer
 * members (waiting to be trimmed) are counted, not compared.
 */
import { decodeVersions, type NodeRecoveryReport } from '../../src/recovery/index.ts';
import { Flag, Op, Status, statusName, type Reply, type RequestHeader } from '../../src/wire/index.ts';
import { api, mapNodes, type ChaosContext, type WirePeers } from './context.ts';

/** The fields of GET /v1/status (src/api/status.ts ClusterStatus) the suite reads. */
interface Served {
  health: 'HEALTH_OK' | 'HEALTH_WARN' | 'HEALTH_ERR';
  epoch: number;
  checks: string[];
  servedBy: number;
}

/**
 * The cluster status from the first node that answers, trying up nodes of the current map
 * other than `avoid` first.
 * @throws Error naming every node's failure when none answers.
 */
export async function clusterStatus(ctx: ChaosContext, avoid: number[] = []): Promise<Served> {
  const nodes = mapNodes(ctx);
  const order = [...nodes.filter((n) => n.up && !avoid.includes(n.id)), ...nodes.filter((n) => !n.up || avoid.includes(n.id))];
  const errors: string[] = [];
  for (const n of order) {
    try {
      return await api(ctx, n.id, 8000).call<Served>('GET', '/v1/status');
    } catch (e) {
      errors.push(`node ${n.id}: ${(e as Error).message}`);
    }
  }
  throw new Error(`no node served /v1/status (${errors.join('; ')})`);
}

/** Outcome of waitHealed. */
export interface HealOutcome {
  healed: boolean;
  /** When it was seen healed (ms since 1970); 0 when it never was. */
  at: number;
  /** The last status (or error) seen, one line, for failure reasons. */
  last: string;
}

/**
 * Polls GET /v1/status (every 250 ms) until it says HEALTH_OK at epoch >= `minEpoch` and
 * `extra` (when given) resolves true; gives up after `timeoutMs`.
 */
export async function waitHealed(ctx: ChaosContext, opts: { minEpoch: number; avoid?: number[]; extra?: () => Promise<boolean | string>; timeoutMs: number }): Promise<HealOutcome> {
  const end = Date.now() + opts.timeoutMs;
  let last = 'no status yet';
  for (;;) {
    try {
      const s = await clusterStatus(ctx, opts.avoid);
      if (s.epoch > ctx.cluster.view.epoch) await ctx.cluster.follower!.refresh(s.epoch).catch(() => undefined);
      if (s.health !== 'HEALTH_OK') last = `${s.health} at epoch ${s.epoch}: ${s.checks.join('; ')}`;
      else if (s.epoch < opts.minEpoch) last = `HEALTH_OK but at epoch ${s.epoch} < ${opts.minEpoch} (node ${s.servedBy} behind)`;
      else {
        const extra = opts.extra ? await opts.extra() : true;
        if (extra === true) return { healed: true, at: Date.now(), last: `HEALTH_OK at epoch ${s.epoch}` };
        last = `HEALTH_OK at epoch ${s.epoch}, but ${extra === false ? 'the fault is not undone yet' : extra}`;
      }
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() >= end) return { healed: false, at: 0, last };
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Every up node's recovery report; nodes that do not answer are listed in `errors`. */
export async function recoveryReports(ctx: ChaosContext): Promise<{ reports: NodeRecoveryReport[]; errors: string[] }> {
  const reports: NodeRecoveryReport[] = [];
  const errors: string[] = [];
  await Promise.all(mapNodes(ctx).filter((n) => n.up).map(async (n) => {
    try {
      reports.push(await api(ctx, n.id, 8000).call<NodeRecoveryReport>('GET', '/v1/recovery'));
    } catch (e) {
      errors.push(`node ${n.id}: ${(e as Error).message}`);
    }
  }));
  return { reports, errors };
}

/**
 * Sends `h` to node `node` at the run's current epoch, following StaleEpoch replies (the
 * node's newer epoch, refreshing the initiator's view) up to 5 times.
 */
export async function memberRequest(ctx: ChaosContext, peers: WirePeers, node: number, h: Omit<RequestHeader, 'id' | 'epoch'>, payload?: Buffer): Promise<Reply> {
  let epoch = ctx.cluster.view.epoch;
  for (let i = 0; ; i++) {
    const r = await (await peers.get(node)).request({ ...h, epoch }, payload);
    if (r.h.status !== Status.StaleEpoch || i >= 5) return r;
    epoch = Math.max(epoch, r.h.aux);
    await ctx.cluster.follower!.refresh(epoch).catch(() => undefined);
  }
}

/** Result of a replica check. */
export interface ReplicaCheck {
  /** Extents of the volume compared. */
  extents: number;
  /** One line per extent whose copies differ (or that a member cannot serve). */
  mismatches: string[];
  /** Copies held by nodes that are not members of the extent (not yet trimmed). */
  strays: number;
}

/** The first page at which `a` and `b` differ (both whole extents). */
function firstDifferentPage(a: Buffer, b: Buffer): number {
  for (let p = 0; p * 4096 < Math.max(a.length, b.length); p++) {
    if (!a.subarray(p * 4096, (p + 1) * 4096).equals(b.subarray(p * 4096, (p + 1) * 4096))) return p;
  }
  return -1;
}

/**
 * Compares every held extent's copies on its members (see the module comment).
 * @throws Error when a node's recovery report cannot be had (the check would be incomplete).
 */
export async function replicaCheck(ctx: ChaosContext, peers: WirePeers): Promise<ReplicaCheck> {
  const { reports, errors } = await recoveryReports(ctx);
  if (errors.length) throw new Error(`recovery reports missing: ${errors.join('; ')}`);
  const newest = Math.max(...reports.map((r) => r.epoch));
  if (newest > ctx.cluster.view.epoch) await ctx.cluster.follower!.refresh(newest);
  const view = ctx.cluster.view;
  const vol = ctx.volume;
  const pages = vol.extentBytes / 4096;
  const holders = new Map<number, Set<number>>();
  for (const r of reports) {
    for (const [volume, extent] of r.held) {
      if (volume !== vol.id) continue;
      const s = holders.get(extent) ?? new Set<number>();
      s.add(r.node);
      holders.set(extent, s);
    }
  }
  const mismatches: string[] = [];
  let strays = 0;
  for (const extent of [...holders.keys()].sort((a, b) => a - b)) {
    let members: number[];
    try {
      members = view.members(vol.id, extent, vol.pool);
    } catch (e) {
      mismatches.push(`extent ${extent}: cannot be placed: ${(e as Error).message}`);
      continue;
    }
    const memberNodes = new Set(members.map((m) => view.nodeOf(m)));
    for (const n of holders.get(extent)!) if (!memberNodes.has(n)) strays++;
    const copies = await Promise.all(members.map(async (leaf) => {
      const node = view.nodeOf(leaf);
      const base = { flags: Flag.Recovery, volume: vol.id, extent, partition: leaf, firstPage: 0, pages, lease: 0, version: 0, members: [] };
      try {
        const v = await memberRequest(ctx, peers, node, { ...base, op: Op.Versions });
        const d = await memberRequest(ctx, peers, node, { ...base, op: Op.Read });
        if (v.h.status !== Status.Ok || d.h.status !== Status.Ok) return { leaf, node, error: `Versions ${statusName(v.h.status)}, Read ${statusName(d.h.status)}` };
        return { leaf, node, versions: decodeVersions(v.payload), data: Buffer.from(d.payload) };
      } catch (e) {
        return { leaf, node, error: (e as Error).message };
      }
    }));
    const lines: string[] = [];
    for (const c of copies) {
      if (c.error) lines.push(`partition ${c.leaf} (node ${c.node}) cannot serve its copy: ${c.error}`);
    }
    const first = copies[0];
    if (!lines.length) {
      for (const c of copies.slice(1)) {
        const a = new Map(first.versions!.map((p) => [p.page, `${p.version}${p.mapped ? '' : ' trimmed'}`]));
        const b = new Map(c.versions!.map((p) => [p.page, `${p.version}${p.mapped ? '' : ' trimmed'}`]));
        const differ = [...new Set([...a.keys(), ...b.keys()])].filter((p) => a.get(p) !== b.get(p)).sort((x, y) => x - y);
        if (differ.length) {
          const p = differ[0];
          lines.push(`page versions differ between partition ${first.leaf} (node ${first.node}) and ${c.leaf} (node ${c.node}) on ${differ.length} page(s), e.g. page ${p}: ${a.get(p) ?? 'none'} vs ${b.get(p) ?? 'none'}`);
        } else if (!c.data!.equals(first.data!)) {
          lines.push(`bytes differ between partition ${first.leaf} (node ${first.node}) and ${c.leaf} (node ${c.node}), first at page ${firstDifferentPage(first.data!, c.data!)}`);
        }
      }
    }
    if (lines.length) mismatches.push(`extent ${extent}: ${lines.join('; ')}`);
  }
  return { extents: holders.size, mismatches, strays };
}
