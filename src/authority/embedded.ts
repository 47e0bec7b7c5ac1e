/**
 * The embedded map authority: runs inside one designated storage node. Signs each epoch
 * with its Ed25519 key, stores every epoch durably (one file per epoch, fsync'd before it
 * is published, so a restarted authority never reissues an epoch with other contents),
 * publishes maps and periodic digests, and runs the membership monitor: a node whose
 * heartbeats stop for `downAfterMs` is marked down, a node down for `outAfterMs` is marked
 * out (as Ceph's mon_osd_down_out_interval) unless the map's settings say noout (as Ceph's
 * noout flag), a node heard from again is marked up (and in, if it was marked out
 * automatically). Each such decision is a new epoch.
 */
import { mkdir, open, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import {
  applyChange, initialMap, openSignedMap, parsePrivateKey, parsePublicKey, signMap, type ClusterMap, type MapChange, type SignedMap,
} from '../clustermap/index.ts';
import { membershipOf, type ClusterConfig, type Membership } from '../config/index.ts';
import type { HistoryEntry, MapAuthority, SubmitResult } from './authority.ts';
import { LeaseLedger, type LeaseGenerations } from './leases.ts';
import { MembershipTracker } from './membership.ts';

/** Path of the authority's private key for node `node` of a data directory. */
export function authorityKeyPath(dataDir: string, node: number): string {
  return join(dataDir, `node${node}`, 'authority.key');
}

/** Where it publishes (a ControlPlane fits). */
export interface AuthorityPublisher {
  publishMap(s: SignedMap): Promise<number>;
  publishDigest(s: SignedMap): Promise<number>;
}

/** Log calls of the authority. */
export interface AuthorityLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Options of EmbeddedAuthority.open. */
export interface EmbeddedAuthorityOptions {
  config: ClusterConfig;
  dataDir: string;
  /** The node it runs in (never marked down by itself). */
  selfNode: number;
  publisher: AuthorityPublisher;
  /** Called with each new signed map before it is published (the local keeper takes it). */
  onLocalMap: (s: SignedMap) => void;
  log: AuthorityLog;
  /** Overrides of the config's membership timing. */
  membership?: Partial<Membership>;
}

/** The embedded authority. */
export class EmbeddedAuthority implements MapAuthority {
  private latest: SignedMap;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly tracker: MembershipTracker;
  private monitor: NodeJS.Timeout | null = null;
  private digestTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly timing: Membership;
  private readonly dir: string;

  private constructor(
    private readonly opts: EmbeddedAuthorityOptions,
    private readonly key: KeyObject,
    latest: SignedMap,
    private readonly ledger: LeaseLedger,
  ) {
    this.latest = latest;
    this.timing = { ...membershipOf(opts.config), ...opts.membership };
    // One process decides from its own view: the embedded authority is one node.
    this.tracker = new MembershipTracker(this.timing, opts.selfNode, 1, opts.log);
    this.dir = join(opts.dataDir, `node${opts.selfNode}`, 'maps');
  }

  /**
   * Loads the key and the newest stored epoch (signing and storing the creation map the
   * first time), publishes the newest map and starts digests and the membership monitor.
   * @throws Error when the key is missing or does not match the public key in cluster.json.
   */
  static async open(opts: EmbeddedAuthorityOptions): Promise<EmbeddedAuthority> {
    const c = opts.config;
    if (!c.authority) throw new Error('cluster.json names no authority');
    const key = parsePrivateKey(await readFile(authorityKeyPath(opts.dataDir, opts.selfNode), 'utf8'));
    const pub = parsePublicKey(c.authority.publicKey);
    const dir = join(opts.dataDir, `node${opts.selfNode}`, 'maps');
    await mkdir(dir, { recursive: true });
    const files = (await readdir(dir)).filter((f) => /^\d{10}\.map$/.test(f)).sort();
    let latest: SignedMap | null = null;
    for (const f of files.reverse()) {
      try {
        latest = openSignedMap(await readFile(join(dir, f)), pub, c.clusterId);
        break;
      } catch (e) {
        opts.log.error({ file: f, err: (e as Error).message }, 'stored map does not verify; skipping it');
      }
    }
    // Generations recorded in cluster.json (by versions before the ledger) are a floor.
    const floor = Object.fromEntries(c.volumes.map((v) => [v.id, v.lease]));
    const ledger = await LeaseLedger.open(join(opts.dataDir, `node${opts.selfNode}`, 'leases.json'), floor);
    const a = new EmbeddedAuthority(opts, key, latest ?? signMap(initialMap(c), key), ledger);
    if (!latest) await a.store(a.latest);
    if (a.latest.epoch > 0) opts.onLocalMap(a.latest);
    a.monitor = setInterval(() => a.checkMembership(), Math.max(50, Math.min(250, Math.floor(a.timing.heartbeatMs / 2))));
    a.digestTimer = setInterval(() => void opts.publisher.publishDigest(a.latest), a.timing.digestMs);
    void opts.publisher.publishMap(a.latest);
    opts.log.info({ epoch: a.latest.epoch, timing: a.timing }, 'map authority started');
    return a;
  }

  current(): SignedMap {
    return this.latest;
  }

  acquireLease(volume: number): Promise<number> {
    if (this.closed) return Promise.reject(new Error('the map authority is closed'));
    return this.ledger.acquire(volume).then((gen) => {
      this.opts.log.info({ volume, generation: gen }, 'write lease granted');
      return gen;
    });
  }

  leases(): LeaseGenerations {
    return this.ledger.all();
  }

  private async store(s: SignedMap): Promise<void> {
    const path = join(this.dir, `${String(s.epoch).padStart(10, '0')}.map`);
    await writeFile(`${path}.tmp`, s.wire);
    const fh = await open(`${path}.tmp`, 'r');
    await fh.sync();
    await fh.close();
    await rename(`${path}.tmp`, path);
    const d = await open(this.dir, 'r');
    await d.sync().catch(() => undefined);
    await d.close();
  }

  submit(change: MapChange): Promise<SubmitResult> {
    const run = async (): Promise<SubmitResult> => {
      if (this.closed) throw new Error('the map authority is closed');
      const next: ClusterMap | null = applyChange(this.latest.map, change, Date.now());
      if (!next) return { epoch: this.latest.epoch, checksum: this.latest.checksum, changed: false, publishedAt: Date.now() };
      const s = signMap(next, this.key);
      await this.store(s);
      this.latest = s;
      this.opts.onLocalMap(s);
      const publishedAt = performance.timeOrigin + performance.now();
      const sent = await this.opts.publisher.publishMap(s);
      this.opts.log.info({ epoch: s.epoch, checksum: s.checksum, change: next.change, sentTo: sent }, 'new map epoch published');
      return { epoch: s.epoch, checksum: s.checksum, changed: true, publishedAt };
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  async history(): Promise<HistoryEntry[]> {
    await this.chain;
    const pub = parsePublicKey(this.opts.config.authority!.publicKey);
    const files = (await readdir(this.dir)).filter((f) => /^\d{10}\.map$/.test(f)).sort();
    const out: HistoryEntry[] = [];
    for (const f of files) {
      try {
        const s = openSignedMap(await readFile(join(this.dir, f)), pub, this.opts.config.clusterId);
        out.push({ epoch: s.epoch, checksum: s.checksum, createdAt: s.map.createdAt, change: s.map.change });
      } catch {
        // logged at open; history shows what verifies
      }
    }
    return out;
  }

  heartbeat(node: number, at: number, suspects?: readonly number[], hb?: { sentAt: number; leaving?: boolean }): void {
    const kind = this.tracker.heartbeat(node, at, suspects, hb);
    if (kind === 'stale') return;
    const n = this.latest.map.nodes.find((x) => x.id === node);
    if (kind === 'leaving') {
      if (n?.up && !this.closed) void this.submit({ type: 'down', nodes: [node], leaving: true }).catch((e: Error) => this.opts.log.warn({ node, err: e.message }, 'could not mark a stopping node down'));
      return;
    }
    if (n && !n.up && !this.closed) {
      void this.submit({ type: 'up', nodes: [node] }).catch((e: Error) => this.opts.log.warn({ node, err: e.message }, 'could not mark node up'));
    }
  }

  private checkMembership(): void {
    if (this.closed) return;
    const { down, out } = this.tracker.decide(this.latest.map, Date.now());
    if (down.length) void this.submit({ type: 'down', nodes: down }).catch((e: Error) => this.opts.log.warn({ err: e.message }, 'could not mark nodes down'));
    if (out.length) void this.submit({ type: 'auto-out', nodes: out }).catch((e: Error) => this.opts.log.warn({ err: e.message }, 'could not mark nodes out'));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.monitor) clearInterval(this.monitor);
    if (this.digestTimer) clearInterval(this.digestTimer);
    await this.chain;
  }
}
