/**
 * Serving a VolumeSet over both frontends: every volume of the catalog is an NBD export
 * (its snapshots too, as read-only `VOL@SNAP`), listed by NBD_OPT_LIST and found without a
 * restart; and an NVMe/TCP subsystem (nqn.2024-01.io.cairn:<cluster>:<volume>, namespace 1)
 * on the target's ports, with the same ANA states and the volume's host allow-list (the
 * record's, else the gateway's; a host refused by the list held is checked against the record
 * first, so a host just added connects at once), created and removed as the catalog changes. A volume's lease is taken on its first I/O (LazyDevice). An online resize raises a
 * Namespace Attribute Changed notice on its subsystem (NVMe Base spec 5.2, Asynchronous Event
 * Information – Notice 00h); NBD clients see the new size when they reconnect.
 */
import type { NbdExportProvider, NbdServer } from '../nbd/index.ts';
import { volumeNqn, type AnaState, type NvmfTarget } from '../nvmf/index.ts';
import type { ClusterMap } from '../clustermap/index.ts';
import type { PoolConfig } from '../config/index.ts';
import { ClusterSpace } from './cluster-space.ts';
import { LazyDevice } from './lazy-device.ts';
import type { CatalogVolume, VolumeSet } from './volume-set.ts';
import type { VolumeIoMetrics } from '../metrics/index.ts';

/**
 * The NBD export provider of a VolumeSet. `defaultName` answers the empty export name (else
 * the first volume by name); with `metrics`, every export's device is metered as frontend `nbd`.
 */
export function nbdExports(set: VolumeSet, describe: (v: CatalogVolume) => string, defaultName?: string, metrics?: VolumeIoMetrics): NbdExportProvider {
  return {
    async list() {
      const vols = await set.list().catch(() => set.known());
      return vols.flatMap((v) => [
        { name: v.name, description: describe(v) },
        ...v.snapshots.map((s) => ({ name: `${v.name}@${s}`, description: `snapshot ${s} of ${v.name} (read-only)` })),
      ]);
    },
    async open(name) {
      if (name === '' && defaultName) name = defaultName;
      if (name === '') {
        const first = (await set.list().catch(() => set.known()))[0];
        if (!first) return undefined;
        name = first.name;
      }
      const a = await set.open(name);
      if (!a) return undefined;
      const device = metrics ? metrics.meter(a.device, name, 'nbd') : a.device;
      return { name, description: a.device.readOnly ? `snapshot ${name} (read-only)` : describe(a.record), device };
    },
  };
}

/** Options of NvmfVolumes. */
export interface NvmfVolumesOptions {
  target: NvmfTarget;
  set: VolumeSet;
  clusterId: string;
  token: string;
  map: () => ClusterMap;
  pools: PoolConfig[];
  /** Allowed host NQNs of volumes whose record names none (default 'any'). */
  allowHosts?: string[] | 'any';
  /** ANA state per local port id. */
  anaStates: Record<number, AnaState>;
  /** Per-volume request figures (src/metrics): each namespace's device is metered as frontend `nvmf`. */
  metrics?: VolumeIoMetrics;
}

/** Keeps one NVMe/TCP subsystem per catalog volume; see the module comment. */
export class NvmfVolumes {
  private readonly subsystems = new Map<string, { nqn: string; id: number; sizeBytes: number }>();

  constructor(private readonly o: NvmfVolumesOptions) {}

  /** Creates subsystems for new volumes and removes those of volumes gone; returns the NQNs served. */
  sync(vols: CatalogVolume[]): string[] {
    const ids = new Map(vols.map((v) => [v.name, v.id]));
    for (const [name, s] of this.subsystems) {
      // Gone, or another volume under the same name (deleted and created again, or renamed
      // away and another renamed in): the old subsystem (its device, its hosts) ends.
      if (ids.get(name) !== s.id) {
        this.o.target.removeSubsystem(s.nqn);
        this.subsystems.delete(name);
        this.o.metrics?.forget(name);
      }
    }
    for (const v of vols) {
      const known = this.subsystems.get(v.name);
      const allow = v.allowHosts?.length ? v.allowHosts : this.o.allowHosts ?? 'any';
      if (known) {
        if (known.sizeBytes !== v.sizeBytes) this.resized(v.name, v.sizeBytes);
        this.o.target.subsystem(known.nqn)?.setAllowHosts(allow);
        continue;
      }
      const nqn = volumeNqn(this.o.clusterId, v.name);
      const replicas = this.o.pools.find((p) => p.id === v.pool)?.replicas ?? 1;
      const space = new ClusterSpace(this.o.map, this.o.token, v.id, replicas);
      const entry = { nqn, id: v.id, sizeBytes: v.sizeBytes };
      const device = new LazyDevice(v.name, async () => {
        const a = await this.o.set.open(v.name);
        if (!a) throw new Error(`volume ${v.name} is gone`);
        return a.device;
      }, () => entry.sizeBytes);
      const fallback = this.o.allowHosts ?? 'any';
      this.o.target.addSubsystem({
        nqn,
        allowHosts: allow,
        // A host added to the record (a Cinder initialize_connection, `cairn volume hosts`) may
        // connect before the next catalog refresh: a refused Connect reads the record first.
        recheckHosts: async () => {
          const r = await this.o.set.api.call<{ id: number; allowHosts?: string[] }>('GET', `/v1/volumes/${encodeURIComponent(v.name)}`);
          if (r.id !== v.id) return undefined;
          return r.allowHosts?.length ? r.allowHosts : fallback;
        },
        model: `Cairn volume ${v.name}`.slice(0, 40),
        namespaces: [{ nsid: 1, device: this.o.metrics ? this.o.metrics.meter(device, v.name, 'nvmf') : device, health: () => space.health(), usage: () => space.allocatedBytes() }],
        anaStates: this.o.anaStates,
      });
      this.subsystems.set(v.name, entry);
    }
    return [...this.subsystems.values()].map((s) => s.nqn);
  }

  /** Volume `name` now has `bytes`: hosts get a Namespace Attribute Changed notice. */
  resized(name: string, bytes: number): void {
    const s = this.subsystems.get(name);
    if (!s || s.sizeBytes === bytes) return;
    s.sizeBytes = bytes;
    this.o.target.notifyNamespaceChanged(s.nqn, 1);
  }
}

