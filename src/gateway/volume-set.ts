/**
 * The volumes a gateway serves, by name, from the catalog: `NAME` attaches volume NAME
 * (its write lease: the authority's next generation; a snapshot's fence is resumed through
 * POST /v1/leases/:id/resume), a clone through its parent snapshot (ClonedVolume), and
 * `NAME@SNAP` is snapshot SNAP of NAME, read-only (SnapshotView). Attachments are shared by
 * every session and frontend of the gateway and kept until the volume goes away. A refresh
 * loop follows the catalog: a resize reaches the attached device (and `onResize`, which tells
 * NVMe hosts), a deleted or renamed volume is detached, a flattened clone stops reading its
 * parent.
 */
import { hostname } from 'node:os';
import type { ClusterMap } from '../clustermap/index.ts';
import { ClonedVolume, SnapshotView, Volume, takeWriteLease, type ViewSource, type VolumeLog } from '../initiator/index.ts';
import type { BlockDevice } from '../volume/index.ts';
import type { ConnectionPool } from '../wire/index.ts';
import { ApiPool } from './api-pool.ts';

/** A volume as GET /v1/volumes lists it (the fields a gateway uses). */
export interface CatalogVolume {
  name: string;
  id: number;
  sizeBytes: number;
  pool: number;
  extentBytes: number;
  thin: boolean;
  state: 'ready' | 'deleting';
  snapshots: string[];
  parent: { volume: string; volumeId: number; snapshot: string; version: number; sizeBytes: number } | null;
  /** Host NQNs allowed over NVMe/TCP; empty: any. */
  allowHosts?: string[];
}

/** A snapshot as the API returns it. */
interface CatalogSnapshot {
  volume: string;
  volumeId: number;
  name: string;
  version: number;
  sizeBytes: number;
}

/** An attached volume (or snapshot view) of the set. */
export interface Attached {
  name: string;
  record: CatalogVolume;
  device: BlockDevice;
  /** The Volume holding the lease (absent for a snapshot view). */
  volume?: Volume;
  clone?: ClonedVolume;
}

/** Options of a VolumeSet. */
export interface VolumeSetOptions {
  views: ViewSource;
  map: () => ClusterMap;
  connections: ConnectionPool;
  token: string;
  /** Bound on I/O waiting for members, ms. */
  ioTimeoutMs?: number;
  log?: VolumeLog;
  /** An attached volume's size changed (online resize). */
  onResize?: (name: string, bytes: number) => void;
  /** The catalog's volume list changed (created, deleted, renamed, resized). */
  onList?: (volumes: CatalogVolume[]) => void;
}

/** See the module comment. */
export class VolumeSet {
  readonly api: ApiPool;
  private readonly attached = new Map<string, Promise<Attached>>();
  private last: CatalogVolume[] = [];
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly o: VolumeSetOptions) {
    this.api = new ApiPool(o.map, o.token);
  }

  /** The catalog's volumes (ready ones), fetched now. @throws ApiError when no node answers. */
  async list(): Promise<CatalogVolume[]> {
    const r = await this.api.call<{ volumes: CatalogVolume[] }>('GET', '/v1/volumes');
    this.last = r.volumes.filter((v) => v.state === 'ready');
    return this.last;
  }

  /** The list as of the last fetch. */
  known(): CatalogVolume[] {
    return this.last;
  }

  /**
   * Volume `name` (or `VOL@SNAP`), attached once and shared. Resolves undefined when the
   * catalog has no such volume or snapshot.
   * @throws LeaseError / BlockDeviceError / ApiError when it cannot be attached.
   */
  async open(name: string): Promise<Attached | undefined> {
    let p = this.attached.get(name);
    if (!p) {
      p = this.attach(name);
      this.attached.set(name, p);
      p.catch(() => this.attached.delete(name));
    }
    try {
      return await p;
    } catch (e) {
      if ((e as Error).message === NOT_FOUND) return undefined;
      throw e;
    }
  }

  /** Names attached now. */
  attachedNames(): string[] {
    return [...this.attached.keys()];
  }

  private async attach(name: string): Promise<Attached> {
    const at = name.indexOf('@');
    const volName = at > 0 ? name.slice(0, at) : name;
    const rec = await this.fetch(volName);
    if (!rec || rec.state !== 'ready') throw new Error(NOT_FOUND);
    if (at > 0) {
      const snap = await this.api.call<CatalogSnapshot>('GET', `/v1/volumes/${encodeURIComponent(volName)}/snapshots/${encodeURIComponent(name.slice(at + 1))}`).catch(() => null);
      if (!snap) throw new Error(NOT_FOUND);
      return { name, record: rec, device: this.snapshotView({ ...rec, sizeBytes: snap.sizeBytes }, snap.version, name) };
    }
    const volume = new Volume({
      views: this.o.views,
      connections: this.o.connections,
      record: { id: rec.id, name: rec.name, sizeBytes: rec.sizeBytes, pool: rec.pool, extentBytes: rec.extentBytes, thin: rec.thin, lease: 0 },
      lease: 0,
      ioTimeoutMs: this.o.ioTimeoutMs,
      log: this.o.log,
      renewLease: async () => (await this.api.call<{ generation: number }>('POST', `/v1/volumes/${rec.id}/lease`)).generation,
      resumeLease: async (from) => {
        try {
          return (await this.api.call<{ generation: number }>('POST', `/v1/leases/${rec.id}/resume`, { generation: from })).generation;
        } catch {
          return null;
        }
      },
    });
    const gen = await takeWriteLease(volume, rec.id, this.o.views.current, this.o.token);
    // Shown by `cairn volume show` (best effort: an unreachable authority does not stop I/O).
    void this.api.call('POST', `/v1/volumes/${encodeURIComponent(rec.name)}/attachment`, { holder: `${hostname()} pid ${process.pid}`, generation: gen }).catch(() => undefined);
    if (!rec.parent) return { name, record: rec, device: volume, volume };
    const parent = this.snapshotView({ ...rec, id: rec.parent.volumeId, name: rec.parent.volume, sizeBytes: rec.parent.sizeBytes }, rec.parent.version, `${rec.parent.volume}@${rec.parent.snapshot}`);
    const clone = await ClonedVolume.open({ volume, parent, views: this.o.views, connections: this.o.connections, volumeId: rec.id, pool: rec.pool, extentBytes: rec.extentBytes });
    return { name, record: rec, device: clone, volume, clone };
  }

  private snapshotView(rec: CatalogVolume, version: number, name: string): SnapshotView {
    return new SnapshotView({
      views: this.o.views,
      connections: this.o.connections,
      record: { id: rec.id, name: rec.name, sizeBytes: rec.sizeBytes, pool: rec.pool, extentBytes: rec.extentBytes, thin: rec.thin, lease: 0 },
      version,
      name,
      ioTimeoutMs: this.o.ioTimeoutMs,
      log: this.o.log,
    });
  }

  private async fetch(name: string): Promise<CatalogVolume | null> {
    try {
      return await this.api.call<CatalogVolume>('GET', `/v1/volumes/${encodeURIComponent(name)}`);
    } catch (e) {
      if ((e as { status?: number }).status === 404) return null;
      throw e;
    }
  }

  /** Follows the catalog every `ms` milliseconds (see the module comment). */
  startRefresh(ms = 2000): void {
    // What onList last saw (not `last`: other callers of list() update that).
    let notified = '';
    const tick = async (): Promise<void> => {
      if (this.closed) return;
      try {
        const vols = await this.list();
        const now = JSON.stringify(vols);
        if (now !== notified) {
          notified = now;
          this.o.onList?.(vols);
        }
        await this.follow(vols);
      } catch {
        // the API may be briefly unreachable (a node restarting); try again next tick
      }
      if (!this.closed) this.timer = setTimeout(() => void tick(), ms).unref();
    };
    this.timer = setTimeout(() => void tick(), ms).unref();
  }

  private async follow(vols: CatalogVolume[]): Promise<void> {
    const byName = new Map(vols.map((v) => [v.name, v]));
    for (const [name, p] of [...this.attached]) {
      const a = await p.catch(() => null);
      if (!a) continue;
      const at = name.indexOf('@');
      const volName = at > 0 ? name.slice(0, at) : name;
      const now = byName.get(volName);
      if (!now || now.id !== a.record.id || (at > 0 && !now.snapshots.includes(name.slice(at + 1)))) {
        // Deleted or renamed (or the snapshot deleted): detach; sessions still holding it fail.
        this.attached.delete(name);
        a.volume?.close();
        continue;
      }
      if (at > 0) continue;
      if (a.volume && now.sizeBytes !== a.volume.size) {
        a.volume.setSize(now.sizeBytes);
        a.record = now;
        this.o.onResize?.(name, now.sizeBytes);
      }
      if (a.clone && !now.parent) a.clone.detachParent();
    }
  }

  /** Flushes and detaches everything (best effort) and stops the refresh loop. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const p of this.attached.values()) {
      const a = await p.catch(() => null);
      if (!a?.volume) continue;
      await a.device.flush().catch(() => undefined);
      a.volume.close();
    }
    this.attached.clear();
  }
}

const NOT_FOUND = 'no such volume or snapshot';
