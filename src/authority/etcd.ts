/**
 * The etcd-backed map authority (issue 14): every storage node runs one, and any of them can
 * commit a map change, because order comes from etcd, not from one process.
 *
 * - **Epochs** are committed by a transaction that compares `<prefix>/epoch` with the epoch
 *   the change was applied to and, if it still holds, writes the next epoch and its signed map
 *   together (etcd-state.ts). Two maps can therefore never share an epoch. A node that loses
 *   the race reloads the newest map and applies its change again.
 * - **Write-lease generations** are per-volume counters under `<prefix>/leases/`, each grant a
 *   compare-and-swap on the counter's mod revision: generations never repeat and never go
 *   backwards, whichever node grants them.
 * - **Membership decisions** (down, out, up) are made by one node at a time: the one whose
 *   node id is `<prefix>/leader`, a key attached to its etcd lease (TTL leaderTtlMs, kept
 *   alive by the client). Every decision's transaction also compares the leader key's create
 *   revision with the one this node wrote, so a leader whose lease expired while it was
 *   stopped or partitioned commits nothing when it wakes — the transaction fails and it steps
 *   down. Down needs reports from several peers (membership.ts, minDownReporters).
 * - **Distribution** stays gossip: the committing node hands the map to its keeper and
 *   publishes it; the leader publishes digests. Every node also watches `<prefix>/epoch` and
 *   hands newer maps to its keeper, so a map whose committer died before publishing still
 *   spreads. Initiators never talk to etcd.
 *
 * Every map is signed with the cluster's authority key, which every node holds
 * (`<dataDir>/node<ID>/authority.key`).
 */
import { readFile } from 'node:fs/promises';
import type { KeyObject } from 'node:crypto';
import type { Etcd3, Lease, Watcher } from 'etcd3';
import {
  applyChange, initialMap, openSignedMap, parsePrivateKey, parsePublicKey, signMap, type MapChange, type SignedMap,
} from '../clustermap/index.ts';
import { membershipOf, type ClusterConfig, type EtcdAuthorityConfig, type Membership } from '../config/index.ts';
import type { HistoryEntry, MapAuthority, SubmitResult } from './authority.ts';
import type { EmbeddedAuthorityOptions } from './embedded.ts';
import { authorityKeyPath } from './embedded.ts';
import { etcdKeys, openEtcd } from './etcd-state.ts';
import type { LeaseGenerations } from './leases.ts';
import { MembershipTracker } from './membership.ts';

/** Default TTL of the membership leader's etcd lease, ms. */
export const DEFAULT_LEADER_TTL_MS = 3000;
/** Default number of distinct reporters that must find a node silent before it is marked down. */
export const DEFAULT_MIN_DOWN_REPORTERS = 2;
/** Compare-and-swap attempts of one change before it fails (each attempt reloads the newest map). */
const CAS_ATTEMPTS = 100;

/** A membership decision was refused because this node no longer leads. */
export class NotLeaderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotLeaderError';
  }
}

/** Options of EtcdAuthority.open (onLocalMap: each newer map it commits or learns from etcd). */
export interface EtcdAuthorityOptions extends EmbeddedAuthorityOptions {
  /** Called when this node becomes (true) or stops being (false) the membership leader. */
  onLeader?: (leading: boolean) => void;
  /** The newest epoch this node has seen (its keeper's): an empty etcd prefix is refused when above 1. */
  knownEpoch?: number;
  /** A client to use instead of one made from the config (closed by close() only if not given). */
  client?: Etcd3;
}

/** What this node holds while it leads. */
interface Leading {
  /** Create revision of our `<prefix>/leader` key: every decision compares it. */
  revision: number;
  lease: Lease;
  lastKeepAlive: number;
  /** Ends the term (the campaign loop then campaigns again). */
  end: () => void;
}

/** The etcd-backed authority; see the module comment. */
export class EtcdAuthority implements MapAuthority {
  private latest: SignedMap;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly keys: ReturnType<typeof etcdKeys>;
  private readonly gens = new Map<number, number>();
  private readonly tracker: MembershipTracker;
  private readonly timing: Membership;
  private readonly ttlMs: number;
  private leading: Leading | null = null;
  private leaderId: number | null = null;
  /** Wakes a campaign waiting for the leader key to go. */
  private wake: (() => void) | null = null;
  /** Times the leader key was seen deleted (a campaign that saw one since its attempt retries at once). */
  private leaderGone = 0;
  private readonly watchers: Watcher[] = [];
  private timers: NodeJS.Timeout[] = [];
  private lastTick = Date.now();
  private catchingUp: Promise<void> | null = null;
  private closed = false;
  private campaigning: Promise<void> = Promise.resolve();

  private constructor(
    private readonly opts: EtcdAuthorityOptions,
    private readonly cfg: EtcdAuthorityConfig,
    private readonly client: Etcd3,
    private readonly key: KeyObject,
    latest: SignedMap,
  ) {
    this.latest = latest;
    this.keys = etcdKeys(cfg.prefix);
    this.timing = { ...membershipOf(opts.config), ...opts.membership };
    this.ttlMs = cfg.leaderTtlMs ?? DEFAULT_LEADER_TTL_MS;
    this.tracker = new MembershipTracker(this.timing, opts.selfNode, cfg.minDownReporters ?? DEFAULT_MIN_DOWN_REPORTERS, opts.log);
  }

  /**
   * Connects to etcd, loads the newest epoch (committing the creation map when the prefix is
   * new), the lease generations and the current leader, starts the watches and campaigns for
   * the membership leadership in the background.
   * @throws Error when the config is not an etcd authority, the key is missing or does not
   *         match cluster.json, etcd cannot be reached, or the prefix is empty while this
   *         node has seen a later epoch (an existing cluster needs `cairn authority migrate`).
   */
  static async open(opts: EtcdAuthorityOptions): Promise<EtcdAuthority> {
    const c = opts.config;
    if (c.authority?.kind !== 'etcd' || !c.authority.etcd) throw new Error('cluster.json names no etcd authority');
    const cfg = c.authority.etcd;
    const key = parsePrivateKey(await readFile(authorityKeyPath(opts.dataDir, opts.selfNode), 'utf8'));
    const client = opts.client ?? openEtcd(cfg, opts.dataDir);
    try {
      const k = etcdKeys(cfg.prefix);
      let latest = await loadNewest(client, k, c);
      if (!latest) {
        if ((opts.knownEpoch ?? 0) > 1) {
          throw new Error(`etcd prefix ${cfg.prefix} holds no authority state but this node has seen epoch ${opts.knownEpoch}: migrate the cluster's history first (cairn authority migrate)`);
        }
        const first = signMap(initialMap(c), key);
        const r = await client.if(k.epoch, 'Create', '==', 0).then(client.put(k.epoch).value(String(first.epoch)), client.put(k.map(first.epoch)).value(first.wire)).commit();
        latest = r.succeeded ? first : await loadNewest(client, k, c);
        if (!latest) throw new Error(`etcd prefix ${cfg.prefix}: no readable map after creating it`);
      }
      const a = new EtcdAuthority(opts, cfg, client, key, latest);
      await a.start();
      return a;
    } catch (e) {
      if (!opts.client) client.close();
      throw new Error(`etcd authority (${cfg.endpoints.join(', ')}): ${(e as Error).message}`);
    }
  }

  private async start(): Promise<void> {
    const k = this.keys;
    for (const [name, value] of Object.entries(await this.client.getAll().prefix(k.leases).strings())) {
      this.gens.set(Number(name.slice(k.leases.length)), Number(value));
    }
    const leader = await this.client.get(k.leader).string();
    this.leaderId = leader === null ? null : Number(leader);
    const epochs = await this.client.watch().key(k.epoch).create();
    epochs.on('put', () => void this.catchUp());
    const leases = await this.client.watch().prefix(k.leases).create();
    leases.on('put', (kv) => {
      const v = Number(kv.key.toString().slice(k.leases.length));
      this.gens.set(v, Math.max(this.gens.get(v) ?? 0, Number(kv.value.toString())));
    });
    const leaderWatch = await this.client.watch().key(k.leader).create();
    leaderWatch.on('put', (kv) => this.setLeader(Number(kv.value.toString())));
    leaderWatch.on('delete', () => this.setLeader(null));
    this.watchers.push(epochs, leases, leaderWatch);
    if (this.latest.epoch > 0) this.opts.onLocalMap(this.latest);
    const tick = Math.max(50, Math.min(250, Math.floor(this.timing.heartbeatMs / 2)));
    this.timers.push(
      setInterval(() => this.checkMembership(tick), tick),
      // Watches reconnect on their own; this poll is the safety net for a missed event.
      setInterval(() => void this.catchUp(), Math.max(1000, this.timing.digestMs)),
      setInterval(() => {
        if (this.isLeader()) void this.opts.publisher.publishDigest(this.latest);
      }, this.timing.digestMs),
    );
    this.campaigning = this.campaign();
    this.opts.log.info({ epoch: this.latest.epoch, prefix: this.cfg.prefix, leader: this.leaderId, timing: this.timing }, 'etcd map authority started');
  }

  /** The node id that leads membership decisions right now, as far as this node knows; null: none. */
  leader(): number | null {
    return this.leaderId;
  }

  /** True while this node holds the leadership and its etcd lease was renewed within the TTL. */
  isLeader(): boolean {
    return this.leading !== null && Date.now() - this.leading.lastKeepAlive < this.ttlMs;
  }

  current(): SignedMap {
    return this.latest;
  }

  leases(): LeaseGenerations {
    return Object.fromEntries(this.gens);
  }

  /**
   * Grants the next generation of `volume`: a compare-and-swap on its counter, retried on a
   * race with another node.
   * @throws Error when closed or etcd does not answer.
   */
  acquireLease(volume: number): Promise<number> {
    const run = async (): Promise<number> => {
      if (this.closed) throw new Error('the map authority is closed');
      const key = this.keys.lease(volume);
      for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        const r = await this.client.get(key).exec();
        const kv = r.kvs[0];
        const cur = kv ? Number(kv.value.toString()) : 0;
        const gen = cur + 1;
        const txn = kv ? this.client.if(key, 'Mod', '==', kv.mod_revision) : this.client.if(key, 'Create', '==', 0);
        const done = await txn.then(this.client.put(key).value(String(gen))).commit();
        if (done.succeeded) {
          this.gens.set(volume, Math.max(this.gens.get(volume) ?? 0, gen));
          this.opts.log.info({ volume, generation: gen }, 'write lease granted');
          return gen;
        }
      }
      throw new Error(`volume ${volume}: could not take the next lease generation (${CAS_ATTEMPTS} compare-and-swap races lost)`);
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Applies an operator's change (any node may): see commit(). */
  submit(change: MapChange): Promise<SubmitResult> {
    return this.commit(change, false);
  }

  /**
   * Applies `change` to the newest map and commits it as the next epoch (compare-and-swap on
   * the epoch; with `asLeader`, also on our leader key), then publishes it.
   * @throws ChangeError when the change does not apply; NotLeaderError when `asLeader` and
   *         this node does not lead; Error when etcd does not answer or the races never end.
   */
  private commit(change: MapChange, asLeader: boolean): Promise<SubmitResult> {
    const run = async (): Promise<SubmitResult> => {
      for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        if (this.closed) throw new Error('the map authority is closed');
        const leading = this.leading;
        if (asLeader && (!leading || !this.isLeader())) throw new NotLeaderError(`node ${this.opts.selfNode} does not lead membership`);
        const base = this.latest;
        const next = applyChange(base.map, change, Date.now());
        if (!next) return { epoch: base.epoch, checksum: base.checksum, changed: false, publishedAt: Date.now() };
        const s = signMap(next, this.key);
        let txn = this.client.if(this.keys.epoch, 'Value', '==', String(base.epoch));
        if (asLeader) txn = txn.and(this.keys.leader, 'Create', '==', leading!.revision);
        // On failure the same round trip brings back the newest map (the highest key under
        // maps/, written with its epoch) and the leader key: a retry costs one round trip.
        const r = await txn
          .then(this.client.put(this.keys.epoch).value(String(s.epoch)), this.client.put(this.keys.map(s.epoch)).value(s.wire))
          .else(this.client.getAll().prefix(this.keys.maps).sort('Key', 'Descend').limit(1), this.client.get(this.keys.leader))
          .commit();
        if (r.succeeded) {
          this.adopt(s);
          const publishedAt = performance.timeOrigin + performance.now();
          const sent = await this.opts.publisher.publishMap(s);
          this.opts.log.info({ epoch: s.epoch, checksum: s.checksum, change: next.change, sentTo: sent }, 'new map epoch committed to etcd and published');
          return { epoch: s.epoch, checksum: s.checksum, changed: true, publishedAt };
        }
        // Lost a race (or our leadership): take the newest map the failed transaction read and
        // try again, after a short random pause once races repeat (several nodes committing at
        // once).
        const wire = r.responses[0]?.response_range?.kvs[0]?.value;
        if (wire) this.adopt(openSignedMap(wire, parsePublicKey(this.opts.config.authority!.publicKey), this.opts.config.clusterId));
        if (asLeader && r.responses[1]?.response_range?.kvs[0]?.create_revision !== String(leading!.revision)) {
          this.stepDown('the leader key is no longer ours');
          throw new NotLeaderError(`node ${this.opts.selfNode} lost the membership leadership`);
        }
        if (attempt >= 2) await new Promise((res) => setTimeout(res, Math.random() * Math.min(50, 2 ** attempt)));
      }
      throw new Error(`could not commit the change: ${CAS_ATTEMPTS} compare-and-swap races lost`);
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  async history(): Promise<HistoryEntry[]> {
    const all = await this.client.getAll().prefix(this.keys.maps).buffers();
    const pub = parsePublicKey(this.opts.config.authority!.publicKey);
    const out: HistoryEntry[] = [];
    for (const wire of Object.values(all)) {
      try {
        const s = openSignedMap(wire, pub, this.opts.config.clusterId);
        out.push({ epoch: s.epoch, checksum: s.checksum, createdAt: s.map.createdAt, change: s.map.change });
      } catch {
        // a map that does not verify is not history
      }
    }
    return out.sort((a, b) => a.epoch - b.epoch);
  }

  heartbeat(node: number, at: number, suspects?: readonly number[], hb?: { sentAt: number; leaving?: boolean }): void {
    const kind = this.tracker.heartbeat(node, at, suspects, hb);
    if (kind === 'stale') return;
    const n = this.latest.map.nodes.find((x) => x.id === node);
    if (kind === 'leaving') {
      if (n?.up && !this.closed && this.isLeader()) {
        void this.commit({ type: 'down', nodes: [node], leaving: true }, true).catch((e: Error) => {
          if (!(e instanceof NotLeaderError)) this.opts.log.warn({ node, err: e.message }, 'could not mark a stopping node down');
        });
      }
      return;
    }
    if (n && !n.up && !this.closed && this.isLeader()) {
      void this.commit({ type: 'up', nodes: [node] }, true).catch((e: Error) => this.opts.log.warn({ node, err: e.message }, 'could not mark node up'));
    }
  }

  private checkMembership(tick: number): void {
    const now = Date.now();
    const gap = now - this.lastTick;
    this.lastTick = now;
    if (this.closed) return;
    // This process was stopped (or starved): what it last heard is old news, not silence.
    if (gap > Math.max(1000, 4 * tick)) {
      this.tracker.reset(now);
      this.opts.log.warn({ pausedMs: gap }, 'membership monitor was paused; starting its view over');
      return;
    }
    if (!this.isLeader()) return;
    const { down, out } = this.tracker.decide(this.latest.map, now);
    const fail = (what: string) => (e: Error): void => {
      if (!(e instanceof NotLeaderError)) this.opts.log.warn({ err: e.message }, `could not mark nodes ${what}`);
    };
    if (down.length) void this.commit({ type: 'down', nodes: down }, true).catch(fail('down'));
    if (out.length) void this.commit({ type: 'auto-out', nodes: out }, true).catch(fail('out'));
  }

  /** Loads the newest committed map when it is newer than ours (one load at a time). */
  private catchUp(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.catchingUp ??= (async () => {
      try {
        const s = await loadNewest(this.client, this.keys, this.opts.config);
        if (s && s.epoch > this.latest.epoch) this.adopt(s);
      } catch (e) {
        this.opts.log.warn({ err: (e as Error).message }, 'could not read the newest map from etcd');
      } finally {
        this.catchingUp = null;
      }
    })();
    return this.catchingUp;
  }

  private adopt(s: SignedMap): void {
    if (s.epoch <= this.latest.epoch) return;
    this.latest = s;
    this.opts.onLocalMap(s);
  }

  private setLeader(id: number | null): void {
    if (id === null) {
      this.leaderGone++;
      this.wake?.();
    }
    if (id === this.leaderId) return;
    this.leaderId = id;
    this.opts.log.info({ leader: id }, id === null ? 'membership leader gone' : `node ${id} leads membership`);
  }

  /** Campaigns for the leadership until closed: one etcd lease per term. */
  private async campaign(): Promise<void> {
    const ttlS = Math.max(2, Math.ceil(this.ttlMs / 1000));
    while (!this.closed) {
      try {
        const gone = this.leaderGone;
        const lease = this.client.lease(ttlS, { autoKeepAlive: true });
        let lost!: () => void;
        const lostP = new Promise<void>((r) => (lost = r));
        lease.on('lost', () => lost());
        const id = await lease.grant();
        const r = await this.client.if(this.keys.leader, 'Create', '==', 0)
          .then(this.client.put(this.keys.leader).value(String(this.opts.selfNode)).lease(id))
          .else(this.client.get(this.keys.leader))
          .commit();
        if (r.succeeded && !this.closed) {
          const leading: Leading = { revision: Number(r.header.revision), lease, lastKeepAlive: Date.now(), end: lost };
          lease.on('keepaliveSucceeded', () => (leading.lastKeepAlive = Date.now()));
          this.leading = leading;
          this.setLeader(this.opts.selfNode);
          this.opts.log.info({ node: this.opts.selfNode, revision: leading.revision, ttlMs: this.ttlMs }, 'this node now leads membership decisions');
          this.opts.onLeader?.(true);
          await this.opts.publisher.publishDigest(this.latest).catch(() => 0);
          await lostP;
          this.stepDown('its etcd lease was lost');
          continue;
        }
        await lease.revoke().catch(() => undefined);
        if (this.closed) break;
        // The leader key went while we asked: try again now.
        if (this.leaderGone !== gone) continue;
        const holder = r.responses[0]?.response_range?.kvs[0];
        if (holder) this.setLeader(Number(holder.value.toString()));
        // Wait for the leader key to go (watched), or re-check after one TTL.
        await new Promise<void>((resolveWait) => {
          const t = setTimeout(done, this.ttlMs);
          function done(): void {
            clearTimeout(t);
            resolveWait();
          }
          this.wake = done;
        });
        this.wake = null;
      } catch (e) {
        if (this.closed) break;
        this.opts.log.warn({ err: (e as Error).message }, 'membership leader campaign failed; retrying');
        await new Promise((r) => setTimeout(r, Math.min(1000, this.ttlMs / 2)).unref());
      }
    }
  }

  private stepDown(why: string): void {
    const l = this.leading;
    if (!l) return;
    this.leading = null;
    void l.lease.revoke().catch(() => undefined);
    l.end();
    this.opts.log.warn({ node: this.opts.selfNode, why }, 'this node no longer leads membership decisions');
    this.opts.onLeader?.(false);
  }

  /** Stops timers and watches, hands the leadership back at once (revokes its lease), closes the client it made. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.wake?.();
    await this.chain;
    const l = this.leading;
    this.leading = null;
    if (l) {
      await l.lease.revoke().catch(() => undefined);
      l.end();
    }
    await Promise.all(this.watchers.map((w) => w.cancel().catch(() => undefined)));
    await this.campaigning.catch(() => undefined);
    if (!this.opts.client) this.client.close();
  }
}

/**
 * The newest committed map under `k`, verified with the config's authority key; null when
 * the prefix holds no epoch.
 * @throws Error when the epoch key names a map that is missing or does not verify.
 */
async function loadNewest(client: Etcd3, k: ReturnType<typeof etcdKeys>, c: ClusterConfig): Promise<SignedMap | null> {
  const epoch = await client.get(k.epoch).string();
  if (epoch === null) return null;
  const wire = await client.get(k.map(Number(epoch))).buffer();
  if (!wire) throw new Error(`epoch ${epoch} has no map under ${k.maps}`);
  return openSignedMap(wire, parsePublicKey(c.authority!.publicKey), c.clusterId);
}
