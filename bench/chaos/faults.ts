/**
 * The faults a chaos round injects, each planned from the round's seeded generator and then
 * run against the live cluster while background writes go on:
 *
 * - `kill9-node`: SIGKILL of a storage node process; the supervisor restarts it.
 * - `kill9-gateway`: SIGKILL of the gateway (NBD server + initiator); a new one takes the
 *   write lease (next generation) on the same port and fio starts a new job against it.
 * - `sigstop-node`: SIGSTOP of a node for longer than down detection (until the map marks it
 *   down, and at least the planned hold), then SIGCONT.
 * - `out-in`: the operator marks a node out, then (after the hold) in again.
 * - `reweight`: a node reweighted to 0.5–1, then (after the hold) back to 1.
 * - `add-node`: LocalCluster.addNode() (the cluster grows, up to 7 nodes).
 * - `corrupt`: 16 bytes of one flushed page of one member's copy flipped in its device file,
 *   then a deep scrub asked for (POST /v1/scrub {deep:true}) on that node. The page is found
 *   by content: the member's copy of the page is read over the wire (Flag.Recovery), and the
 *   partition's region of the device file is scanned for 4 KiB blocks equal to it (the
 *   allocator stores pages verbatim, 4 KiB-aligned). Every hit is flipped (a stale copy of
 *   the same bytes in an uncleaned segment is harmless to flip). The node keeps running:
 *   it keeps no page cache of its own, so its next read of the page sees the flipped bytes.
 *
 * Heal time counts from the fault's last action: the kill (kill9-*), SIGCONT (sigstop), the
 * `in` (out-in), the weight back to 1 (reweight), addNode() returning (add-node), the flipped
 * bytes written and the scrub requested (corrupt).
 */
import { open } from 'node:fs/promises';
import { resolve } from 'node:path';
import { decodePartitionLeafId } from '../../placement/index.ts';
import { partitionBytes } from '../../src/node/index.ts';
import { Flag, Op, Status, statusName } from '../../src/wire/index.ts';
import { memberRequest } from './checks.ts';
import { api, authorityNode, mapNodes, type ChaosContext, type WirePeers } from './context.ts';
import type { Rng } from './prng.ts';
import type { Workload } from './workload.ts';

/** Every fault kind, in the order the generator picks from. */
export const FAULT_KINDS = ['kill9-node', 'kill9-gateway', 'sigstop-node', 'out-in', 'reweight', 'add-node', 'corrupt'] as const;
/** One fault kind. */
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Most nodes add-node grows the cluster to. */
export const MAX_NODES = 7;

/** A round's planned fault: the kind and every random choice it needs, drawn up front. */
export interface FaultPlan {
  kind: FaultKind;
  /** In [0, 1): which of the eligible targets (nodes, segments) is hit. */
  targetPick: number;
  /** Background writes before the fault is injected (ms). */
  delayMs: number;
  /** How long the fault lasts before it is undone (ms; sigstop: at least until marked down). */
  holdMs: number;
  /** reweight: the temporary weight. */
  weight: number;
  /** corrupt: which page of the segment, which member, where in the page, and the flip mask. */
  pagePick: number;
  memberPick: number;
  byteOffset: number;
  mask: number;
}

/**
 * Draws round's fault from `rng`: the kind from `kinds` (those enabled and available now),
 * then every timing and choice, always in the same order.
 */
export function planFault(rng: Rng, kinds: readonly FaultKind[], downAfterMs: number): FaultPlan {
  const kind = rng.pick(kinds);
  return {
    kind,
    targetPick: rng.next(),
    delayMs: rng.int(500, 2000),
    holdMs: kind === 'sigstop-node' ? downAfterMs + rng.int(1000, 4000) : rng.int(2000, 6000),
    weight: Math.round(rng.range(0.5, 1) * 100) / 100,
    pagePick: rng.next(),
    memberPick: rng.next(),
    byteOffset: rng.int(0, 4096 - 16),
    mask: rng.int(1, 255),
  };
}

/** What running a fault left for the heal wait. */
export interface FaultOutcome {
  /** Human-readable target ("node 2", "gateway generation 3 -> 4", ...). */
  target: string;
  /** The fault's last action (ms since 1970): heal time counts from here. */
  healFrom: number;
  /** The heal wait needs a status at this epoch or newer. */
  minEpoch: number;
  /** Nodes not to ask for the status first. */
  avoid: number[];
  /** A fault-specific condition for "healed" (true, or why not yet). */
  extra?: () => Promise<boolean | string>;
  /** What went wrong while injecting or undoing it (the round fails with these). */
  problems: string[];
}

/** Everything a fault may need. */
export interface FaultDeps {
  ctx: ChaosContext;
  peers: WirePeers;
  workload: Workload;
  /** Whether the authority's node may be SIGSTOPped (it marks the others down). */
  stopAuthority: boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Node processes stopped with SIGSTOP and not yet continued. */
const stopped = new Set<number>();

/** Sends SIGCONT to every node process a sigstop fault left stopped (cleanup after an abort). */
export function resumeStopped(): void {
  for (const pid of stopped) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // already gone
    }
  }
  stopped.clear();
}

/** The element of `items` that `pick` in [0, 1) selects. */
function choose<T>(items: readonly T[], pick: number): T {
  return items[Math.min(items.length - 1, Math.floor(pick * items.length))];
}

/** Submits an operator map change through the authority; resolves with the new epoch. */
async function mapChange(ctx: ChaosContext, change: object): Promise<number> {
  const r = await api(ctx, authorityNode(ctx), 15000).call<{ epoch: number }>('POST', '/v1/map/changes', change);
  await ctx.cluster.follower!.refresh(r.epoch).catch(() => undefined);
  return r.epoch;
}

/** Polls the authority's map until node `id` is marked down; resolves with that epoch, or 0 after `timeoutMs`. */
async function waitMarkedDown(ctx: ChaosContext, id: number, timeoutMs: number): Promise<number> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      const m = await api(ctx, authorityNode(ctx), 3000).call<{ epoch: number; nodes: Array<{ id: number; up: boolean }> }>('GET', '/v1/map');
      if (m.nodes.find((n) => n.id === id)?.up === false) return m.epoch;
    } catch {
      // the authority is busy or restarting: ask again
    }
    await sleep(100);
  }
  return 0;
}

/** Runs `plan` against the cluster (injects, holds, undoes it) and says what to wait for. */
export async function runFault(d: FaultDeps, plan: FaultPlan): Promise<FaultOutcome> {
  switch (plan.kind) {
    case 'kill9-node': return kill9Node(d, plan);
    case 'kill9-gateway': return kill9Gateway(d);
    case 'sigstop-node': return sigstopNode(d, plan);
    case 'out-in': return outIn(d, plan);
    case 'reweight': return reweight(d, plan);
    case 'add-node': return addNode(d);
    case 'corrupt': return corrupt(d, plan);
  }
}

async function kill9Node({ ctx }: FaultDeps, plan: FaultPlan): Promise<FaultOutcome> {
  const id = choose(ctx.cluster.runningNodes(), plan.targetPick);
  const before = ctx.cluster.restarts(id);
  const pid = ctx.cluster.pidOf(id)!;
  const minEpoch = ctx.cluster.view.epoch;
  process.kill(pid, 'SIGKILL');
  return {
    target: `node ${id}`,
    healFrom: Date.now(),
    minEpoch,
    avoid: [id],
    extra: async () => (ctx.cluster.restarts(id) > before && ctx.cluster.peered.has(id) ? true : `node ${id} not restarted and peered yet`),
    problems: [],
  };
}

async function kill9Gateway({ ctx }: FaultDeps): Promise<FaultOutcome> {
  const gw = ctx.gateway;
  const old = gw.generation;
  await gw.kill9();
  const healFrom = Date.now();
  const problems: string[] = [];
  await gw.start().catch((e: Error) => problems.push(`new gateway: ${e.message}`));
  return {
    target: `gateway (generation ${old} -> ${gw.generation || 'none'})`,
    healFrom,
    minEpoch: ctx.cluster.view.epoch,
    avoid: [],
    extra: async () => (gw.up ? true : 'no gateway serves NBD'),
    problems,
  };
}

async function sigstopNode({ ctx, stopAuthority }: FaultDeps, plan: FaultPlan): Promise<FaultOutcome> {
  const candidates = ctx.cluster.runningNodes().filter((id) => stopAuthority || id !== authorityNode(ctx));
  const id = choose(candidates, plan.targetPick);
  const pid = ctx.cluster.pidOf(id)!;
  const problems: string[] = [];
  const t0 = Date.now();
  process.kill(pid, 'SIGSTOP');
  stopped.add(pid);
  let downEpoch = 0;
  try {
    downEpoch = await waitMarkedDown(ctx, id, Math.max(plan.holdMs, 30000));
    if (!downEpoch) problems.push(`node ${id} was not marked down within ${Math.max(plan.holdMs, 30000) / 1000} s of SIGSTOP`);
    const left = t0 + plan.holdMs - Date.now();
    if (left > 0) await sleep(left);
  } finally {
    process.kill(pid, 'SIGCONT');
    stopped.delete(pid);
  }
  return {
    target: `node ${id}${downEpoch ? ` (down at epoch ${downEpoch} after ${((Date.now() - t0) / 1000).toFixed(1)} s stopped)` : ''}`,
    healFrom: Date.now(),
    minEpoch: downEpoch + 1,
    avoid: [id],
    problems,
  };
}

async function outIn({ ctx }: FaultDeps, plan: FaultPlan): Promise<FaultOutcome> {
  const id = choose(mapNodes(ctx).filter((n) => n.in).map((n) => n.id), plan.targetPick);
  const out = await mapChange(ctx, { type: 'out', node: id });
  await sleep(plan.holdMs);
  const back = await mapChange(ctx, { type: 'in', node: id });
  return { target: `node ${id} (out at epoch ${out}, in at ${back})`, healFrom: Date.now(), minEpoch: back, avoid: [], problems: [] };
}

async function reweight({ ctx }: FaultDeps, plan: FaultPlan): Promise<FaultOutcome> {
  const id = choose(mapNodes(ctx).filter((n) => n.in).map((n) => n.id), plan.targetPick);
  await mapChange(ctx, { type: 'reweight', node: id, weight: plan.weight });
  await sleep(plan.holdMs);
  const back = await mapChange(ctx, { type: 'reweight', node: id, weight: 1 });
  return { target: `node ${id} (weight ${plan.weight}, back to 1 at epoch ${back})`, healFrom: Date.now(), minEpoch: back, avoid: [], problems: [] };
}

async function addNode({ ctx }: FaultDeps): Promise<FaultOutcome> {
  const id = await ctx.cluster.addNode();
  return { target: `node ${id} (new)`, healFrom: Date.now(), minEpoch: ctx.cluster.view.epoch, avoid: [], problems: [] };
}

/** Whether this cluster can run `kind` now (add-node: LocalCluster.addNode exists and fewer than MAX_NODES). */
export function canAddNode(ctx: ChaosContext): boolean {
  return typeof (ctx.cluster as { addNode?: unknown }).addNode === 'function' && mapNodes(ctx).length < MAX_NODES;
}

/** Device-file offsets in partition `leaf`'s region whose 4 KiB block equals `page`. */
async function findPage(ctx: ChaosContext, leaf: number, page: Buffer): Promise<{ path: string; hits: number[] }> {
  const { host, device, partition } = decodePartitionLeafId(leaf);
  const dev = mapNodes(ctx).find((n) => n.id === host)?.devices.find((x) => x.id === device);
  if (!dev) throw new Error(`partition ${leaf}: node ${host} device ${device} is not in the map`);
  const size = partitionBytes(dev.sizeBytes, dev.partitions);
  const start = partition * size;
  const path = resolve(ctx.dataDir, dev.path);
  const fh = await open(path, 'r');
  const hits: number[] = [];
  const head = page.readBigUInt64LE(0);
  try {
    const buf = Buffer.alloc(4 << 20);
    for (let o = 0; o < size; o += buf.length) {
      const n = Math.min(buf.length, size - o);
      const { bytesRead } = await fh.read(buf, 0, n, start + o);
      for (let b = 0; b + 4096 <= bytesRead; b += 4096) {
        if (buf.readBigUInt64LE(b) === head && buf.subarray(b, b + 4096).equals(page)) hits.push(start + o + b);
      }
    }
  } finally {
    await fh.close();
  }
  return { path, hits };
}

async function corrupt({ ctx, peers, workload }: FaultDeps, plan: FaultPlan): Promise<FaultOutcome> {
  const vol = ctx.volume;
  const segs = workload.live.filter((s) => s.flushed && s.complete);
  if (!segs.length) return { target: 'nothing (no flushed data yet)', healFrom: Date.now(), minEpoch: 0, avoid: [], problems: ['no flushed, fully written segment to corrupt'] };
  const seg = choose(segs, plan.targetPick);
  const slotPages = seg.size / 4096;
  const view = ctx.cluster.view;
  // The planned page, or the next ones when it reads as zeros (fio left no data there).
  for (let i = 0; i < 16; i++) {
    const offset = seg.offset + ((Math.floor(plan.pagePick * slotPages) + i) % slotPages) * 4096;
    const extent = Math.floor(offset / vol.extentBytes);
    const page = (offset % vol.extentBytes) / 4096;
    const members = view.members(vol.id, extent, vol.pool);
    const leaf = choose(members, plan.memberPick);
    const node = view.nodeOf(leaf);
    const read = { op: Op.Read, flags: Flag.Recovery, volume: vol.id, extent, partition: leaf, firstPage: page, pages: 1, lease: 0, version: 0, members: [] };
    const r = await memberRequest(ctx, peers, node, read);
    if (r.h.status !== Status.Ok) return { target: `node ${node}`, healFrom: Date.now(), minEpoch: 0, avoid: [], problems: [`reading page ${page} of extent ${extent} on partition ${leaf}: ${statusName(r.h.status)}`] };
    const good = Buffer.from(r.payload);
    if (good.every((b) => b === 0)) continue;
    const { path, hits } = await findPage(ctx, leaf, good);
    const target = `node ${node} (extent ${extent} page ${page}, partition ${leaf}, ${hits.length} block(s) in ${path.slice(ctx.dataDir.length + 1)})`;
    if (!hits.length) return { target, healFrom: Date.now(), minEpoch: 0, avoid: [], problems: [`page ${page} of extent ${extent} not found in partition ${leaf}'s region of ${path}`] };
    const fh = await open(path, 'r+');
    try {
      for (const at of hits) {
        const bytes = Buffer.alloc(16);
        await fh.read(bytes, 0, 16, at + plan.byteOffset);
        for (let k = 0; k < 16; k++) bytes[k] ^= plan.mask;
        await fh.write(bytes, 0, 16, at + plan.byteOffset);
      }
      await fh.datasync();
    } finally {
      await fh.close();
    }
    const problems: string[] = [];
    const seen = await memberRequest(ctx, peers, node, read);
    if (seen.h.status !== Status.BadChecksum) problems.push(`the flipped copy read ${statusName(seen.h.status)}, not BadChecksum (the page moved before the flip?)`);
    try {
      await api(ctx, node, 15000).call('POST', '/v1/scrub', { deep: true });
    } catch (e) {
      problems.push(`POST /v1/scrub {deep:true} on node ${node}: ${(e as Error).message}`);
    }
    return {
      target,
      healFrom: Date.now(),
      minEpoch: 0,
      avoid: [],
      extra: async () => {
        const now = await memberRequest(ctx, peers, node, read).catch((e: Error) => e);
        if (now instanceof Error) return `partition ${leaf} unreachable: ${now.message}`;
        if (now.h.status !== Status.Ok) return `partition ${leaf} still reads ${statusName(now.h.status)}`;
        return now.payload.equals(good) ? true : `partition ${leaf} reads other bytes`;
      },
      problems,
    };
  }
  return { target: `segment ${seg.name}`, healFrom: Date.now(), minEpoch: 0, avoid: [], problems: ['16 pages in a row read as zeros: nothing to corrupt'] };
}
