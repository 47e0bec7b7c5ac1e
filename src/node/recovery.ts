/**
 * A storage node's part in keeping copies identical (DESIGN "Data path", promises 1–3):
 *
 * - Log-guided resync records: a write applied while a member of its extent is absent
 *   (down) is recorded, durably before the write is acknowledged, as missed by that member
 *   (src/recovery/missed-log.ts). Each record has an in-memory change stamp.
 * - Peering: when this node starts, or sees that it was marked down and up again (its
 *   `upEpoch` in the map changed), it asks every up node what it missed (Op.Missed) before
 *   it serves any read; the extents named are *stale* here — reads of them are refused with
 *   NotCurrent, so the initiator reads another member — until this node has pulled them
 *   (reconcile with the reporters, newest version of each page wins) and told the reporters
 *   (Op.Resolved). A pull cut halfway leaves the extent stale and is retried.
 * - Read repair: a host read that fails its crc32c here is served from another member's
 *   copy, which is written back over the bad one (logged with volume, extent, partition).
 * - Backfill and rebalance: when placement changes (out, in, reweight, a new node or device),
 *   the extents newly placed here are pulled from their current members and from the nodes
 *   still holding copies (declustered: every extent has its own sources, rotated over the
 *   members). A host read of an extent still being pulled is refused with NotCurrent, so
 *   the initiator reads a current member, and the extent jumps the queue. Copies no longer
 *   placed here are trimmed once every member has them (src/node/misplaced.ts).
 * - Throttled and resumable: pulls pass a per-node rate limit that yields to host I/O
 *   (src/recovery/throttle.ts; the rate comes from the map's settings), and the list of
 *   extents still to pull is stored (src/node/recovery-store.ts), so a restart resumes it.
 * - Progress per kind (resync, backfill, rebalance) for `cairn recovery status`.
 * - Unsettled extents for writer changes (Op.Suspects) and extent reconcile on request.
 */
import type { Logger } from 'pino';
import type { Allocator } from '../../allocator/index.ts';
import { decodePartitionLeafId } from '../../placement/index.ts';
import { mapSettings, type ClusterMap } from '../clustermap/index.ts';
import type { ClusterConfig } from '../config/index.ts';
import { ClusterView } from '../initiator/index.ts';
import {
  type MissedLog, ProgressTracker, RecoveryThrottle, UnsettledExtents, reconcileExtent,
  type ExtentCopy, type NodeRecoveryReport, type RecoveryKind, type RecoveryTraffic,
} from '../recovery/index.ts';
import { ConnectionPool, Op, extentKey, extentOfKey, volumeOfKey, type RequestHeader } from '../wire/index.ts';
import type { NodeStorage } from './storage.ts';
import { blank, localCopy, remoteCopy } from './extent-copies.ts';
import { MisplacedTrimmer, flushNode } from './misplaced.ts';
import type { SavedRecovery } from './recovery-store.ts';
import { askHeld, askMissed, type PeerQueryContext } from './peer-queries.ts';
import { WorkList, type StaleExtent } from './work-list.ts';
import { ResyncRecords } from './resync-records.ts';
import { heldList } from './local-extents.ts';
import { UNKNOWN_PLACEMENT, leafOut, placementFingerprint, type PeeringState } from './placement-state.ts';
import { reconcileMembers, repairRead, type RepairContext } from './repair.ts';

/** Most pages an extent has (1 MiB extents of 4 KiB pages). */
export const EXTENT_PAGES_MAX = 256;

/** Extents pulled at once. */
const PULL_CONCURRENCY = 4;
/** A pull that failed is retried after this long (ms). */
const PULL_RETRY_MS = 1000;
/** How often copies no longer placed here are looked for (ms). */
const TRIM_EVERY_MS = 5000;

/** The node's map as recovery needs it. */
export interface RecoveryMapView {
  epoch(): number;
  map(): ClusterMap;
}

/** What NodeRecovery needs. */
export interface NodeRecoveryOptions {
  config: ClusterConfig;
  nodeId: number;
  storage: NodeStorage;
  missed: MissedLog;
  peers: ConnectionPool;
  map: RecoveryMapView;
  log: Logger;
  /** Called when a peering round completes (the node serves reads of what it did not miss). */
  onPeered?: (upEpoch: number, staleExtents: number) => void;
  /**
   * What this node had caught up with when it last stopped (stored by the caller across
   * restarts): null on a node's first start, which takes the current map as caught up.
   */
  state: PeeringState | null;
  /** Stores the state once every extent it names is current here. */
  saveState?: (s: PeeringState) => Promise<void>;
  /** The work list stored by the last run (src/node/recovery-store.ts), or null. */
  saved?: SavedRecovery | null;
  /** Stores the work list (about once a second while it changes). */
  saveProgress?: (s: SavedRecovery) => Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

/** One node's resync, backfill, peering, repair and reconcile state. */
export class NodeRecovery {
  /** Writes the writer has not settled, per volume (Op.Suspects). */
  readonly unsettled = new UnsettledExtents();
  /** Extents this node lacks and pulls (it serves no reads of them meanwhile). */
  private readonly work: WorkList;
  private peeredAt: number | null = null;
  /** The upEpoch of each peer when it last answered Missed. */
  private readonly askedAt = new Map<number, number>();
  private fullAt: number | null;
  /** Fingerprint of the placement whose extents are current here (null: not known yet). */
  private placedFp: number | null;
  /** The map of that placement, when known in this run (for incremental rounds). */
  private placedMap: ClusterMap | null = null;
  /** The state last stored (what a restart may rely on). */
  private durable: PeeringState | null;
  private fpCache: { epoch: number; fp: number } = { epoch: -1, fp: 0 };
  private selfCache = { epoch: -1, up: false, upEpoch: 1, inEpoch: 1 };
  private prevView: ClusterView | null = null;
  private peeringRound: Promise<void> | null = null;
  private pulling = false;
  private closed = false;
  private view: ClusterView | null = null;
  private readonly poolOf: Map<number, { pool: number; extentPages: number }>;
  /** The stored work list, until the first map says whether it still applies. */
  private saved: SavedRecovery | null;
  private saving: Promise<void> | null = null;
  private readonly timers: NodeJS.Timeout[] = [];
  /** Passes over copies no longer placed here (src/node/misplaced.ts), one at a time. */
  private readonly trimmer: MisplacedTrimmer;
  private readonly queries: PeerQueryContext;
  private readonly repairs: RepairContext;
  /** Counters since start. */
  readonly recovered = { extents: 0, pages: 0, repairs: 0 };
  /** Recovery data moved since start. */
  readonly traffic: RecoveryTraffic = { bytesIn: 0, bytesOut: 0, trimmedExtents: 0, trimmedBytes: 0, trimPasses: 0 };
  /** Progress per kind. */
  readonly progress = new ProgressTracker();
  /** The recovery rate limit (bytes pulled, and scrub reads); its rate follows the map's settings. */
  readonly throttle: RecoveryThrottle;

  constructor(private readonly opts: NodeRecoveryOptions) {
    this.poolOf = new Map((opts.config.volumes ?? []).map((v) => [v.id, { pool: v.pool, extentPages: v.extentBytes / 4096 }]));
    this.fullAt = opts.state?.fullPeeredAt ?? null;
    this.placedFp = opts.state?.placement ?? null;
    this.durable = opts.state;
    this.saved = opts.saved ?? null;
    this.work = new WorkList(this.progress);
    this.records = new ResyncRecords(opts.nodeId, opts.missed);
    this.repairs = {
      view: () => this.clusterView(), volumeInfo: (v) => this.volumeInfo(v), log: opts.log, recovered: this.recovered,
      localCopy: (leaf, key, pages) => this.localCopy(leaf, key, pages), remoteCopy: (leaf, v, e, pages) => this.remoteCopy(leaf, v, e, pages),
    };
    this.queries = { nodeId: opts.nodeId, peers: opts.peers, map: () => opts.map.map(), log: opts.log, stopped: () => this.closed };
    this.throttle = new RecoveryThrottle({ bytesPerSec: mapSettings(opts.map.map()).recoveryBytesPerSec });
    if (this.saved) this.progress.restore(this.saved.progress);
    this.timers.push(setInterval(() => void this.saveProgress(), 1000).unref());
    this.trimmer = new MisplacedTrimmer({
      storage: opts.storage,
      nodeId: opts.nodeId,
      view: () => this.clusterView(),
      volumeInfo: (v) => this.volumeInfo(v),
      copy: (leaf, v, e, pages) => this.copyOf(leaf, v, e, pages, false),
      flushNode: (n) => flushNode(opts.storage, opts.peers, opts.nodeId, opts.map.epoch(), n),
      log: opts.log,
      stopped: () => this.closed,
    }, (r) => {
      this.traffic.trimmedExtents += r.extents;
      this.traffic.trimmedBytes += r.bytes;
      this.traffic.trimPasses++;
    });
    this.timers.push(setInterval(() => this.trimPass(), TRIM_EVERY_MS).unref());
  }

  /** The map's placement fingerprint, computed once per epoch. */
  private fingerprint(): number {
    const m = this.opts.map.map();
    if (this.fpCache.epoch !== m.epoch) this.fpCache = { epoch: m.epoch, fp: placementFingerprint(m) };
    return this.fpCache.fp;
  }

  /** The peering state a restart may rely on (null before the first map). */
  get peeringState(): PeeringState | null {
    return this.durable;
  }

  /** Records of what absent members missed (Op.Missed, Op.Resolved; written with host writes). */
  readonly records: ResyncRecords;

  /** This node's own entry of the current map, looked up once per epoch (reads ask per I/O). */
  private self(): { up: boolean; upEpoch: number; inEpoch: number } {
    const m = this.opts.map.map();
    if (this.selfCache.epoch !== m.epoch) {
      const me = m.nodes.find((n) => n.id === this.opts.nodeId);
      this.selfCache = { epoch: m.epoch, up: me?.up ?? false, upEpoch: me?.upEpoch ?? 1, inEpoch: me?.inEpoch ?? 1 };
    }
    return this.selfCache;
  }

  /** True while this node may lack writes of extents it has not yet heard about. */
  get peering(): boolean {
    const s = this.self();
    return !s.up || this.peeredAt !== s.upEpoch || (this.fullAt !== null && this.fullAt !== s.inEpoch);
  }

  /**
   * Whether a host read of `extent` of `volume` (from local partition `leaf`, when given)
   * may be served here. While a new placement has not been sorted out yet, only extents
   * this node (that partition) was already a member of qualify.
   */
  current(volume: number, extent: number, leaf?: number): boolean {
    if (this.peering) return false;
    if (this.work.has(volume, extent)) return false;
    if (this.placedFp === null || this.placedFp === this.fingerprint()) return true;
    if (!this.placedMap) return false;
    if (!this.prevView || this.prevView.epoch !== this.placedMap.epoch) this.prevView = new ClusterView(this.placedMap, this.opts.config.pools);
    const was = this.leafHere(this.prevView, volume, extent);
    return leaf === undefined ? was !== undefined : was === leaf;
  }

  /**
   * A host asked for `extent` of `volume` and was refused (NotCurrent): pull it before the
   * rest, so the initiator's retry finds it current.
   */
  prioritize(volume: number, extent: number): void {
    if (this.work.prioritize(volume, extent)) void this.pull();
  }

  /** The local partition `view` places the extent on, if any. */
  private leafHere(view: ClusterView, volume: number, extent: number): number | undefined {
    try {
      return view.members(volume, extent, this.volumeInfo(volume).pool).find((m) => view.nodeOf(m) === this.opts.nodeId);
    } catch {
      return undefined;
    }
  }

  private clusterView(): ClusterView {
    const m = this.opts.map.map();
    if (!this.view || this.view.epoch !== m.epoch) this.view = new ClusterView(m, this.opts.config.pools);
    return this.view;
  }

  /**
   * Pool and page count of a volume's extents: from cluster.json's volumes (only data
   * directories made before the catalog list any), else pool 0 and 256 pages (1 MiB). Catalog
   * volumes are not known here: this is right for every volume in pool 0, and for a smaller
   * extent size it only asks for pages past the extent's end, which no copy holds.
   */
  volumeInfo(volume: number): { pool: number; extentPages: number } {
    return this.poolOf.get(volume) ?? { pool: 0, extentPages: EXTENT_PAGES_MAX };
  }

  /** Stores the work list when it changed (and at once when it just emptied). */
  private async saveProgress(force = false): Promise<void> {
    if (!this.opts.saveProgress || (!this.work.changed && !force) || this.saving) return;
    this.work.changed = false;
    const state: SavedRecovery = { placement: this.fingerprint(), stale: this.work.saved(), progress: this.progress.snapshot() };
    this.saving = this.opts.saveProgress(state).catch((e: Error) => {
      this.work.changed = true;
      this.opts.log.warn({ err: e.message }, 'could not store the recovery work list');
    }).finally(() => (this.saving = null));
    await this.saving;
  }

  /** Takes up the stored work list (first map): extents still to pull stay stale. */
  private resume(fp: number, map: ClusterMap): void {
    const saved = this.saved;
    this.saved = null;
    if (!saved || saved.stale.length === 0) return;
    for (const s of saved.stale) this.work.mark(s.volume, s.extent, s.kind, s.bytes, s.holders, false);
    if (saved.placement === fp && this.fullAt !== null) {
      // The placement the list was made for still holds: nothing else is newly placed here.
      this.placedFp = fp;
      this.placedMap = map;
    }
    this.opts.log.info({ extents: saved.stale.length, samePlacement: saved.placement === fp }, 'recovery resumed: extents still to pull taken from the stored list');
    void this.pull();
  }

  /**
   * Called whenever the node's map changes (and once at start): follows the rate limit, and
   * starts a peering round when this node is up at an upEpoch it has not peered at, or a
   * placement round when placement changed.
   */
  onMap(): void {
    if (this.closed) return;
    const map = this.opts.map.map();
    this.throttle.setRate(mapSettings(map).recoveryBytesPerSec);
    if (this.peeringRound) return;
    const s = this.self();
    const fp = this.fingerprint();
    if (this.fullAt === null) {
      this.fullAt = s.inEpoch;
      if (this.opts.config.nodes.some((n) => n.id === this.opts.nodeId)) {
        // First start of a node the cluster was created with: it starts with the cluster,
        // before anything was written, so there is nothing to compare. (A creation node whose
        // data directory was lost is not told apart: see the issue-10 closing note.)
        this.placedFp = fp;
        this.placedMap = map;
        void this.persist();
      } else {
        // A node joining a running cluster (`cairn node add`): whatever placement gives it
        // lives elsewhere until pulled — no read is served before the placement round.
        this.placedFp = UNKNOWN_PLACEMENT;
        this.placedMap = null;
      }
    }
    if (this.saved) this.resume(fp, map);
    if (this.placedFp === fp && !this.placedMap) this.placedMap = map;
    if (!s.up) return;
    let round: Promise<void> | null = null;
    if (this.fullAt !== s.inEpoch) round = this.fullPeer(s.inEpoch, null, this.fullAt === 0 ? 'resync' : 'rebalance', false).then(() => this.peer(s.upEpoch));
    else if (this.placedFp !== fp) round = this.fullPeer(null, this.placedMap);
    else if (this.peeredAt !== s.upEpoch) round = this.peer(s.upEpoch);
    if (!round) {
      // A peer that came back (new upEpoch) may still hold records for us that we resolved
      // elsewhere while it was away: ask it again (those extents compare equal and are dropped).
      const back = this.opts.map.map().nodes.filter((n) => n.id !== this.opts.nodeId && n.up && this.askedAt.get(n.id) !== (n.upEpoch ?? 1)).map((n) => n.id);
      if (back.length === 0) return;
      round = this.askAgain(back);
    }
    this.peeringRound = round.catch((e: Error) => this.opts.log.error({ err: e.message }, 'peering round failed; retrying')).finally(() => {
      this.peeringRound = null;
      if (!this.closed) setTimeout(() => this.onMap(), 200).unref();
    });
  }

  /**
   * Full peering — this node came back in from out (`inEpoch`; kind rebalance: data moves
   * back) or restarted after a crash (kind resync; nobody recorded what it missed or lost
   * meanwhile): every extent that any up node holds and that is placed here becomes stale
   * until a reconcile with its members and holders made it current. Placement round (`inEpoch` null) — the map's placement
   * changed (out, in, reweight, a new node): the extents newly placed here (all placed here
   * when `prev`, the map caught up with, is unknown) are pulled the same way: backfill when
   * a former member went out, rebalance otherwise. `pullNow` false: the peering round that
   * follows starts the pull, once the peers' records of what this node missed joined the same
   * entries (pulled first, an extent would be pulled again for its record).
   */
  private async fullPeer(inEpoch: number | null, prev: ClusterMap | null, fullKind: RecoveryKind = 'resync', pullNow = true): Promise<void> {
    // A trim pass over misplaced copies that began at an older epoch stops at its next copy;
    // the trims it already queued must be in the local versions compared below, or a copy
    // placed back here could be vouched for and then turned into tombstones (misplaced.ts).
    await this.trimmer.idle();
    const t0 = Date.now();
    const map = this.opts.map.map();
    const fp = this.fingerprint();
    const peers = map.nodes.filter((n) => n.id !== this.opts.nodeId && n.up).map((n) => n.id);
    const why = inEpoch !== null ? 'back in or restarted after a crash' : prev ? 'placement changed' : 'placement changed while this node was away';
    this.opts.log.info({ epoch: map.epoch, peers, why }, 'full peering: comparing the extents placed here with their members and holders');
    const lists = await Promise.all(peers.map((p) => askHeld(this.queries, p)));
    const keys = new Map<number, { volume: number; extent: number; holders: number[]; bytes: number }>();
    const add = (volume: number, extent: number, leaf: number, pages: number): void => {
      const k = extentKey(volume, extent);
      let e = keys.get(k);
      if (!e) keys.set(k, (e = { volume, extent, holders: [], bytes: 0 }));
      e.holders.push(leaf);
      e.bytes = Math.max(e.bytes, pages * 4096);
    };
    for (const [leaf, a] of this.opts.storage.partitions) for (const k of a.keys()) add(volumeOfKey(k), extentOfKey(k), leaf, 0);
    for (const l of lists) for (const [v, e, leaf, pages] of l ?? []) add(v, e, leaf, pages);
    const view = this.clusterView();
    const before = prev && inEpoch === null ? new ClusterView(prev, this.opts.config.pools) : null;
    const marked = { resync: 0, backfill: 0, rebalance: 0, scrub: 0 };
    for (const e of keys.values()) {
      const leaf = this.leafHere(view, e.volume, e.extent);
      if (leaf === undefined) continue;
      let kind: RecoveryKind = inEpoch !== null ? fullKind : 'rebalance';
      if (before) {
        // Placed on the same partition before: nothing moves (another partition of this node: it does).
        if (this.leafHere(before, e.volume, e.extent) === leaf) continue;
        let was: number[] = [];
        try {
          was = before.members(e.volume, e.extent, this.volumeInfo(e.volume).pool);
        } catch {
          // not placeable before: rebalance
        }
        if (was.some((m) => leafOut(map, m))) kind = 'backfill';
      }
      marked[kind]++;
      this.work.mark(e.volume, e.extent, kind, e.bytes, e.holders);
    }
    if (this.closed || this.opts.map.map().epoch !== map.epoch) return; // the map moved on: the next round redoes it
    if (inEpoch !== null) this.fullAt = inEpoch;
    this.placedFp = fp;
    this.placedMap = map;
    this.opts.log.info({ epoch: map.epoch, extents: keys.size, marked, ms: Date.now() - t0 }, 'full peering: extents to pull marked stale');
    void this.saveProgress(true);
    if (!this.work.size) await this.persist();
    else if (pullNow) void this.pull();
  }

  /** Stores the peering state once nothing is stale (a restart then needs no full round). */
  private async persist(): Promise<void> {
    if (this.work.size > 0 || this.fullAt === null || this.placedFp === null || this.fullAt === 0) return;
    const st = { fullPeeredAt: this.fullAt, placement: this.placedFp };
    if (this.durable && this.durable.fullPeeredAt === st.fullPeeredAt && this.durable.placement === st.placement) return;
    try {
      await this.opts.saveState?.(st);
      this.durable = st;
    } catch (e) {
      this.opts.log.warn({ err: (e as Error).message }, 'could not store the peering state');
    }
  }

  /** Asks `peers` what this node missed and marks those extents stale; returns the record count. */
  private async gather(peers: number[]): Promise<number> {
    const epochs = new Map(this.opts.map.map().nodes.map((n) => [n.id, n.upEpoch ?? 1]));
    const found = await Promise.all(peers.map((p) => askMissed(this.queries, p)));
    let n = 0;
    found.forEach((list, i) => {
      if (list) this.askedAt.set(peers[i], epochs.get(peers[i]) ?? 1);
      for (const r of list ?? []) {
        const s = this.work.mark(r.volume, r.extent, 'resync', 0, []);
        s.reporters.set(peers[i], r.stamp);
        n++;
      }
    });
    return n;
  }

  private async askAgain(peers: number[]): Promise<void> {
    const n = await this.gather(peers);
    if (n) {
      this.opts.log.info({ peers, records: n }, 'peering: a returning peer still held records for this node; comparing those extents');
      void this.pull();
    }
  }

  private async peer(upEpoch: number): Promise<void> {
    const t0 = Date.now();
    const peers = this.opts.map.map().nodes.filter((n) => n.id !== this.opts.nodeId && n.up).map((n) => n.id);
    this.opts.log.info({ upEpoch, peers }, 'peering: asking every up node what this node missed');
    const n = await this.gather(peers);
    if (this.closed) return;
    if (this.self().upEpoch !== upEpoch) return; // marked down and up again meanwhile: peer again
    this.peeredAt = upEpoch;
    this.opts.log.info({ upEpoch }, 'peered');
    this.opts.log.info({ upEpoch, records: n, staleExtents: this.work.size, ms: Date.now() - t0 }, 'peering done');
    this.opts.onPeered?.(upEpoch, this.work.size);
    if (this.work.size) void this.pull();
  }

  /** Pulls every stale extent, PULL_CONCURRENCY at a time, retrying failures after PULL_RETRY_MS. */
  private async pull(): Promise<void> {
    if (this.pulling) return;
    this.pulling = true;
    try {
      const worker = async (_: unknown, i: number): Promise<void> => {
        while (!this.closed && this.work.size > 0) {
          if (i > 0 && this.throttle.foregroundActive) {
            // Hosts are busy: one pull at a time, at the foreground share of the rate.
            await sleep(100);
            continue;
          }
          const s = this.work.take(PULL_RETRY_MS);
          if (!s) {
            if (this.work.allInFlight) return; // the rest is being pulled by other workers
            await sleep(100);
            continue;
          }
          let failed = true;
          try {
            await this.pullOne(s);
            failed = false;
          } catch {
            // logged in pullOne; retried after PULL_RETRY_MS
          } finally {
            this.work.release(s, failed);
          }
        }
      };
      await Promise.all(Array.from({ length: PULL_CONCURRENCY }, worker));
    } finally {
      this.pulling = false;
    }
    if (this.closed) return;
    if (this.work.size > 0) {
      void this.pull();
      return;
    }
    await this.saveProgress(true);
    await this.persist();
    this.trimPass();
  }

  /** A copy of `extent` of `volume` on partition `leaf`, local or remote; remote reads pass the throttle. */
  private copyOf(leaf: number, volume: number, extent: number, extentPages: number, throttled = true): ExtentCopy {
    if (decodePartitionLeafId(leaf).host === this.opts.nodeId) return this.localCopy(leaf, extentKey(volume, extent), extentPages);
    const c = this.remoteCopy(leaf, volume, extent, extentPages);
    if (!throttled) return c;
    return {
      leaf,
      versions: () => c.versions(),
      read: async (first, n) => {
        await this.throttle.take(n * 4096);
        const b = await c.read(first, n);
        this.traffic.bytesIn += b.length;
        return b;
      },
      put: (entries) => c.put(entries),
    };
  }

  private async pullOne(s: StaleExtent): Promise<void> {
    const { pool, extentPages } = this.volumeInfo(s.volume);
    const view = this.clusterView();
    let members: number[];
    try {
      members = view.members(s.volume, s.extent, pool);
    } catch {
      members = [];
    }
    const mine = members.find((m) => view.nodeOf(m) === this.opts.nodeId);
    let pulled: number | null = null;
    if (mine !== undefined) {
      const placedUp = members.filter((m) => m !== mine && view.isUp(view.nodeOf(m)));
      const sources = [...placedUp, ...s.holders.filter((h) => h !== mine && !placedUp.includes(h) && view.isUp(view.nodeOf(h)))];
      if (sources.length === 0) throw new Error(`no up member to pull extent ${s.extent} of volume ${s.volume} from`);
      // Declustered: each extent reads from its own rotation of the current members.
      const rank = new Map(placedUp.map((m, i) => [m, (i + s.extent + this.opts.nodeId) % placedUp.length]));
      const prefer = (leaf: number): number => (leaf === mine ? -1 : rank.get(leaf) ?? placedUp.length);
      try {
        // One reporter's copy is enough: it applied every write this node missed (each was
        // acknowledged by every acting member, at least min_size of them). Without reporters
        // (full peering, backfill) every up member and holder must answer.
        const reporterLeaves = sources.filter((m) => s.reporters.has(view.nodeOf(m)));
        const tolerate = (failed: number[]): boolean => !failed.includes(mine) && reporterLeaves.some((m) => !failed.includes(m));
        const copies = [this.localCopy(mine, extentKey(s.volume, s.extent), extentPages), ...sources.map((m) => this.copyOf(m, s.volume, s.extent, extentPages))];
        const r = await reconcileExtent(copies, new Set([mine]), tolerate, prefer);
        pulled = r.pages * 4096;
        if (r.pages > 0 || s.reporters.size > 0) {
          this.recovered.extents++;
          this.recovered.pages += r.pages;
          this.opts.log.info({ volume: s.volume, extent: s.extent, kind: s.kind, partition: mine, pages: r.pages, from: sources }, 'recovery: extent pulled');
        }
      } catch (e) {
        this.opts.log.warn({ volume: s.volume, extent: s.extent, kind: s.kind, partition: mine, err: (e as Error).message }, 'recovery: pull failed; the extent stays stale and is retried');
        throw e;
      }
    }
    // Current now (or no longer placed here): tell the reporters, then serve reads again.
    await Promise.allSettled([...s.reporters].map(async ([node, stamp]) => {
      const c = await this.opts.peers.get(node);
      await c.request({ ...blank(Op.Resolved, this.opts.map.epoch()), partition: this.opts.nodeId, volume: s.volume, extent: s.extent, version: stamp });
    }));
    this.work.unmark(s, pulled);
  }

  /** Trims copies no longer placed here once every member has them (only while nothing is being pulled). */
  private trimPass(): void {
    if (this.closed || this.peering || this.work.size > 0 || this.placedFp !== this.fingerprint()) return;
    this.trimmer.start();
  }

  /** A copy of `key` in local partition `leaf`. */
  localCopy(leaf: number, key: number, extentPages: number): ExtentCopy {
    return localCopy(this.opts.storage, this.opts.nodeId, leaf, key, extentPages);
  }

  /** A copy of `extent` of `volume` on partition `leaf` of another node. */
  remoteCopy(leaf: number, volume: number, extent: number, extentPages: number): ExtentCopy {
    return remoteCopy(this.opts.peers, () => this.opts.map.epoch(), leaf, volume, extent, extentPages);
  }

  /** Read repair of a host read that failed its checksum (src/node/repair.ts). @throws `cause` when no member could help. */
  repairRead(a: Allocator, h: RequestHeader, cause: Error): Promise<Buffer> {
    return repairRead(this.repairs, a, h, cause);
  }

  /** Op.Reconcile: makes the members named by `h` (minus absent ones) agree; returns the pages copied. */
  reconcile(h: RequestHeader): Promise<number> {
    return reconcileMembers(this.repairs, h);
  }

  /** Extents this node holds stale (not served until pulled). */
  staleCount(): number {
    return this.work.size;
  }

  /** This node's report for GET /v1/recovery. */
  report(): NodeRecoveryReport {
    return {
      node: this.opts.nodeId,
      epoch: this.opts.map.epoch(),
      held: heldList(this.opts.storage),
      missed: this.opts.missed.all(),
      stale: this.work.pairs(),
      // Also while a placement change is not sorted out yet: until fullPeer has marked the
      // extents newly placed here stale, nothing else in the report shows that data will move.
      peering: this.peering || this.placedFp !== this.fingerprint(),
      recovered: { ...this.recovered },
      progress: this.progress.snapshot(),
      traffic: { ...this.traffic },
      rateLimit: this.throttle.bytesPerSec,
    };
  }

  /** Stops background work (peering, pulls, trims) and stores the work list once more. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    await this.saving;
    await this.saveProgress(true);
  }
}
