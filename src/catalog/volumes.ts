/**
 * Volume and snapshot operations on the catalog: create (idempotent), list, show, resize,
 * rename, delete (a background job trimming every member), snapshots (pins; no data copy),
 * clones (copy-on-write children of a snapshot) and flatten, rollback. Mutations run on the
 * node that runs the map authority (one mutator; see store.ts); reads run anywhere.
 * Records: records.ts; record names: keys.ts. Sizes are bytes.
 */
import pMap from 'p-map';
import type { PoolConfig } from '../config/index.ts';
import { CatalogError } from './errors.ts';
import type { JobTracker, Job } from './jobs.ts';
import { INDEX_SHARDS, VOLUME_ID_COUNTER, indexKey, indexKeyOf, snapshotKey, volumeKey } from './keys.ts';
import { CounterSchema, IndexShardSchema, SnapshotRecordSchema, VolumeRecordSchema, nameProblem, type IndexShard, type SnapshotRecord, type VolumeRecord } from './records.ts';
import { CatalogConflictError, type CatalogStore } from './store.ts';

/** Default extent size of new volumes, bytes (1 MiB). */
export const DEFAULT_EXTENT_BYTES = 1 << 20;
/** Largest volume, bytes (2^32 extents of 1 MiB would exceed safe keys; 1 PiB is plenty). */
export const MAX_VOLUME_BYTES = 2 ** 50;

/** A record with its version (the ETag). */
export interface Versioned<T> {
  version: number;
  record: T;
}

/** The data operations the catalog needs (VolumeDataOps in the node; a fake cannot stand in for pins). */
export interface CatalogDataOps {
  trimAll(record: VolumeRecord, progress: (done: number, total: number) => void): Promise<void>;
  snapshot(record: VolumeRecord): Promise<{ version: number }>;
  unpin(id: number, version: number): Promise<Array<{ node: number; error: string }>>;
  /** Copies the parent's data into every extent the clone does not hold yet. */
  flatten(record: VolumeRecord, progress: (done: number, total: number) => void): Promise<void>;
  /** Rewrites the volume with the snapshot's content. */
  rollback(record: VolumeRecord, snap: SnapshotRecord, progress: (done: number, total: number) => void): Promise<void>;
}

/** Options of VolumeCatalog. */
export interface VolumeCatalogOptions {
  store: CatalogStore;
  pools: () => PoolConfig[];
  /** Raw capacity and use of the cluster, bytes (from heartbeats), for thick volumes. */
  capacity: () => { rawBytes: number; usedBytes: number };
  data: CatalogDataOps;
  jobs: JobTracker;
  /**
   * Id of the first volume created without one, while no id was handed out (default 2: id 1
   * belonged to the volume cluster.json listed in data directories made before the catalog).
   */
  firstId?: number;
}

/** Input of create. */
export interface CreateVolume {
  name: string;
  sizeBytes: number;
  pool?: number;
  thin?: boolean;
  /** Extent size, bytes: a power of two from 4096 to 1 MiB (default DEFAULT_EXTENT_BYTES). */
  extentBytes?: number;
  /** Host NQNs allowed over NVMe/TCP (default: any). */
  allowHosts?: string[];
  /** Only for migrating a cluster.json volume: keep its id. */
  id?: number;
}

/** Longest host NQN (NVMe Base spec: 223 bytes). */
const NQN_MAX = 223;

function checkHosts(hosts: unknown): string[] {
  if (!Array.isArray(hosts)) throw new CatalogError(400, 'allowHosts must be a list of host NQNs');
  for (const h of hosts) {
    if (typeof h !== 'string' || !h.startsWith('nqn.') || Buffer.byteLength(h) > NQN_MAX) throw new CatalogError(400, `allowHosts: '${String(h)}' is not a host NQN (nqn.…, at most ${NQN_MAX} bytes)`);
  }
  return [...new Set(hosts as string[])];
}

function checkSize(size: unknown, what = 'size'): number {
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0) throw new CatalogError(400, `${what} must be a positive integer number of bytes`);
  if (size % 4096 !== 0) throw new CatalogError(400, `${what} ${size} is not a multiple of 4096 bytes`);
  if (size > MAX_VOLUME_BYTES) throw new CatalogError(400, `${what} ${size} exceeds the largest volume (${MAX_VOLUME_BYTES} bytes)`);
  return size;
}

function checkExtent(bytes: unknown): number {
  if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < 4096 || bytes > 1 << 20 || (bytes & (bytes - 1)) !== 0) {
    throw new CatalogError(400, `extentBytes ${String(bytes)} must be a power of two from 4096 to ${1 << 20} bytes`);
  }
  return bytes;
}

function checkName(name: unknown, what: string): string {
  const p = nameProblem(name, what);
  if (p) throw new CatalogError(400, p);
  return name as string;
}

function checkIfMatch(ifMatch: number | undefined, current: number, what: string): void {
  if (ifMatch !== undefined && ifMatch !== current) throw new CatalogError(412, `${what} is at version ${current}, not ${ifMatch} (If-Match): re-read it and retry`);
}

/** See the module comment. */
export class VolumeCatalog {
  constructor(private readonly opts: VolumeCatalogOptions) {}

  /** The record of volume `name` with its version, or null. @throws CatalogUnavailableError. */
  async find(name: string): Promise<Versioned<VolumeRecord> | null> {
    const r = await this.opts.store.get(volumeKey(name));
    if (!r || r.body === null) return null;
    return { version: r.version, record: VolumeRecordSchema.parse(r.body) };
  }

  /** Volume `name`. @throws CatalogError 404 when there is none. */
  async get(name: string): Promise<Versioned<VolumeRecord>> {
    checkName(name, 'volume name');
    const v = await this.find(name);
    if (!v) throw new CatalogError(404, `no volume named '${name}'`);
    return v;
  }

  /**
   * Every volume, by name (the index shards, then each record in parallel). Volumes being
   * deleted are included with state 'deleting'.
   */
  async list(): Promise<Array<Versioned<VolumeRecord>>> {
    const shards = await Promise.all(Array.from({ length: INDEX_SHARDS }, (_, i) => this.opts.store.get(indexKey(i))));
    const names: string[] = [];
    for (const s of shards) if (s?.body) names.push(...Object.keys(IndexShardSchema.parse(s.body).volumes));
    names.sort();
    const found = await pMap(names, (n) => this.find(n), { concurrency: 32 });
    return found.filter((v): v is Versioned<VolumeRecord> => v !== null);
  }

  /**
   * Creates volume `name` (idempotent: the same name, size, pool, extent size and
   * provisioning returns the existing one with created=false).
   * @throws CatalogError 400 (bad name, size, extent size or pool), 409 (the name exists with other
   *         properties, or is being deleted), 507 (a thick volume the cluster cannot hold).
   */
  async create(c: CreateVolume): Promise<Versioned<VolumeRecord> & { created: boolean }> {
    const name = checkName(c.name, 'volume name');
    const sizeBytes = checkSize(c.sizeBytes);
    const pool = c.pool ?? 0;
    if (!this.opts.pools().some((p) => p.id === pool)) throw new CatalogError(400, `pool ${pool} does not exist (pools: ${this.opts.pools().map((p) => `${p.id} ${p.name}`).join(', ')})`);
    const thin = c.thin ?? true;
    const extentBytes = checkExtent(c.extentBytes ?? DEFAULT_EXTENT_BYTES);
    const allowHosts = checkHosts(c.allowHosts ?? []);
    const existing = await this.opts.store.get(volumeKey(name));
    const same = (r: VolumeRecord): boolean => r.sizeBytes === sizeBytes && r.pool === pool && r.thin === thin && r.extentBytes === extentBytes && r.state === 'ready' && r.parent === null;
    if (existing?.body) {
      const r = VolumeRecordSchema.parse(existing.body);
      if (same(r)) return { version: existing.version, record: r, created: false };
      throw new CatalogError(409, `volume '${name}' already exists (${r.sizeBytes} bytes, pool ${r.pool}, ${r.thin ? 'thin' : 'thick'}, ${r.extentBytes}-byte extents${r.state === 'deleting' ? ', being deleted' : ''})`);
    }
    if (!thin) await this.checkThick(sizeBytes, pool, null);
    const id = c.id ?? (await this.nextId());
    if (c.id !== undefined) await this.bumpCounter(c.id + 1);
    const record: VolumeRecord = {
      kind: 'volume', name, id, sizeBytes, pool, extentBytes, thin, createdAt: new Date().toISOString(), state: 'ready', snapshots: [], parent: null,
      allowHosts, attachment: null,
    };
    return this.insert(record, existing?.version ?? 0, same);
  }

  /** Writes a new volume record at `expected` and lists it in the index. */
  private async insert(record: VolumeRecord, expected: number, same: (r: VolumeRecord) => boolean): Promise<Versioned<VolumeRecord> & { created: boolean }> {
    let version: number;
    try {
      version = await this.opts.store.put(volumeKey(record.name), expected, record);
    } catch (e) {
      if (!(e instanceof CatalogConflictError)) throw e;
      // Someone created it meanwhile: same properties -> idempotent, else a conflict.
      const now = e.current?.body ? VolumeRecordSchema.parse(e.current.body) : null;
      if (now && same(now)) return { version: e.current!.version, record: now, created: false };
      throw new CatalogError(409, `volume '${record.name}' was created concurrently with other properties`);
    }
    await this.indexAdd(record.name, record.id);
    return { version, record, created: true };
  }

  /**
   * Resizes volume `name` to `sizeBytes`. Growing is online; shrinking is refused unless
   * `allowShrink` (data beyond the new end is lost).
   * @throws CatalogError 400, 404, 409 (shrink without allowShrink, a volume being deleted),
   *         412 (If-Match mismatch), 507 (thick growth the cluster cannot hold).
   */
  async resize(name: string, size: number, o: { allowShrink?: boolean; ifMatch?: number } = {}): Promise<Versioned<VolumeRecord>> {
    const sizeBytes = checkSize(size);
    const cur = await this.get(name);
    checkIfMatch(o.ifMatch, cur.version, `volume '${name}'`);
    this.ready(cur.record);
    if (sizeBytes < cur.record.sizeBytes && !o.allowShrink) {
      throw new CatalogError(409, `shrinking volume '${name}' from ${cur.record.sizeBytes} to ${sizeBytes} bytes loses the data past the new end; pass allowShrink (--allow-shrink) to do it`);
    }
    if (!cur.record.thin && sizeBytes > cur.record.sizeBytes) await this.checkThick(sizeBytes - cur.record.sizeBytes, cur.record.pool, name);
    const record = { ...cur.record, sizeBytes };
    return { version: await this.cas(volumeKey(name), cur.version, record, `volume '${name}'`), record };
  }

  /**
   * Sets the host NQNs allowed to attach volume `name` over NVMe/TCP (empty: any host).
   * @throws CatalogError 400 (not NQNs), 404, 409, 412.
   */
  async setAllowHosts(name: string, hosts: string[], o: { ifMatch?: number } = {}): Promise<Versioned<VolumeRecord>> {
    const allowHosts = checkHosts(hosts);
    const cur = await this.get(name);
    checkIfMatch(o.ifMatch, cur.version, `volume '${name}'`);
    this.ready(cur.record);
    const record = { ...cur.record, allowHosts };
    return { version: await this.cas(volumeKey(name), cur.version, record, `volume '${name}'`), record };
  }

  /**
   * Notes who attached volume `name` (the holder of write-lease `generation`). An older
   * generation than the one noted is ignored.
   * @throws CatalogError 404.
   */
  async noteAttachment(name: string, holder: string, generation: number): Promise<VolumeRecord> {
    const r = await this.opts.store.update<VolumeRecord>(volumeKey(name), (c) => {
      if (!c.body) throw new CatalogError(404, `no volume named '${name}'`);
      const cur = VolumeRecordSchema.parse(c.body);
      if ((cur.attachment?.generation ?? 0) >= generation) return undefined;
      return { ...cur, attachment: { holder: holder.slice(0, 200), generation, at: new Date().toISOString() } };
    });
    return VolumeRecordSchema.parse(r.body);
  }

  /**
   * Renames volume `name` to `newName` (its id, data and snapshots stay).
   * @throws CatalogError 400, 404, 409 (newName exists), 412.
   */
  async rename(name: string, newName: string, o: { ifMatch?: number } = {}): Promise<Versioned<VolumeRecord>> {
    checkName(newName, 'new volume name');
    const cur = await this.get(name);
    checkIfMatch(o.ifMatch, cur.version, `volume '${name}'`);
    this.ready(cur.record);
    if (newName === name) return cur;
    const target = await this.opts.store.get(volumeKey(newName));
    if (target?.body) throw new CatalogError(409, `volume '${newName}' already exists`);
    const record = { ...cur.record, name: newName };
    const version = await this.cas(volumeKey(newName), target?.version ?? 0, record, `volume '${newName}'`);
    await this.indexAdd(newName, record.id);
    await this.cas(volumeKey(name), cur.version, null, `volume '${name}'`);
    await this.indexRemove(name);
    for (const s of cur.record.snapshots) {
      await this.opts.store.update<SnapshotRecord>(snapshotKey(record.id, s), (c) => (c.body ? { ...c.body, volume: newName } : undefined));
    }
    return { version, record };
  }

  /**
   * Deletes volume `name` as a background job: marks it 'deleting' (no longer served),
   * trims every extent on every member, then removes the record. A second delete while
   * the job runs returns the same job.
   * @throws CatalogError 404, 409 (it has snapshots), 412.
   */
  async delete(name: string, o: { ifMatch?: number } = {}): Promise<Job> {
    const cur = await this.get(name);
    checkIfMatch(o.ifMatch, cur.version, `volume '${name}'`);
    const running = this.opts.jobs.running('delete', name);
    if (running) return running;
    if (cur.record.snapshots.length > 0) {
      throw new CatalogError(409, `volume '${name}' has snapshots (${cur.record.snapshots.join(', ')}): delete them first`);
    }
    let record = cur.record;
    if (record.state !== 'deleting') {
      record = { ...record, state: 'deleting' };
      await this.cas(volumeKey(name), cur.version, record, `volume '${name}'`);
    }
    return this.opts.jobs.start('delete', name, (progress) => this.finishDelete(record, progress));
  }

  /** Restarts the delete job of every volume left 'deleting' (after an authority restart). */
  async resumeDeletes(): Promise<Job[]> {
    const out: Job[] = [];
    for (const v of await this.list()) {
      if (v.record.state === 'deleting' && !this.opts.jobs.running('delete', v.record.name)) {
        out.push(this.opts.jobs.start('delete', v.record.name, (p) => this.finishDelete(v.record, p)));
      }
    }
    return out;
  }

  private async finishDelete(record: VolumeRecord, progress: (done: number, total: number) => void): Promise<void> {
    await this.opts.data.trimAll(record, progress);
    const now = await this.find(record.name);
    if (now && now.record.id === record.id) await this.opts.store.put(volumeKey(record.name), now.version, null);
    await this.indexRemove(record.name);
    if (record.parent) await this.dropClone(record.parent.volumeId, record.parent.snapshot, record.name);
  }

  // ---- snapshots ---------------------------------------------------------------------

  /** Snapshot `snap` of volume `volume`, or null. */
  async findSnapshot(volumeId: number, snap: string): Promise<Versioned<SnapshotRecord> | null> {
    const r = await this.opts.store.get(snapshotKey(volumeId, snap));
    if (!r || r.body === null) return null;
    return { version: r.version, record: SnapshotRecordSchema.parse(r.body) };
  }

  /** Snapshot `snap` of volume `volume`. @throws CatalogError 404. */
  async getSnapshot(volume: string, snap: string): Promise<{ volume: VolumeRecord; snapshot: Versioned<SnapshotRecord> }> {
    checkName(snap, 'snapshot name');
    const v = await this.get(volume);
    const s = await this.findSnapshot(v.record.id, snap);
    if (!s) throw new CatalogError(404, `volume '${volume}' has no snapshot '${snap}'`);
    return { volume: v.record, snapshot: s };
  }

  /** The snapshots of volume `volume`, oldest first. @throws CatalogError 404. */
  async listSnapshots(volume: string): Promise<SnapshotRecord[]> {
    const v = await this.get(volume);
    const all = await pMap(v.record.snapshots, (s) => this.findSnapshot(v.record.id, s), { concurrency: 16 });
    return all.filter((s): s is Versioned<SnapshotRecord> => s !== null).map((s) => s.record);
  }

  /**
   * Takes snapshot `snap` of volume `volume`: instant and crash-consistent (a writer change
   * and a pin on every node; no data is copied). Idempotent for an existing name.
   * @throws CatalogError 400, 404, 409 (volume being deleted); Error when the pin failed.
   */
  async createSnapshot(volume: string, snap: string): Promise<{ created: boolean; snapshot: SnapshotRecord }> {
    checkName(snap, 'snapshot name');
    const v = await this.get(volume);
    this.ready(v.record);
    const existing = await this.opts.store.get(snapshotKey(v.record.id, snap));
    if (existing?.body) return { created: false, snapshot: SnapshotRecordSchema.parse(existing.body) };
    const { version } = await this.opts.data.snapshot(v.record);
    const snapshot: SnapshotRecord = { kind: 'snapshot', volume: v.record.name, volumeId: v.record.id, name: snap, version, sizeBytes: v.record.sizeBytes, createdAt: new Date().toISOString(), clones: [] };
    // The snapshot's record and its name in the volume's record are written at once; if either
    // fails, both are undone and the pins released.
    const [rec, listed] = await Promise.allSettled([
      this.opts.store.put(snapshotKey(v.record.id, snap), existing?.version ?? 0, snapshot),
      this.opts.store.update<VolumeRecord>(volumeKey(v.record.name), (c) => (c.body && c.body.id === v.record.id && !c.body.snapshots.includes(snap) ? { ...c.body, snapshots: [...c.body.snapshots, snap] } : undefined)),
    ]);
    if (rec.status === 'rejected' || listed.status === 'rejected') {
      if (rec.status === 'fulfilled') await this.opts.store.put(snapshotKey(v.record.id, snap), rec.value, null).catch(() => undefined);
      if (listed.status === 'fulfilled') await this.opts.store.update<VolumeRecord>(volumeKey(v.record.name), (c) => (c.body?.snapshots.includes(snap) ? { ...c.body, snapshots: c.body.snapshots.filter((x) => x !== snap) } : undefined)).catch(() => undefined);
      await this.opts.data.unpin(v.record.id, version);
      const e = rec.status === 'rejected' ? rec.reason : (listed as PromiseRejectedResult).reason;
      if (e instanceof CatalogConflictError) throw new CatalogError(409, `snapshot '${snap}' of '${volume}' was created concurrently`);
      throw e;
    }
    return { created: true, snapshot };
  }

  /**
   * Deletes snapshot `snap` of `volume`: releases its pins (old versions become garbage for
   * the cleaners) and removes the record.
   * @throws CatalogError 404, 409 (it has clones that are not flattened).
   */
  async deleteSnapshot(volume: string, snap: string): Promise<void> {
    const { volume: v, snapshot: s } = await this.getSnapshot(volume, snap);
    if (s.record.clones.length > 0) {
      throw new CatalogError(409, `snapshot '${volume}@${snap}' has clones (${s.record.clones.join(', ')}): flatten or delete them first`);
    }
    const failed = await this.opts.data.unpin(v.id, s.record.version);
    if (failed.length > 0) throw new CatalogError(503, `could not release snapshot pins on ${failed.map((f) => `node ${f.node} (${f.error})`).join(', ')}; retry`);
    await this.cas(snapshotKey(v.id, snap), s.version, null, `snapshot '${volume}@${snap}'`);
    await this.opts.store.update<VolumeRecord>(volumeKey(v.name), (c) => (c.body && c.body.id === v.id && c.body.snapshots.includes(snap) ? { ...c.body, snapshots: c.body.snapshots.filter((x) => x !== snap) } : undefined));
  }

  // ---- clones, flatten, rollback -------------------------------------------------------

  /**
   * Creates volume `name` as a writable copy-on-write clone of snapshot `snap` of `volume`:
   * reads of extents it has not written come from the snapshot until it is flattened.
   * Idempotent for the same source.
   * @throws CatalogError 400, 404, 409 (the name exists otherwise).
   */
  async clone(volume: string, snap: string, name: string): Promise<Versioned<VolumeRecord> & { created: boolean }> {
    checkName(name, 'clone name');
    const { volume: parent, snapshot: s } = await this.getSnapshot(volume, snap);
    const existing = await this.opts.store.get(volumeKey(name));
    const same = (r: VolumeRecord): boolean => r.parent?.volumeId === parent.id && r.parent.snapshot === snap;
    if (existing?.body) {
      const r = VolumeRecordSchema.parse(existing.body);
      if (same(r)) return { version: existing.version, record: r, created: false };
      throw new CatalogError(409, `volume '${name}' already exists`);
    }
    if (!parent.thin) await this.checkThick(s.record.sizeBytes, parent.pool, null);
    const record: VolumeRecord = {
      kind: 'volume', name, id: await this.nextId(), sizeBytes: s.record.sizeBytes, pool: parent.pool, extentBytes: parent.extentBytes, thin: parent.thin,
      createdAt: new Date().toISOString(), state: 'ready', snapshots: [], allowHosts: parent.allowHosts, attachment: null,
      parent: { volume: parent.name, volumeId: parent.id, snapshot: snap, version: s.record.version, sizeBytes: s.record.sizeBytes },
    };
    // List the clone on the snapshot first: a snapshot is never deleted under a clone.
    await this.opts.store.update<SnapshotRecord>(snapshotKey(parent.id, snap), (c) => {
      if (!c.body) throw new CatalogError(404, `snapshot '${volume}@${snap}' was deleted meanwhile`);
      return c.body.clones.includes(name) ? undefined : { ...c.body, clones: [...c.body.clones, name] };
    });
    return this.insert(record, existing?.version ?? 0, same);
  }

  /**
   * Flattens clone `name` as a background job: copies every extent it has not written from
   * its parent snapshot, then drops the parent (the snapshot may be deleted afterwards).
   * @throws CatalogError 404, 409 (not a clone).
   */
  async flatten(name: string): Promise<Job> {
    const cur = await this.get(name);
    this.ready(cur.record);
    const parent = cur.record.parent;
    if (!parent) throw new CatalogError(409, `volume '${name}' is not a clone (nothing to flatten)`);
    const running = this.opts.jobs.running('flatten', name);
    if (running) return running;
    return this.opts.jobs.start('flatten', name, async (progress) => {
      await this.opts.data.flatten(cur.record, progress);
      await this.opts.store.update<VolumeRecord>(volumeKey(name), (c) => (c.body && c.body.id === cur.record.id ? { ...c.body, parent: null } : undefined));
      await this.dropClone(parent.volumeId, parent.snapshot, name);
    });
  }

  /**
   * Rolls volume `name` back to its snapshot `snap` as a background job (the volume's
   * writer is fenced while it runs and resumes afterwards).
   * @throws CatalogError 404, 409.
   */
  async rollback(name: string, snap: string): Promise<Job> {
    const { volume: v, snapshot: s } = await this.getSnapshot(name, snap);
    this.ready(v);
    const running = this.opts.jobs.running('rollback', name);
    if (running) return running;
    return this.opts.jobs.start('rollback', name, (progress) => this.opts.data.rollback(v, s.record, progress));
  }

  private async dropClone(parentId: number, snap: string, clone: string): Promise<void> {
    await this.opts.store.update<SnapshotRecord>(snapshotKey(parentId, snap), (c) => (c.body && c.body.clones.includes(clone) ? { ...c.body, clones: c.body.clones.filter((x) => x !== clone) } : undefined));
  }

  // ---- helpers ---------------------------------------------------------------------------

  private ready(r: VolumeRecord): void {
    if (r.state !== 'ready') throw new CatalogError(409, `volume '${r.name}' is being deleted`);
  }

  private async cas(key: string, expected: number, body: unknown, what: string): Promise<number> {
    try {
      return await this.opts.store.put(key, expected, body);
    } catch (e) {
      if (e instanceof CatalogConflictError) throw new CatalogError(412, `${what} changed meanwhile (now version ${e.current?.version ?? 0}); re-read it and retry`);
      throw e;
    }
  }

  private async nextId(): Promise<number> {
    const id = (await this.updateCounter((next) => next + 1)) - 1;
    if (id > 0x1fffff) throw new CatalogError(507, 'volume ids are used up');
    return id;
  }

  /** Makes the id counter hand out nothing below `atLeast` (an absent counter is written). */
  private async bumpCounter(atLeast: number): Promise<void> {
    await this.updateCounter((next, stored) => (stored && next >= atLeast ? undefined : Math.max(next, atLeast)));
  }

  /**
   * Applies `step` to the id counter's next value (undefined: leave it) and returns the value
   * it then holds. An absent counter starts at startId().
   */
  private async updateCounter(step: (next: number, stored: boolean) => number | undefined): Promise<number> {
    let start: number | null = null;
    for (;;) {
      let needStart = false;
      const r = await this.opts.store.update<{ kind: 'counter'; next: number }>(VOLUME_ID_COUNTER, (c) => {
        if (!c.body && start === null) {
          needStart = true;
          return undefined;
        }
        const n = step(c.body ? CounterSchema.parse(c.body).next : start!, !!c.body);
        return n === undefined ? undefined : { kind: 'counter', next: n };
      });
      if (!needStart) return r.body ? CounterSchema.parse(r.body).next : start!;
      start = await this.startId();
    }
  }

  /**
   * Where an absent id counter starts: at firstId (which depends on what cluster.json lists,
   * and cluster.json stops listing volumes once they moved into the catalog), and past every
   * id the index holds (volumes migrated before the counter was written).
   */
  private async startId(): Promise<number> {
    const shards = await Promise.all(Array.from({ length: INDEX_SHARDS }, (_, i) => this.opts.store.get(indexKey(i))));
    let max = 0;
    for (const s of shards) if (s?.body) for (const id of Object.values(IndexShardSchema.parse(s.body).volumes)) max = Math.max(max, id);
    return Math.max(this.opts.firstId ?? 2, max + 1);
  }

  private async indexAdd(name: string, id: number): Promise<void> {
    await this.opts.store.update<IndexShard>(indexKeyOf(name), (c) => {
      const vols = c.body ? IndexShardSchema.parse(c.body).volumes : {};
      return vols[name] === id ? undefined : { kind: 'index', volumes: { ...vols, [name]: id } };
    });
  }

  private async indexRemove(name: string): Promise<void> {
    await this.opts.store.update<IndexShard>(indexKeyOf(name), (c) => {
      if (!c.body || !(name in c.body.volumes)) return undefined;
      const vols = { ...c.body.volumes };
      delete vols[name];
      return { kind: 'index', volumes: vols };
    });
  }

  /**
   * A thick volume (or growth by `bytes`) must fit: the pool's usable capacity (raw ÷
   * replicas) minus what thick volumes already reserve and what is stored.
   * @throws CatalogError 507 naming the shortfall.
   */
  private async checkThick(bytes: number, poolId: number, except: string | null): Promise<void> {
    const pool = this.opts.pools().find((p) => p.id === poolId)!;
    const { rawBytes, usedBytes } = this.opts.capacity();
    const usable = Math.floor(rawBytes / pool.replicas);
    let reserved = 0;
    for (const v of await this.list()) if (!v.record.thin && v.record.name !== except) reserved += v.record.sizeBytes;
    const stored = Math.ceil(usedBytes / pool.replicas);
    const free = usable - Math.max(reserved, stored);
    if (bytes > free) {
      throw new CatalogError(507, `the cluster cannot hold ${bytes} more thick bytes: ${usable} usable (${rawBytes} raw ÷ ${pool.replicas} replicas), ${reserved} reserved by thick volumes, ${Math.max(0, free)} free`);
    }
  }
}
