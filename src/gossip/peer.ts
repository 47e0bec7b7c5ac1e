/**
 * One libp2p peer of the cluster: TCP + Noise + yamux, a pre-shared-key private network
 * (peers without the cluster key cannot complete a connection, so cannot publish either),
 * gossipsub (v1.1) for the control topics, identify, and our own request/response protocols.
 * Bootstraps from seed addresses and keeps re-dialling them while it has too few.
 * Carries control traffic only; block data never travels here.
 */
import './polyfill.ts';
import type { Libp2p } from 'libp2p';
import type { GossipSub } from '@chainsafe/libp2p-gossipsub';
import type { PeerId, Connection } from '@libp2p/interface';
import { loadLibp2pStack, type Libp2pStack } from './libp2p-stack.ts';

/** Verdict of a topic validator: deliver and forward, drop quietly, or drop and penalise the sender. */
export type Verdict = 'accept' | 'ignore' | 'reject';

/** The log calls a peer makes. */
export interface PeerLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

/** Options of GossipPeer.start. */
export interface GossipPeerOptions {
  /** Address to listen on (e.g. 127.0.0.1) and port (0: any free one). */
  host: string;
  port: number;
  /** The private network's key (clusterSwarmKey). */
  swarmKey: Uint8Array;
  /** Seed addresses to dial, as `host:port` pairs (our own address is skipped). */
  seeds: Array<{ host: string; port: number }>;
  /** How many seeds to stay connected to (default: all). */
  seedTarget?: number;
  /** Milliseconds between seed re-dial rounds (default 1000). */
  redialMs?: number;
  /** gossipsub heartbeat interval in ms (default 700). */
  gossipHeartbeatMs?: number;
  /**
   * gossipsub mesh degree: target D, and the bounds Dlo..Dhi it keeps the mesh within
   * (default gossipsub's 6, 4..12). Storage nodes use a wide upper bound so every initiator
   * that grafts onto them stays in their mesh (see ControlPlane).
   */
  mesh?: { D: number; Dlo: number; Dhi: number };
  /** Largest request/response message in bytes (default 8 MiB). */
  maxMessageBytes?: number;
  log: PeerLog;
}

/** A started libp2p peer. */
export class GossipPeer {
  private readonly seedConns = new Map<string, Connection>();
  private redialTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly dialing = new Set<string>();

  private constructor(private readonly lib: Libp2pStack, private readonly node: Libp2p<{ pubsub: GossipSub }>, private readonly opts: GossipPeerOptions) {}

  /**
   * Starts a peer: listens, subscribes nothing yet, dials its seeds in the background.
   * @throws Error when it cannot listen.
   */
  static async start(opts: GossipPeerOptions): Promise<GossipPeer> {
    const lib = await loadLibp2pStack();
    const { createLibp2p, tcp, noise, yamux, preSharedKey, identify, gossipsub } = lib;
    const node = await createLibp2p({
      addresses: { listen: [`/ip4/${opts.host}/tcp/${opts.port}`] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      // pnet's nonce exchange must finish in 1 s by default; a loaded machine can miss that.
      connectionProtector: preSharedKey({ psk: opts.swarmKey, timeout: 5000 }),
      connectionManager: { maxConnections: 400 },
      services: {
        identify: identify(),
        pubsub: gossipsub({
          allowPublishToZeroTopicPeers: true,
          emitSelf: false,
          floodPublish: true,
          heartbeatInterval: opts.gossipHeartbeatMs ?? 700,
          ...(opts.mesh ?? {}),
          ignoreDuplicatePublishError: true,
          // Gossipsub's IP-colocation penalty is a Sybil defence for open networks. Ours is
          // private (only holders of the cluster key connect), and many peers legitimately
          // share one address (initiators on one host, a whole test cluster on 127.0.0.1):
          // with the default, more than 10 peers per IP are graylisted and gossip stops.
          scoreParams: { IPColocationFactorWeight: 0 },
        }),
      },
    });
    const peer = new GossipPeer(lib, node as unknown as Libp2p<{ pubsub: GossipSub }>, opts);
    peer.dialSeeds();
    peer.redialTimer = setInterval(() => peer.dialSeeds(), opts.redialMs ?? 1000);
    return peer;
  }

  /** Our libp2p peer id (base58). */
  get id(): string {
    return this.node.peerId.toString();
  }

  /** The TCP port we listen on. */
  get port(): number {
    const a = this.node.getMultiaddrs()[0];
    return Number(a.toString().split('/')[4]);
  }

  /** Peer ids we have an open connection to. */
  connectedPeers(): string[] {
    return [...new Set(this.node.getConnections().map((c) => c.remotePeer.toString()))];
  }

  /** Peer ids subscribed to `topic`, as far as we know. */
  topicPeers(topic: string): string[] {
    return this.node.services.pubsub.getSubscribers(topic).map((p) => p.toString());
  }

  /** Dials the seeds we are not connected to now, without waiting for the next round. */
  redial(): void {
    this.dialSeeds();
  }

  private seedKey(s: { host: string; port: number }): string {
    return `${s.host}:${s.port}`;
  }

  private dialSeeds(): void {
    if (this.stopped) return;
    const own = this.node.getMultiaddrs().map((a) => a.nodeAddress()).map((a) => `${a.address}:${a.port}`);
    const seeds = this.opts.seeds.filter((s) => !own.includes(this.seedKey(s)));
    const target = Math.min(this.opts.seedTarget ?? seeds.length, seeds.length);
    let open = 0;
    for (const [k, c] of this.seedConns) {
      if (c.status === 'open') open++;
      else this.seedConns.delete(k);
    }
    for (const s of seeds) {
      if (open + this.dialing.size >= target) break;
      const k = this.seedKey(s);
      if (this.seedConns.has(k) || this.dialing.has(k)) continue;
      this.dialing.add(k);
      this.node.dial(this.lib.multiaddr(`/ip4/${s.host}/tcp/${s.port}`), { signal: AbortSignal.timeout(3000) }).then(
        (c) => {
          this.dialing.delete(k);
          if (!this.stopped) this.seedConns.set(k, c);
        },
        (e: Error) => {
          this.dialing.delete(k);
          if (!this.stopped) this.opts.log.debug({ seed: k, err: e.message }, 'seed dial failed');
        },
      );
    }
  }

  /**
   * Subscribes to `topic`. `validate` decides per message before delivery and forwarding
   * (gossipsub's topic validator); `from` is the peer that forwarded it to us.
   */
  subscribe(topic: string, validate: (data: Uint8Array, from: string) => Verdict): void {
    const ps = this.node.services.pubsub;
    const { TopicValidatorResult } = this.lib;
    ps.topicValidators.set(topic, (from: PeerId, msg) => {
      const v = validate(msg.data, from.toString());
      return v === 'accept' ? TopicValidatorResult.Accept : v === 'ignore' ? TopicValidatorResult.Ignore : TopicValidatorResult.Reject;
    });
    ps.subscribe(topic);
  }

  /** Publishes `data` on `topic`; resolves with how many peers it was sent to (never throws). */
  async publish(topic: string, data: Uint8Array): Promise<number> {
    if (this.stopped) return 0;
    try {
      const r = await this.node.services.pubsub.publish(topic, data);
      return r.recipients.length;
    } catch (e) {
      this.opts.log.debug({ topic, err: (e as Error).message }, 'publish failed');
      return 0;
    }
  }

  /** Serves request/response `protocol`: one length-prefixed request, one reply, per stream. */
  async handle(protocol: string, serve: (req: Uint8Array, from: string) => Promise<Uint8Array>): Promise<void> {
    const max = this.opts.maxMessageBytes ?? 8 * 1024 * 1024;
    await this.node.handle(protocol, ({ stream, connection }) => {
      void (async () => {
        try {
          const lp = this.lib.lpStream(stream, { maxDataLength: max });
          const req = await lp.read({ signal: AbortSignal.timeout(5000) });
          const resp = await serve(req.subarray(), connection.remotePeer.toString());
          await lp.write(resp, { signal: AbortSignal.timeout(5000) });
          await stream.close();
        } catch (e) {
          stream.abort(e as Error);
        }
      })();
    });
  }

  /**
   * Sends one request over `protocol` to peer `peerId` (must be connected) and returns the reply.
   * @throws Error on no connection, timeout or a broken stream.
   */
  async request(peerId: string, protocol: string, req: Uint8Array, timeoutMs = 3000): Promise<Uint8Array> {
    const conn = this.node.getConnections().find((c) => c.remotePeer.toString() === peerId && c.status === 'open');
    if (!conn) throw new Error(`not connected to ${peerId}`);
    const signal = AbortSignal.timeout(timeoutMs);
    const stream = await conn.newStream(protocol, { signal });
    try {
      const lp = this.lib.lpStream(stream, { maxDataLength: this.opts.maxMessageBytes ?? 8 * 1024 * 1024 });
      await lp.write(req, { signal });
      const resp = await lp.read({ signal });
      await stream.close().catch(() => undefined);
      return resp.subarray();
    } catch (e) {
      stream.abort(e as Error);
      throw e;
    }
  }

  /**
   * Stops the peer: closes every connection and the listener and clears every timer, so
   * nothing of it keeps the process alive.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.redialTimer) clearInterval(this.redialTimer);
    // gossipsub 14's stop() forgets its pending heartbeat timer (status is replaced before
    // the timeout is cleared): clear it ourselves and make any late re-arm a no-op.
    const ps = this.node.services.pubsub as unknown as { status?: { heartbeatTimeout?: NodeJS.Timeout }; runHeartbeat: () => void };
    clearTimeout(ps.status?.heartbeatTimeout);
    ps.runHeartbeat = () => undefined;
    await this.node.stop();
    // libp2p 2's address manager re-arms a 1 s debounce when its transports close during stop.
    const am = (this.node as unknown as { components?: { addressManager?: { _updatePeerStoreAddresses?: { stop?: () => void } } } }).components?.addressManager;
    am?._updatePeerStoreAddresses?.stop?.();
  }
}
