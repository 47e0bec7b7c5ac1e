/**
 * A peer's current cluster map. Offered maps (from gossip, from the map-fetch protocol, from
 * disk) are accepted only when their epoch is newer and their checksum and authority
 * signature verify; everything else is refused, counted and logged (a forged, corrupted or
 * replayed map never replaces the current one). The latest accepted map is kept in a file
 * so a restarted peer starts from it rather than from the creation map.
 */
import { EventEmitter } from 'node:events';
import { readFile, rename, writeFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { MapRejectedError, openSignedMap, peekSignedMap, type MapRejectReason, type SignedMap } from './signed-map.ts';
import type { ClusterMap } from './types.ts';

/** The log calls a keeper makes (a pino logger fits). */
export interface KeeperLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Options of a MapKeeper. */
export interface MapKeeperOptions {
  clusterId: string;
  /** The authority's public key. */
  authorityKey: KeyObject;
  /** The map to start from (the creation map, trusted because it comes from cluster.json). */
  initial: ClusterMap;
  log: KeeperLog;
  /** File keeping the latest accepted signed map (optional). */
  persistPath?: string;
}

/** Result of offering a map. */
export type OfferResult = { accepted: true; epoch: number } | { accepted: false; reason: MapRejectReason; message: string };

/**
 * Holds the current map. Events: 'map' (SignedMap) after each accepted epoch;
 * 'rejected' ({reason, message, from}) after each refusal.
 */
export class MapKeeper extends EventEmitter {
  private cur: ClusterMap;
  private signedCur: SignedMap | null = null;
  private writing: Promise<void> = Promise.resolve();
  /** Refusals by reason (duplicates included). */
  readonly rejections: Record<MapRejectReason, number> = { malformed: 0, checksum: 0, signature: 0, cluster: 0, stale: 0, duplicate: 0, conflict: 0 };
  /** ms timestamps (performance.timeOrigin + now) at which each epoch was accepted. */
  readonly acceptedAt = new Map<number, number>();

  constructor(private readonly opts: MapKeeperOptions) {
    super();
    this.cur = opts.initial;
  }

  /** The current map. */
  get map(): ClusterMap {
    return this.cur;
  }

  /** The current epoch. */
  get epoch(): number {
    return this.cur.epoch;
  }

  /** The current map signed, or null while only the (unsigned) creation map is known. */
  get signed(): SignedMap | null {
    return this.signedCur;
  }

  /** Loads the persisted map, if any and valid and newer (a bad file is logged and ignored). */
  async loadPersisted(): Promise<void> {
    if (!this.opts.persistPath) return;
    let wire: Buffer;
    try {
      wire = await readFile(this.opts.persistPath);
    } catch {
      return;
    }
    this.offer(wire, 'disk', false);
  }

  /**
   * Offers a signed map (wire bytes) from `from` (a peer id, 'disk', 'authority').
   * Accepts it only if newer and it verifies; never throws.
   */
  offer(wire: Uint8Array, from: string, persist = true): OfferResult {
    let epoch = 0;
    try {
      const head = peekSignedMap(wire);
      epoch = head.epoch;
      if (head.epoch < this.cur.epoch) throw new MapRejectedError('stale', `map of epoch ${head.epoch} is older than ours (${this.cur.epoch}): replayed or late`, head.epoch);
      if (head.epoch === this.cur.epoch) {
        if (this.signedCur && this.signedCur.checksum === head.checksum) throw new MapRejectedError('duplicate', `map of epoch ${head.epoch} already held`, head.epoch);
        if (this.signedCur || this.cur.epoch > 1) throw new MapRejectedError('conflict', `a different map of our epoch ${head.epoch} (checksum ${head.checksum}, ours ${this.signedCur?.checksum})`, head.epoch);
      }
      const s = openSignedMap(wire, this.opts.authorityKey, this.opts.clusterId);
      if (s.epoch === this.cur.epoch && s.epoch === 1) {
        // The signed creation map: must equal the one derived from cluster.json.
        if (JSON.stringify(s.map.nodes) !== JSON.stringify(this.cur.nodes)) throw new MapRejectedError('conflict', 'signed creation map differs from cluster.json', 1);
      }
      this.cur = s.map;
      this.signedCur = s;
      this.acceptedAt.set(s.epoch, performance.timeOrigin + performance.now());
      if (from !== 'disk') this.opts.log.info({ epoch: s.epoch, checksum: s.checksum, from, change: s.map.change }, 'map accepted');
      if (persist) this.persist(s);
      this.emit('map', s);
      return { accepted: true, epoch: s.epoch };
    } catch (e) {
      const err = e instanceof MapRejectedError ? e : new MapRejectedError('malformed', (e as Error).message, epoch);
      this.rejections[err.reason]++;
      if (err.reason !== 'duplicate' && !(err.reason === 'stale' && from === 'disk')) {
        const level = err.reason === 'stale' ? 'warn' : 'error';
        this.opts.log[level]({ reason: err.reason, epoch: err.epoch, current: this.cur.epoch, from }, `map rejected: ${err.message}`);
      }
      this.emit('rejected', { reason: err.reason, message: err.message, from });
      return { accepted: false, reason: err.reason, message: err.message };
    }
  }

  /** Resolves true once the current epoch is >= `epoch`, false after `timeoutMs`. */
  waitFor(epoch: number, timeoutMs: number): Promise<boolean> {
    if (this.cur.epoch >= epoch) return Promise.resolve(true);
    return new Promise((resolve) => {
      const onMap = (s: SignedMap): void => {
        if (s.epoch >= epoch) done(true);
      };
      const t = setTimeout(() => done(false), timeoutMs);
      const done = (v: boolean): void => {
        clearTimeout(t);
        this.off('map', onMap);
        resolve(v);
      };
      this.on('map', onMap);
    });
  }

  private persist(s: SignedMap): void {
    const path = this.opts.persistPath;
    if (!path) return;
    this.writing = this.writing.then(async () => {
      if (this.signedCur !== s) return; // a newer one follows
      await mkdir(dirname(path), { recursive: true });
      await writeFile(`${path}.tmp`, s.wire);
      await rename(`${path}.tmp`, path);
    }).catch((e: Error) => this.opts.log.warn({ err: e.message }, 'could not save the map'));
  }

  /** Waits for the last save to finish. */
  async close(): Promise<void> {
    await this.writing;
  }
}
