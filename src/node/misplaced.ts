/**
 * Trimming copies that placement no longer puts on this node (DESIGN "Recovery": the old
 * copy is trimmed once the new one is complete, and its space comes back). After an out,
 * in, reweight or a new node, a partition may hold extents whose members are now elsewhere.
 * Such a copy is a backfill source until every member has what it holds; then it is dead
 * weight. The rule, checked per extent with no coordination:
 *
 *   the extent has its full count of members (not undersized), every placed member is up,
 *   and every member's copy *dominates* this one — for each page mapped here, the member
 *   holds a newer version, or the same version mapped;
 *
 * then the members are flushed (what they hold is durable), the map is checked again (same
 * epoch as the decision, extent still not placed on this partition), and each mapped page is
 * trimmed at its own version, every trim of the copy queued in that same tick. Trimming at
 * the page's own version — not a newer one — matters: if placement
 * brings the extent back here, the members' data at that version wins over the trim in a
 * reconcile (src/recovery/reconcile.ts `newer`), and a host write (always a newer version)
 * is never undone.
 */
import type { Logger } from 'pino';
import type { ClusterView } from '../initiator/index.ts';
import type { ExtentCopy, PageVersion } from '../recovery/index.ts';
import { Op, Status, extentOfKey, statusName, volumeOfKey, type ConnectionPool } from '../wire/index.ts';
import { blank, localVersions } from './extent-copies.ts';
import type { NodeStorage } from './storage.ts';

/** What the trimmer needs from its node. */
export interface MisplacedContext {
  storage: NodeStorage;
  nodeId: number;
  /** The current map's view (placement, up states). */
  view(): ClusterView;
  volumeInfo(volume: number): { pool: number; extentPages: number };
  /** A copy of an extent on any partition (local or remote). */
  copy(leaf: number, volume: number, extent: number, extentPages: number): ExtentCopy;
  /** Makes everything node `node` has applied durable (Op.Flush; the local storage for this node). */
  flushNode(node: number): Promise<void>;
  log: Logger;
  /** True once the node is stopping. */
  stopped(): boolean;
}

/**
 * Makes what node `node` applied durable: this node (`self`) flushes its dirty partitions,
 * another is sent Op.Flush at map epoch `epoch`.
 * @throws Error when the node answers with another status; the connection error when unreachable.
 */
export async function flushNode(storage: NodeStorage, peers: ConnectionPool, self: number, epoch: number, node: number): Promise<void> {
  if (node === self) {
    await storage.flushDirty();
    return;
  }
  const c = await peers.get(node);
  const r = await c.request(blank(Op.Flush, epoch));
  if (r.h.status !== Status.Ok) throw new Error(`node ${node} did not flush: ${statusName(r.h.status)}`);
}

/** What one trim pass did. */
export interface TrimResult {
  /** Misplaced copies found. */
  misplaced: number;
  /** Copies trimmed. */
  extents: number;
  /** Bytes they held. */
  bytes: number;
}

/** Whether `theirs` holds every page mapped in `mine` at a version that is as new (the same version mapped, or newer). */
export function dominates(theirs: PageVersion[], mine: PageVersion[]): boolean {
  const t = new Map(theirs.map((v) => [v.page, v]));
  for (const m of mine) {
    if (!m.mapped) continue;
    const v = t.get(m.page);
    if (!v || v.version < m.version || (v.version === m.version && !v.mapped)) return false;
  }
  return true;
}

/**
 * One pass over every copy this node holds: trims those that are misplaced and dominated by
 * every (up) member. Copies whose members cannot all be reached are kept for a later pass.
 */
export async function trimMisplaced(ctx: MisplacedContext): Promise<TrimResult> {
  const view = ctx.view();
  const out: TrimResult = { misplaced: 0, extents: 0, bytes: 0 };
  const candidates: Array<{ leaf: number; key: number; members: number[]; mine: PageVersion[] }> = [];
  for (const [leaf, a] of ctx.storage.partitions) {
    const pins = a.listPins();
    for (const key of [...a.keys()]) {
      if (ctx.stopped()) return out;
      // A snapshot pinned here reads this copy as it is: trimming it (at each page's own
      // version, ≤ the pin) would erase the snapshot's pages. It stays until the pin goes.
      if (pins.some((p) => key >= p.firstKey && key <= p.lastKey)) continue;
      const volume = volumeOfKey(key);
      const extent = extentOfKey(key);
      const { pool, extentPages } = ctx.volumeInfo(volume);
      let members: number[];
      try {
        members = view.members(volume, extent, pool);
      } catch {
        continue; // cannot be placed now: keep every copy
      }
      if (members.includes(leaf)) continue;
      out.misplaced++;
      if (!members.every((m) => view.isUp(view.nodeOf(m)))) continue;
      // Undersized (fewer members placeable than the pool's replicas, e.g. 3 copies on a
      // 3-node cluster with one node out): this copy is the extent's missing redundancy, and
      // the node coming back in would have to pull it whole. It stays until placement gives
      // the extent its full count of members.
      if (members.length < view.pool(pool).replicas) continue;
      const mine = localVersions(a, key, extentPages);
      try {
        const lists = await Promise.all(members.map((m) => ctx.copy(m, volume, extent, extentPages).versions()));
        if (lists.every((l) => dominates(l, mine))) candidates.push({ leaf, key, members, mine });
      } catch {
        // a member did not answer: keep the copy for now
      }
    }
  }
  if (candidates.length === 0 || ctx.stopped()) return out;
  const nodes = new Set(candidates.flatMap((c) => c.members.map((m) => view.nodeOf(m))));
  try {
    await Promise.all([...nodes].map((n) => ctx.flushNode(n)));
  } catch (e) {
    ctx.log.info({ err: (e as Error).message }, 'trim of misplaced copies put off: a member did not flush');
    return out;
  }
  for (const c of candidates) {
    // The map is read again for every copy, right before its trims are queued, in the same
    // tick: once the epoch moved (placement may bring the extent back here, and a peering
    // round may already be comparing this copy), the pass stops. Trims queued before that are
    // waited for by the peering round (NodeRecovery awaits a running pass), so it compares
    // the trimmed copy, and the members' data wins over it (newer()).
    const now = ctx.view();
    if (now.epoch !== view.epoch || ctx.stopped()) return out;
    const volume = volumeOfKey(c.key);
    const extent = extentOfKey(c.key);
    let members: number[];
    try {
      members = now.members(volume, extent, ctx.volumeInfo(volume).pool);
    } catch {
      continue;
    }
    if (members.includes(c.leaf) || members.join() !== c.members.join()) continue;
    const a = ctx.storage.get(c.leaf);
    if (!a) continue;
    // Runs of consecutive pages at one version become one trim each, all queued now.
    const runs: Array<{ first: number; count: number; version: number }> = [];
    let pages = 0;
    for (const m of c.mine) {
      if (!m.mapped || a.version(c.key, m.page) !== m.version) continue;
      pages++;
      const r = runs[runs.length - 1];
      if (r && r.first + r.count === m.page && r.version === m.version) r.count++;
      else runs.push({ first: m.page, count: 1, version: m.version });
    }
    await Promise.all(runs.map((r) => a.trim(c.key, r.first, r.count, r.version)));
    ctx.storage.markDirty(a);
    if (pages === 0) continue;
    out.extents++;
    out.bytes += pages * 4096;
    ctx.log.info({ volume, extent, partition: c.leaf, members, bytes: pages * 4096 }, 'misplaced copy trimmed: every member has it');
  }
  return out;
}

/**
 * Runs trim passes (trimMisplaced) one at a time, in the background, and lets a peering
 * round wait for the pass in progress: a pass that began at an older epoch stops at its
 * next copy, and the trims it already queued must be in the versions the round compares,
 * or a copy placed back here could be vouched for and then turned into tombstones.
 */
export class MisplacedTrimmer {
  private running: Promise<void> | null = null;

  /** `done`: called with each finished pass's result. */
  constructor(private readonly ctx: MisplacedContext, private readonly done: (r: TrimResult) => void) {}

  /** Starts a pass unless one is running. Failures are logged; the next pass retries. */
  start(): void {
    if (this.running) return;
    this.running = trimMisplaced(this.ctx).then(
      (r) => {
        this.done(r);
        if (r.extents) this.ctx.log.info({ trimmed: r.extents, bytes: r.bytes, misplaced: r.misplaced - r.extents }, 'misplaced copies trimmed');
      },
      (e: Error) => this.ctx.log.warn({ err: e.message }, 'trim of misplaced copies failed; retried later'),
    ).finally(() => {
      this.running = null;
    });
  }

  /** Resolves once no pass is running. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }
}
