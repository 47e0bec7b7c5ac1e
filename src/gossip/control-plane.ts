/**
 * A peer's control plane: its libp2p peer, its map keeper, and the three topics — maps
 * (accepted through the keeper, which verifies epoch, checksum and signature before
 * gossipsub forwards anything), digests (a peer that sees a newer epoch than its own asks a
 * neighbour for that map over the map-fetch protocol) and heartbeats (storage nodes publish
 * theirs; nodes keep the latest of each). Every storage node and every initiator runs one.
 */
import { EventEmitter } from 'node:events';
import { MapKeeper, parsePublicKey, initialMap, type SignedMap, type KeeperLog } from '../clustermap/index.ts';
import { membershipOf, type ClusterConfig } from '../config/index.ts';
import { GossipPeer, type PeerLog } from './peer.ts';
import { clusterSwarmKey } from './psk.ts';
import { mapFetchProtocol, topics } from './topics.ts';
import {
  DigestSchema, FetchRequestSchema, HeartbeatSchema, decodeMessage, encodeMessage, type Heartbeat, type PartitionStat, type VolumeStat,
} from './messages.ts';

/** Milliseconds a node never heard from since this peer started has before this peer reports it silent. */
export const SUSPECT_GRACE_MS = 15000;

/** The log calls a control plane makes (a pino logger fits). */
export type ControlLog = KeeperLog & PeerLog;

/** What kind of peer this is. */
export type ControlRole =
  | { kind: 'node'; nodeId: number; stats: () => PartitionStat[]; volumes?: () => VolumeStat[] }
  | { kind: 'initiator' };

/** Options of ControlPlane.start. */
export interface ControlPlaneOptions {
  config: ClusterConfig;
  role: ControlRole;
  /** Gossip listen address and port (0: any free port). */
  host: string;
  port: number;
  log: ControlLog;
  /** File keeping the latest accepted map (optional). */
  persistPath?: string;
  /** Subscribe to the map and digest topics (default true; false = learn maps only on demand). */
  followMaps?: boolean;
  /** Seed connections to keep (default: every storage node for nodes, 3 for initiators). */
  seedTarget?: number;
}

/** The latest heartbeat of a node and when we got it (local ms). */
export interface HeartbeatRecord {
  hb: Heartbeat;
  receivedAt: number;
}

/**
 * A running control plane. Events: 'map' (SignedMap) on each accepted epoch, 'heartbeat'
 * (Heartbeat) on each heartbeat received (nodes only).
 */
export class ControlPlane extends EventEmitter {
  readonly keeper: MapKeeper;
  /** Latest heartbeat per storage node (nodes only). */
  readonly heartbeats = new Map<number, HeartbeatRecord>();
  private peer!: GossipPeer;
  private hbTimer: NodeJS.Timeout | null = null;
  private fetching: Promise<boolean> | null = null;
  private stopped = false;
  private readonly t: ReturnType<typeof topics>;
  private readonly protocol: string;
  private readonly startedAt = Date.now();

  private constructor(private readonly opts: ControlPlaneOptions) {
    super();
    const c = opts.config;
    if (!c.authority) throw new Error('cluster.json has no map authority (open it with LocalCluster or upgradeConfig first)');
    this.keeper = new MapKeeper({ clusterId: c.clusterId, authorityKey: parsePublicKey(c.authority.publicKey), initial: initialMap(c), log: opts.log, persistPath: opts.persistPath });
    this.keeper.on('map', (s: SignedMap) => this.emit('map', s));
    this.t = topics(c.clusterId);
    this.protocol = mapFetchProtocol(c.clusterId);
  }

  /**
   * Loads the persisted map, starts the libp2p peer, subscribes, serves map-fetch and (for
   * storage nodes) starts heartbeats.
   * @throws Error when the peer cannot listen.
   */
  static async start(opts: ControlPlaneOptions): Promise<ControlPlane> {
    const cp = new ControlPlane(opts);
    await cp.keeper.loadPersisted();
    const c = opts.config;
    const isNode = opts.role.kind === 'node';
    cp.peer = await GossipPeer.start({
      host: opts.host,
      port: opts.port,
      swarmKey: clusterSwarmKey(c.token, c.clusterId),
      seeds: cp.keeper.map.nodes.map((n) => ({ host: n.host, port: n.gossipPort })),
      seedTarget: opts.seedTarget ?? (isNode ? undefined : 3),
      // Storage nodes are the relays: initiators dial a few of them and graft onto their
      // mesh; a wide Dhi keeps every such initiator in the mesh (a map reaches it in two
      // hops: authority -> node -> initiator) instead of pruning it down to lazy gossip,
      // which costs heartbeat rounds. Map traffic is rare and small, so the fan-out is cheap.
      mesh: isNode ? { D: 8, Dlo: 6, Dhi: 256 } : undefined,
      log: opts.log,
    });
    await cp.peer.handle(cp.protocol, async (req) => cp.serveFetch(req));
    if (opts.followMaps !== false) {
      cp.peer.subscribe(cp.t.map, (data, from) => {
        const r = cp.keeper.offer(data, from);
        if (r.accepted) return 'accept';
        return r.reason === 'duplicate' || r.reason === 'stale' ? 'ignore' : 'reject';
      });
      cp.peer.subscribe(cp.t.digest, (data, from) => {
        const d = decodeMessage(DigestSchema, data);
        if (!d) return 'reject';
        if (d.epoch > cp.keeper.epoch) void cp.fetchMap(d.epoch, 3000, from);
        return 'accept';
      });
    }
    if (isNode) {
      cp.peer.subscribe(cp.t.heartbeat, (data, from) => {
        const hb = decodeMessage(HeartbeatSchema, data);
        if (!hb) return 'reject';
        cp.heartbeats.set(hb.node, { hb, receivedAt: Date.now() });
        cp.emit('heartbeat', hb);
        if (hb.epoch > cp.keeper.epoch) void cp.fetchMap(hb.epoch, 3000, from);
        return 'accept';
      });
      const every = membershipOf(c).heartbeatMs;
      cp.hbTimer = setInterval(() => void cp.sendHeartbeat(), every);
      void cp.sendHeartbeat();
    }
    return cp;
  }

  /** Our libp2p peer id. */
  get peerId(): string {
    return this.peer.id;
  }

  /** The gossip TCP port we listen on. */
  get gossipPort(): number {
    return this.peer.port;
  }

  /** Dials the seeds we are not connected to now, without waiting for the next round. */
  redial(): void {
    this.peer.redial();
  }

  /** Peer ids we are connected to. */
  connectedPeers(): string[] {
    return this.peer.connectedPeers();
  }

  /** Peers subscribed to the map topic, as far as we know. */
  mapTopicPeers(): string[] {
    return this.peer.topicPeers(this.t.map);
  }

  /**
   * A graceful stop's first step (Ceph's OSDs do the same on shutdown): stops the periodic
   * heartbeat and announces, every 250 ms, a heartbeat flagged `leaving`, until this peer's
   * map marks this node down or `timeoutMs` passes.
   * @returns true once the map marks this node down, false on timeout (the leader then
   *          marks it down after downAfterMs of silence, as after a crash).
   */
  async leave(timeoutMs: number): Promise<boolean> {
    if (this.opts.role.kind !== 'node') return false;
    const self = this.opts.role.nodeId;
    if (this.hbTimer) clearInterval(this.hbTimer);
    this.hbTimer = null;
    const isDown = (): boolean => this.keeper.map.nodes.some((n) => n.id === self && !n.up);
    const end = Date.now() + timeoutMs;
    while (!isDown() && !this.stopped && Date.now() < end) {
      await this.sendHeartbeat(true).catch(() => undefined);
      await this.keeper.waitFor(this.keeper.epoch + 1, Math.min(250, Math.max(0, end - Date.now())));
    }
    return isDown();
  }

  private async sendHeartbeat(leaving = false): Promise<void> {
    if (this.stopped || this.opts.role.kind !== 'node') return;
    const hb: Heartbeat = {
      node: this.opts.role.nodeId,
      epoch: this.keeper.epoch,
      checksum: this.keeper.signed?.checksum ?? 0,
      sentAt: Date.now(),
      partitions: this.opts.role.stats(),
      ...(this.opts.role.volumes ? { volumes: this.opts.role.volumes() } : {}),
      suspects: this.suspects(),
      ...(leaving ? { leaving: true as const } : {}),
    };
    this.heartbeats.set(hb.node, { hb, receivedAt: Date.now() });
    this.emit('heartbeat', hb);
    await this.peer.publish(this.t.heartbeat, encodeMessage(hb));
  }

  /**
   * Up nodes of the current map (not this one) whose heartbeats this peer has not received
   * for downAfterMs — or, never heard since this peer started, for the start-up grace
   * (SUSPECT_GRACE_MS). Sent in each heartbeat as this peer's report.
   */
  suspects(now = Date.now()): number[] {
    const self = this.opts.role.kind === 'node' ? this.opts.role.nodeId : -1;
    const { downAfterMs } = membershipOf(this.opts.config);
    const out: number[] = [];
    for (const n of this.keeper.map.nodes) {
      if (n.id === self || !n.up) continue;
      const r = this.heartbeats.get(n.id);
      if (r ? now - r.receivedAt > downAfterMs : now - this.startedAt > Math.max(downAfterMs, SUSPECT_GRACE_MS)) out.push(n.id);
    }
    return out;
  }

  private serveFetch(req: Uint8Array): Uint8Array {
    const r = decodeMessage(FetchRequestSchema, req);
    const s = this.keeper.signed;
    if (!r || !s || s.epoch < r.minEpoch) return Uint8Array.of(1);
    return Buffer.concat([Uint8Array.of(0), s.wire]);
  }

  /**
   * Makes sure we hold a map of epoch >= `minEpoch`: asks `prefer` first, then the other
   * connected peers, over the map-fetch protocol. Concurrent calls share one round.
   * @returns true when we hold such a map afterwards, false after `timeoutMs`.
   */
  async fetchMap(minEpoch: number, timeoutMs = 3000, prefer?: string): Promise<boolean> {
    if (this.keeper.epoch >= minEpoch) return true;
    if (this.stopped) return false;
    while (this.fetching) {
      await this.fetching;
      if (this.keeper.epoch >= minEpoch) return true;
    }
    this.fetching = this.fetchRound(minEpoch, timeoutMs, prefer).finally(() => (this.fetching = null));
    return this.fetching;
  }

  private async fetchRound(minEpoch: number, timeoutMs: number, prefer?: string): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    const req = encodeMessage({ minEpoch });
    while (!this.stopped && Date.now() < deadline) {
      const peers = this.peer.connectedPeers().sort(() => Math.random() - 0.5);
      if (prefer && peers.includes(prefer)) peers.unshift(...peers.splice(peers.indexOf(prefer), 1));
      for (const p of peers) {
        if (this.stopped || Date.now() >= deadline) break;
        try {
          const resp = await this.peer.request(p, this.protocol, req, Math.min(2000, Math.max(100, deadline - Date.now())));
          if (resp[0] === 0) this.keeper.offer(resp.subarray(1), p);
        } catch (e) {
          this.opts.log.debug({ peer: p, err: (e as Error).message }, 'map fetch failed');
        }
        if (this.keeper.epoch >= minEpoch) return true;
      }
      // Nobody had it yet (it may still be on its way): wait for gossip a moment, then ask again.
      if (await this.keeper.waitFor(minEpoch, Math.min(200, Math.max(0, deadline - Date.now())))) return true;
    }
    return this.keeper.epoch >= minEpoch;
  }

  /** Publishes a signed map on the map topic (the authority's job). */
  async publishMap(s: SignedMap): Promise<number> {
    return this.peer.publish(this.t.map, s.wire);
  }

  /** Publishes a digest of `s` (the authority's job). */
  async publishDigest(s: SignedMap): Promise<number> {
    return this.peer.publish(this.t.digest, encodeMessage({ epoch: s.epoch, checksum: s.checksum, sentAt: Date.now() }));
  }

  /** Stops heartbeats and the peer; waits for the last map save. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.hbTimer) clearInterval(this.hbTimer);
    await this.fetching?.catch(() => undefined);
    await this.peer.stop();
    await this.keeper.close();
  }
}
