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
 * - Unsettled extents for writer changes (Op.Suspects) and extent reconcile on request.
 */
import type { Logger } from 'pino';
import { crc32c } from '@node-rs/crc32';
import type { Allocator } from '../../allocator/index.ts';
import { decodePartitionLeafId } from '../../placement/index.ts';
import { placementTopology, type ClusterMap } from '../clustermap/index.ts';
import type { ClusterConfig } from '../config/index.ts';
import { ClusterView } from '../initiator/index.ts';
import {
  type MissedRecord, MissedLog, UnsettledExtents, decodeMissed, reconcileExtent, repairRange, type ExtentCopy, type NodeRecoveryReport,
} from '../recovery/index.ts';
import { ConnectionPool, Op, Status, extentKey, extentOfKey, statusName, versionGeneration, volumeOfKey, type RequestHeader } from '../wire/index.ts';
import type { NodeStorage } from './storage.ts';
import { blank, localCopy, remoteCopy } from './extent-copies.ts';

/** Most pages an extent has (1 MiB extents of 4 KiB pages). */
export const EXTENT_PAGES_MAX = 256;

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
}

/**
 * What a node has caught up with: the inEpoch of its last full peering (0 forces one, e.g.
 * after a crash) and the placement (fingerprint of the map's placement topology) whose
 * extents it has pulled.
 */
export interface PeeringState {
  fullPeeredAt: number;
  placement: number;
}

/** A stale extent: which reporters recorded it (with stamps) and which partitions hold copies. */
interface StaleExtent {
  volume: number;
  extent: number;
  reporters: Map<number, number>;
  /** Partitions of other nodes that held the extent when it was found (backfill sources). */
  holders: number[];
}

/**
 * Fingerprint of what placement computes from `map`: crc32c of its placement topology
 * (weights, in/out, tree) without the epoch. Equal fingerprints place every extent alike.
 */
export function placementFingerprint(map: ClusterMap): number {
  return crc32c(Buffer.from(JSON.stringify({ ...placementTopology(map), epoch: 0 })));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

/** One node's resync, peering, repair and reconcile state. */
export class NodeRecovery {
  private readonly stamps = new Map<string, number>();
  private stampCounter = 0;
  /** Writes the writer has not settled, per volume (Op.Suspects). */
  readonly unsettled = new UnsettledExtents();
  private readonly stale = new Map<number, StaleExtent>();
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
  /** Counters since start. */
  readonly recovered = { extents: 0, pages: 0, repairs: 0 };

  constructor(private readonly opts: NodeRecoveryOptions) {
    this.poolOf = new Map((opts.config.volumes ?? []).map((v) => [v.id, { pool: v.pool, extentPages: v.extentBytes / 4096 }]));
    this.fullAt = opts.state?.fullPeeredAt ?? null;
    this.placedFp = opts.state?.placement ?? null;
    this.durable = opts.state;
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

  private key(node: number, volume: number, extent: number): string {
    return `${node}/${volume}/${extent}`;
  }

  /**
   * Records that every absent member of a write (h.absent over h.members) missed this
   * extent. Returns a promise when a record had to be made durable first (the write must
   * not be acknowledged before), else undefined.
   */
  noteAbsent(h: RequestHeader): Promise<void> | undefined {
    const absent = h.absent ?? 0;
    if (absent === 0) return undefined;
    let wait: Promise<void> | undefined;
    for (let i = 0; i < h.members.length; i++) {
      if (!(absent & (1 << i))) continue;
      const node = decodePartitionLeafId(h.members[i]).host;
      if (node === this.opts.nodeId) continue;
      this.stamps.set(this.key(node, h.volume, h.extent), ++this.stampCounter);
      const p = this.opts.missed.add(node, h.volume, h.extent);
      if (p) wait = wait ? Promise.all([wait, p]).then(() => undefined) : p;
    }
    return wait;
  }

  /** Op.Missed: the records for node `node`, with stamps. */
  missedFor(node: number): MissedRecord[] {
    return this.opts.missed.forNode(node).map(([volume, extent]) => ({ volume, extent, stamp: this.stamps.get(this.key(node, volume, extent)) ?? 0 }));
  }

  /** Op.Resolved: drops the record unless its stamp changed since `stamp` was reported. */
  resolved(node: number, volume: number, extent: number, stamp: number): void {
    const k = this.key(node, volume, extent);
    if ((this.stamps.get(k) ?? 0) !== stamp) return;
    this.stamps.delete(k);
    this.opts.missed.remove(node, volume, extent);
  }

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
   * Whether a host read of `extent` of `volume` may be served here. While a new placement
   * has not been sorted out yet, only extents this node was already a member of qualify.
   */
  current(volume: number, extent: number): boolean {
    if (this.peering) return false;
    if (this.stale.size > 0 && this.stale.has(extentKey(volume, extent))) return false;
    if (this.placedFp === null || this.placedFp === this.fingerprint()) return true;
    if (!this.placedMap) return false;
    if (!this.prevView || this.prevView.epoch !== this.placedMap.epoch) this.prevView = new ClusterView(this.placedMap, this.opts.config.pools);
    return this.placedHere(this.prevView, volume, extent);
  }

  private placedHere(view: ClusterView, volume: number, extent: number): boolean {
    try {
      return view.members(volume, extent, this.volumeInfo(volume).pool).some((m) => view.nodeOf(m) === this.opts.nodeId);
    } catch {
      return false;
    }
  }

  private clusterView(): ClusterView {
    const m = this.opts.map.map();
    if (!this.view || this.view.epoch !== m.epoch) this.view = new ClusterView(m, this.opts.config.pools);
    return this.view;
  }

  /** Pool and page count of a volume's extents (pool 0, 256 pages when unknown). */
  volumeInfo(volume: number): { pool: number; extentPages: number } {
    return this.poolOf.get(volume) ?? { pool: 0, extentPages: EXTENT_PAGES_MAX };
  }

  /**
   * Called whenever the node's map changes (and once at start): starts a peering round
   * when this node is up at an upEpoch it has not peered at.
   */
  onMap(): void {
    if (this.closed || this.peeringRound) return;
    const s = this.self();
    const map = this.opts.map.map();
    const fp = this.fingerprint();
    if (this.fullAt === null) {
      // First start of this node: nothing was placed here before, nothing to compare.
      this.fullAt = s.inEpoch;
      this.placedFp = fp;
      this.placedMap = map;
      void this.persist();
    }
    if (this.placedFp === fp && !this.placedMap) this.placedMap = map;
    if (!s.up) return;
    let round: Promise<void> | null = null;
    if (this.fullAt !== s.inEpoch) round = this.fullPeer(s.inEpoch, null).then(() => this.peer(s.upEpoch));
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
   * Full peering — this node came back in from out (`inEpoch`) or restarted after a crash
   * (nobody recorded what it missed or lost meanwhile): every extent that any up node holds
   * and that is placed here becomes stale until a reconcile with its members and holders
   * made it current. Placement round (`inEpoch` null) — the map's placement changed (out,
   * in, reweight, a new node): the extents newly placed here (all placed here when `prev`,
   * the map caught up with, is unknown) are backfilled the same way.
   */
  private async fullPeer(inEpoch: number | null, prev: ClusterMap | null): Promise<void> {
    const t0 = Date.now();
    const map = this.opts.map.map();
    const fp = this.fingerprint();
    const peers = map.nodes.filter((n) => n.id !== this.opts.nodeId && n.up).map((n) => n.id);
    const why = inEpoch !== null ? 'back in or restarted after a crash' : prev ? 'placement changed' : 'placement changed while this node was away';
    this.opts.log.info({ epoch: map.epoch, peers, why }, 'full peering: comparing the extents placed here with their members and holders');
    const lists = await Promise.all(peers.map((p) => this.askHeld(p)));
    const keys = new Map<number, { volume: number; extent: number; holders: number[] }>();
    const add = (volume: number, extent: number, leaf: number | null): void => {
      const k = extentKey(volume, extent);
      let e = keys.get(k);
      if (!e) keys.set(k, (e = { volume, extent, holders: [] }));
      if (leaf !== null) e.holders.push(leaf);
    };
    for (const a of this.opts.storage.partitions.values()) for (const k of a.keys()) add(volumeOfKey(k), extentOfKey(k), null);
    for (const l of lists) for (const [v, e, leaf] of l ?? []) add(v, e, leaf);
    const view = this.clusterView();
    const before = prev && inEpoch === null ? new ClusterView(prev, this.opts.config.pools) : null;
    let marked = 0;
    for (const [k, e] of keys) {
      if (!this.placedHere(view, e.volume, e.extent)) continue;
      if (before && this.placedHere(before, e.volume, e.extent)) continue;
      marked++;
      const s = this.stale.get(k);
      if (s) s.holders = e.holders;
      else this.stale.set(k, { volume: e.volume, extent: e.extent, reporters: new Map(), holders: e.holders });
    }
    if (this.closed || this.opts.map.map().epoch !== map.epoch) return; // the map moved on: the next round redoes it
    if (inEpoch !== null) this.fullAt = inEpoch;
    this.placedFp = fp;
    this.placedMap = map;
    this.opts.log.info({ epoch: map.epoch, extents: keys.size, marked, ms: Date.now() - t0 }, 'full peering: extents to compare marked stale');
    if (this.stale.size) void this.pull();
    else await this.persist();
  }

  /** Stores the peering state once nothing is stale (a restart then needs no full round). */
  private async persist(): Promise<void> {
    if (this.stale.size > 0 || this.fullAt === null || this.placedFp === null || this.fullAt === 0) return;
    const st = { fullPeeredAt: this.fullAt, placement: this.placedFp };
    if (this.durable && this.durable.fullPeeredAt === st.fullPeeredAt && this.durable.placement === st.placement) return;
    try {
      await this.opts.saveState?.(st);
      this.durable = st;
    } catch (e) {
      this.opts.log.warn({ err: (e as Error).message }, 'could not store the peering state');
    }
  }

  /** Asks node `peer` which extents it holds ([volume, extent, partition]); null when it went down. */
  private async askHeld(peer: number): Promise<Array<[number, number, number]> | null> {
    for (let attempt = 0; !this.closed; attempt++) {
      const n = this.opts.map.map().nodes.find((x) => x.id === peer);
      if (!n || !n.up) return null;
      try {
        const c = await this.opts.peers.get(peer);
        const r = await c.request(blank(Op.Held, this.opts.map.epoch()));
        if (r.h.status === Status.Ok) {
          const out: Array<[number, number, number]> = [];
          for (let o = 0; o + 12 <= r.payload.length; o += 12) out.push([r.payload.readUInt32LE(o), r.payload.readUInt32LE(o + 4), r.payload.readUInt32LE(o + 8)]);
          return out;
        }
      } catch {
        this.opts.peers.forgive(peer);
      }
      await sleep(100);
    }
    return null;
  }

  /** Asks `peers` what this node missed and marks those extents stale; returns the record count. */
  private async gather(peers: number[]): Promise<number> {
    const epochs = new Map(this.opts.map.map().nodes.map((n) => [n.id, n.upEpoch ?? 1]));
    const found = await Promise.all(peers.map((p) => this.askMissed(p)));
    let n = 0;
    found.forEach((list, i) => {
      if (list) this.askedAt.set(peers[i], epochs.get(peers[i]) ?? 1);
      for (const r of list ?? []) {
        const k = extentKey(r.volume, r.extent);
        let s = this.stale.get(k);
        if (!s) this.stale.set(k, (s = { volume: r.volume, extent: r.extent, reporters: new Map(), holders: [] }));
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
    this.opts.log.info({ upEpoch, records: n, staleExtents: this.stale.size, ms: Date.now() - t0 }, 'peering done');
    this.opts.onPeered?.(upEpoch, this.stale.size);
    if (this.stale.size) void this.pull();
  }

  /** Asks node `peer` for the records of what this node missed; null when it went down. */
  private async askMissed(peer: number): Promise<MissedRecord[] | null> {
    for (let attempt = 0; !this.closed; attempt++) {
      const n = this.opts.map.map().nodes.find((x) => x.id === peer);
      if (!n || !n.up) return null;
      try {
        const c = await this.opts.peers.get(peer);
        const r = await c.request({ ...blank(Op.Missed, this.opts.map.epoch()), partition: this.opts.nodeId });
        if (r.h.status === Status.Ok) return decodeMissed(r.payload);
        if (attempt % 20 === 0) this.opts.log.warn({ peer, status: statusName(r.h.status) }, 'peering: peer refused Missed; retrying');
      } catch (e) {
        if (attempt % 20 === 0) this.opts.log.warn({ peer, err: (e as Error).message }, 'peering: peer unreachable; retrying until it answers or is marked down');
        this.opts.peers.forgive(peer); // retry on our own schedule, not the pool's back-off
      }
      await sleep(100);
    }
    return null;
  }

  /** Pulls every stale extent (four at a time), retrying failures every second. */
  private async pull(): Promise<void> {
    if (this.pulling) return;
    this.pulling = true;
    try {
      while (!this.closed && this.stale.size > 0) {
        const batch = [...this.stale.values()];
        let failed = 0;
        for (let i = 0; i < batch.length && !this.closed; i += 4) {
          const res = await Promise.allSettled(batch.slice(i, i + 4).map((s) => this.pullOne(s)));
          failed += res.filter((r) => r.status === 'rejected').length;
        }
        if (failed) await sleep(1000);
      }
    } finally {
      this.pulling = false;
    }
    await this.persist();
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
    const k = extentKey(s.volume, s.extent);
    if (mine !== undefined) {
      const placedUp = members.filter((m) => m !== mine && view.isUp(view.nodeOf(m)));
      const sources = [...placedUp, ...s.holders.filter((h) => h !== mine && !placedUp.includes(h) && view.isUp(view.nodeOf(h)))];
      if (sources.length === 0) throw new Error(`no up member to pull extent ${s.extent} of volume ${s.volume} from`);
      try {
        // One reporter's copy is enough: it applied every write this node missed (each was
        // acknowledged by every acting member, at least min_size of them). Without reporters
        // (full peering) every up member must answer.
        const reporterLeaves = sources.filter((m) => s.reporters.has(view.nodeOf(m)));
        const tolerate = (failed: number[]): boolean => !failed.includes(mine) && reporterLeaves.some((m) => !failed.includes(m));
        const r = await reconcileExtent([this.localCopy(mine, k, extentPages), ...sources.map((m) => this.remoteCopy(m, s.volume, s.extent, extentPages))], new Set([mine]), tolerate);
        if (r.pages > 0 || s.reporters.size > 0) {
          this.recovered.extents++;
          this.recovered.pages += r.pages;
          this.opts.log.info({ volume: s.volume, extent: s.extent, partition: mine, pages: r.pages, from: sources }, 'resync: extent pulled');
        }
      } catch (e) {
        this.opts.log.warn({ volume: s.volume, extent: s.extent, partition: mine, err: (e as Error).message }, 'resync: pull failed; the extent stays stale and is retried');
        throw e;
      }
    }
    // Current now (or no longer placed here): tell the reporters, then serve reads again.
    await Promise.allSettled([...s.reporters].map(async ([node, stamp]) => {
      const c = await this.opts.peers.get(node);
      await c.request({ ...blank(Op.Resolved, this.opts.map.epoch()), partition: this.opts.nodeId, volume: s.volume, extent: s.extent, version: stamp });
    }));
    if (this.stale.get(k) === s) this.stale.delete(k);
  }

  /** A copy of `key` in local partition `leaf`. */
  localCopy(leaf: number, key: number, extentPages: number): ExtentCopy {
    return localCopy(this.opts.storage, this.opts.nodeId, leaf, key, extentPages);
  }

  /** A copy of `extent` of `volume` on partition `leaf` of another node. */
  remoteCopy(leaf: number, volume: number, extent: number, extentPages: number): ExtentCopy {
    return remoteCopy(this.opts.peers, () => this.opts.map.epoch(), leaf, volume, extent, extentPages);
  }

  /**
   * Read repair of a host read that failed its checksum on local partition `h.partition`:
   * rewrites the range from another up member of the request and returns the local copy
   * read again.
   * @throws the ChecksumError / member error when no member could supply good data.
   */
  async repairRead(a: Allocator, h: RequestHeader, cause: Error): Promise<Buffer> {
    const key = extentKey(h.volume, h.extent);
    const { extentPages } = this.volumeInfo(h.volume);
    const view = this.clusterView();
    const sources = h.members.filter((m, i) => m !== h.partition && !((h.absent ?? 0) & (1 << i)) && view.isUp(view.nodeOf(m)))
      .map((m) => this.remoteCopy(m, h.volume, h.extent, extentPages));
    const base = { volume: h.volume, extent: h.extent, partition: h.partition, firstPage: h.firstPage, pages: h.pages, cause: cause.message };
    try {
      const r = await repairRange(this.localCopy(h.partition, key, extentPages), sources, h.firstPage, h.pages);
      const data = await a.read(key, h.firstPage, h.pages);
      this.recovered.repairs++;
      this.opts.log.warn({ ...base, source: r.source, pagesRewritten: r.pages }, 'read repair: bad copy served from another member and rewritten');
      return data;
    } catch (e) {
      this.opts.log.error({ ...base, err: (e as Error).message }, 'read repair failed: no member could supply a good copy');
      throw cause;
    }
  }

  /** Op.Reconcile: makes the members named by `h` (minus absent ones) agree. */
  async reconcile(h: RequestHeader): Promise<number> {
    const mine = h.partition;
    const key = extentKey(h.volume, h.extent);
    const copies = h.members.filter((m, i) => !((h.absent ?? 0) & (1 << i)))
      .map((m) => (m === mine ? this.localCopy(m, key, h.pages) : this.remoteCopy(m, h.volume, h.extent, h.pages)));
    const r = await reconcileExtent(copies);
    if (r.pages) this.opts.log.info({ volume: h.volume, extent: h.extent, pages: r.pages, updated: r.updated }, 'reconcile: copies made identical');
    return r.pages;
  }

  /**
   * After a restart the unsettled list is gone: rebuilds it as every extent whose newest
   * page was written by a generation at or above the volume's fence (`fence(volume)`), so a
   * new writer still reconciles what a crashed one may have left on some members only.
   */
  rebuildUnsettled(fence: (volume: number) => number): number {
    let n = 0;
    for (const a of this.opts.storage.partitions.values()) {
      for (const k of a.keys()) {
        const volume = volumeOfKey(k);
        let newest = 0;
        for (const p of a.pages(k)) if (p.version > newest) newest = p.version;
        if (versionGeneration(newest) >= fence(volume)) {
          this.unsettled.note(volume, extentOfKey(k), newest);
          n++;
        }
      }
    }
    return n;
  }

  /** Op.Held: every extent this node holds pages of, as 12-byte (volume, extent, partition) entries. */
  held(): Buffer {
    const keys: Array<[number, number]> = [];
    for (const [leaf, a] of this.opts.storage.partitions) for (const k of a.keys()) keys.push([k, leaf]);
    const b = Buffer.allocUnsafe(keys.length * 12);
    keys.forEach(([k, leaf], i) => {
      b.writeUInt32LE(volumeOfKey(k), i * 12);
      b.writeUInt32LE(extentOfKey(k), i * 12 + 4);
      b.writeUInt32LE(leaf, i * 12 + 8);
    });
    return b;
  }

  /** This node's report for GET /v1/recovery. */
  report(): NodeRecoveryReport {
    const held: Array<[number, number, number]> = [];
    for (const a of this.opts.storage.partitions.values()) {
      for (const k of a.keys()) held.push([volumeOfKey(k), extentOfKey(k), a.mappedPages(k) * 4096]);
    }
    return {
      node: this.opts.nodeId,
      epoch: this.opts.map.epoch(),
      held,
      missed: this.opts.missed.all(),
      stale: [...this.stale.values()].map((s) => [s.volume, s.extent]),
      peering: this.peering,
      recovered: { ...this.recovered },
    };
  }

  /** Stops background work (peering, pulls). */
  close(): void {
    this.closed = true;
  }
}
