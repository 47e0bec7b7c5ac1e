/**
 * The questions peering asks other nodes: "what did I miss?" (Op.Missed) and "which extents
 * do you hold?" (Op.Held). Each retries every 100 ms until the peer answers, the map marks it
 * down (null: it no longer counts), or the asking node stops.
 */
import type { Logger } from 'pino';
import type { ClusterMap } from '../clustermap/index.ts';
import { type MissedRecord, decodeMissed } from '../recovery/index.ts';
import { Op, Status, statusName, type ConnectionPool } from '../wire/index.ts';
import { blank } from './extent-copies.ts';

/** What the queries need. */
export interface PeerQueryContext {
  nodeId: number;
  peers: ConnectionPool;
  map(): ClusterMap;
  log: Logger;
  stopped(): boolean;
}

/** One Op.Held entry: volume, extent, partition leaf id, mapped pages. */
export type HeldEntry = [number, number, number, number];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

/** Sends `req` to `peer` until an Ok reply (its payload), the peer is marked down or we stop (null). */
async function ask(ctx: PeerQueryContext, peer: number, what: string, req: ReturnType<typeof blank>): Promise<Buffer | null> {
  for (let attempt = 0; !ctx.stopped(); attempt++) {
    const m = ctx.map();
    const n = m.nodes.find((x) => x.id === peer);
    if (!n || !n.up) return null;
    try {
      const c = await ctx.peers.get(peer);
      const r = await c.request({ ...req, epoch: m.epoch });
      if (r.h.status === Status.Ok) return r.payload;
      if (attempt % 20 === 0) ctx.log.warn({ peer, status: statusName(r.h.status) }, `peering: peer refused ${what}; retrying`);
    } catch (e) {
      if (attempt % 20 === 0) ctx.log.warn({ peer, err: (e as Error).message }, `peering: peer unreachable for ${what}; retrying until it answers or is marked down`);
      ctx.peers.forgive(peer); // retry on our own schedule, not the pool's back-off
    }
    await sleep(100);
  }
  return null;
}

/** Asks node `peer` for the records of what this node missed; null when it went down. */
export async function askMissed(ctx: PeerQueryContext, peer: number): Promise<MissedRecord[] | null> {
  const p = await ask(ctx, peer, 'Missed', { ...blank(Op.Missed, 0), partition: ctx.nodeId });
  return p ? decodeMissed(p) : null;
}

/** Asks node `peer` which extents it holds; null when it went down. */
export async function askHeld(ctx: PeerQueryContext, peer: number): Promise<HeldEntry[] | null> {
  const p = await ask(ctx, peer, 'Held', blank(Op.Held, 0));
  if (!p) return null;
  const out: HeldEntry[] = [];
  for (let o = 0; o + 16 <= p.length; o += 16) out.push([p.readUInt32LE(o), p.readUInt32LE(o + 4), p.readUInt32LE(o + 8), p.readUInt32LE(o + 12)]);
  return out;
}
