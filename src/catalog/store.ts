/**
 * The catalog store: named records placed and replicated like data (keys.ts), read from
 * the newest replica and updated by compare-and-swap on the record version.
 *
 * Reads ask every up member of the record's extent for its page versions (Op.Versions) and
 * read the record from the member holding the newest version of page 0 (a Recovery read:
 * any copy is a valid source of the version it reports), falling back to the next newest
 * when a copy fails its header or checksum. Writes go through the initiator's replication
 * (MemberIo): every acting member, FUA, degraded below full size but never below min_size,
 * with the absent members recording what they missed (so resync and backfill carry the
 * catalog like any volume). A record's page version is writeVersion(term, record version):
 * `term` is the mutator's term (1 for the embedded authority's node; with etcd, a generation
 * each new membership leader takes when it starts running the catalog), so the newest copy is
 * the one of the newest term, then the highest record version — a deposed mutator that
 * finishes a write late never wins over its successor's — and a node that saw a write of a
 * newer term refuses the older term's writes (the lease generation of volume 0 is the term).
 *
 * Compare-and-swap is atomic among callers of one CatalogStore (a per-record lock around
 * read-compare-write). The cluster keeps one mutator — the map authority's node, which
 * already orders epochs and leases — so that is atomic cluster-wide; every node may read.
 */
import { BlockDeviceError } from '../volume/index.ts';
import { ConnectionError, Flag, Op, PAGE_SIZE, Status, statusName, writeVersion, type ConnectionPool } from '../wire/index.ts';
import { MemberIo, PlacementError, type ClusterView, type ViewSource } from '../initiator/index.ts';
import { decodeVersions } from '../recovery/codec.ts';
import { CATALOG_POOL, CATALOG_VOLUME, RECORD_MAX_PAGES, catalogExtent } from './keys.ts';
import { RecordFormatError, decodeRecord, encodeRecord, recordPages, type StoredRecord } from './record-codec.ts';

/** A compare-and-swap that found another version than the one expected. */
export class CatalogConflictError extends Error {
  override name = 'CatalogConflictError';
  constructor(readonly key: string, readonly expected: number, readonly current: StoredRecord | null) {
    super(`catalog record ${key} is at version ${current?.version ?? 0}, not ${expected}`);
  }
}

/** The catalog could not be read or written (too few members answered in time). */
export class CatalogUnavailableError extends Error {
  override name = 'CatalogUnavailableError';
}

/** Options of a CatalogStore. */
export interface CatalogStoreOptions {
  views: ViewSource;
  connections: ConnectionPool;
  /**
   * This store is the catalog's one mutator (it runs beside the authority): every write goes
   * through it, so it keeps what it read and wrote and answers from that, and a
   * compare-and-swap costs one replicated write.
   */
  mutator?: boolean;
  /** Bound on waiting for enough members, ms (default 15000). */
  ioTimeoutMs?: number;
  /** The mutator's term (≥ 1, default 1): the generation of its writes' page versions and lease. */
  term?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Named, replicated, versioned records; see the module comment. */
export class CatalogStore {
  private readonly io: MemberIo;
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly timeoutMs: number;
  /** The mutator's copy of every record it read or wrote (see CatalogStoreOptions.mutator). */
  private readonly known = new Map<string, StoredRecord | null>();

  private readonly term: number;

  constructor(private readonly opts: CatalogStoreOptions) {
    this.timeoutMs = opts.ioTimeoutMs ?? 15000;
    this.term = opts.term ?? 1;
    this.io = new MemberIo({
      views: opts.views,
      connections: opts.connections,
      volume: { id: CATALOG_VOLUME, name: 'catalog', pool: CATALOG_POOL },
      lease: () => this.term,
      ioTimeoutMs: this.timeoutMs,
      counters: { staleEpochReplies: 0, refreshes: 0, degradedWrites: 0, memberRetries: 0, readFailovers: 0, reconciled: 0, writeThrough: 0 },
      dirty: new Set(),
      unsettled: new Set(),
    });
  }

  /**
   * The newest copy of record `key`, or null when it was never written. A tombstone comes
   * back as {version, body: null}.
   * @throws CatalogUnavailableError when no member answered within the timeout.
   */
  async get(key: string): Promise<StoredRecord | null> {
    if (this.opts.mutator && this.known.has(key)) return this.known.get(key)!;
    const r = await this.getFromReplicas(key);
    if (this.opts.mutator && this.known.size < 1_000_000) this.known.set(key, r);
    return r;
  }

  private async getFromReplicas(key: string): Promise<StoredRecord | null> {
    const extent = catalogExtent(key);
    const deadline = Date.now() + this.timeoutMs;
    let last = 'no member is up';
    for (;;) {
      let view = this.opts.views.current;
      let members: number[];
      try {
        members = view.members(CATALOG_VOLUME, extent, CATALOG_POOL);
      } catch (e) {
        if (!(e instanceof PlacementError)) throw e;
        members = [];
        last = e.message;
      }
      const up = members.filter((m) => view.isUp(view.nodeOf(m)));
      const answers = await Promise.all(up.map((m) => this.pageZeroVersion(view, extent, m, members)));
      const stale = answers.find((a) => a.stale)?.stale;
      if (stale) {
        view = await this.opts.views.refresh(stale);
        continue;
      }
      const ok = answers.filter((a) => a.version !== undefined) as Array<{ member: number; version: number }>;
      for (const a of answers) if (a.why) last = a.why;
      const pool = view.pool(CATALOG_POOL);
      // A member that answered "never written" counts: a record exists only once every
      // acting member of min_size had it, so min_size answers settle the question.
      if (ok.length >= Math.min(pool.minSize, Math.max(1, up.length)) && ok.length > 0) {
        ok.sort((a, b) => b.version - a.version);
        if (ok[0].version === 0) return null;
        for (const a of ok) {
          if (a.version === 0) break;
          try {
            return await this.readFrom(view, extent, a.member, members);
          } catch (e) {
            last = (e as Error).message;
          }
        }
      }
      if (Date.now() > deadline) throw new CatalogUnavailableError(`catalog record ${key} could not be read: ${last}`);
      await sleep(100);
    }
  }

  /**
   * Writes `body` (null: a tombstone) as record `key` if it is now at version `expected`
   * (0: never written); returns the new version.
   * @throws CatalogConflictError when the record is at another version (nothing written);
   *         CatalogUnavailableError; RangeError for a body over RECORD_MAX_BODY.
   */
  put(key: string, expected: number, body: unknown): Promise<number> {
    return this.locked(key, async () => {
      const cur = await this.get(key);
      if ((cur?.version ?? 0) !== expected) throw new CatalogConflictError(key, expected, cur);
      const version = expected + 1;
      await this.write(key, version, body);
      return version;
    });
  }

  /**
   * Read-modify-write of record `key`, atomic among this store's callers: `update` gets the
   * current record (body null when absent or a tombstone) and returns the new body, or
   * undefined to write nothing. Resolves with the written version and body (or the unchanged
   * current).
   * @throws whatever `update` throws; CatalogUnavailableError.
   */
  update<T>(key: string, update: (current: { version: number; body: T | null }) => T | null | undefined): Promise<{ version: number; body: T | null }> {
    return this.locked(key, async () => {
      const cur = await this.get(key);
      const version = cur?.version ?? 0;
      const curBody = (cur?.body ?? null) as T | null;
      const next = update({ version, body: curBody });
      if (next === undefined) return { version, body: curBody };
      await this.write(key, version + 1, next);
      return { version: version + 1, body: next };
    });
  }

  /** Stops background work (the member-I/O ticker). */
  close(): void {
    this.io.close();
  }

  private async write(key: string, version: number, body: unknown): Promise<void> {
    const pages = encodeRecord(version, body);
    // Until the write is known to have landed, the mutator's copy is not to be trusted.
    this.known.delete(key);
    this.io.enter();
    try {
      await this.io.replicate(Op.Write, Flag.Fua, { extent: catalogExtent(key), firstPage: 0, pages: pages.length / PAGE_SIZE, bufOffset: 0 }, writeVersion(this.term, version), pages);
    } catch (e) {
      if (e instanceof BlockDeviceError) throw new CatalogUnavailableError(`catalog record ${key} could not be written: ${e.message}`);
      throw e;
    } finally {
      this.io.leave();
    }
    if (this.opts.mutator) this.known.set(key, { version, body: body ?? null });
  }

  private async locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }

  /** Page 0's version on `member` (0: never written), or why it could not tell. */
  private async pageZeroVersion(view: ClusterView, extent: number, member: number, members: number[]): Promise<{ member: number; version?: number; stale?: number; why?: string }> {
    try {
      const c = await this.opts.connections.get(view.nodeOf(member));
      const r = await c.request({ op: Op.Versions, flags: 0, epoch: view.epoch, volume: CATALOG_VOLUME, extent, partition: member, firstPage: 0, pages: RECORD_MAX_PAGES, lease: 0, version: 0, members });
      if (r.h.status === Status.StaleEpoch) return { member, stale: r.h.aux };
      if (r.h.status !== Status.Ok) return { member, why: `partition ${member}: ${statusName(r.h.status)}` };
      const p0 = decodeVersions(r.payload).find((v) => v.page === 0);
      // A trimmed page 0 (never done by the catalog) counts as absent. The whole page version
      // orders copies: the mutator's term first, then the record version.
      return { member, version: p0 && p0.mapped ? p0.version : 0 };
    } catch (e) {
      if (!(e instanceof ConnectionError)) throw e;
      return { member, why: `partition ${member}: ${e.message}` };
    }
  }

  private async readFrom(view: ClusterView, extent: number, member: number, members: number[]): Promise<StoredRecord> {
    const c = await this.opts.connections.get(view.nodeOf(member));
    const read = async (firstPage: number, pages: number): Promise<Buffer> => {
      const r = await c.request({ op: Op.Read, flags: Flag.Recovery, epoch: view.epoch, volume: CATALOG_VOLUME, extent, partition: member, firstPage, pages, lease: 0, version: 0, members });
      if (r.h.status !== Status.Ok) throw new RecordFormatError(`partition ${member}: ${statusName(r.h.status)}`);
      return Buffer.from(r.payload);
    };
    const first = await read(0, 1);
    const n = recordPages(first);
    const all = n > 1 ? Buffer.concat([first, await read(1, n - 1)]) : first;
    return decodeRecord(all);
  }
}
