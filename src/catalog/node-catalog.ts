/**
 * The catalog as a storage node runs it: a CatalogStore over the node's own gossiped map
 * (placement) and its own connections to the other nodes, the VolumeCatalog on top, and —
 * on the node that runs the map authority — the jobs, the snapshot lease coordination, the
 * migration of cluster.json's volumes into the catalog and the restart of unfinished deletes.
 */
import type { ClusterMap } from '../clustermap/index.ts';
import type { ClusterConfig } from '../config/index.ts';
import { ClusterView, type ViewSource } from '../initiator/index.ts';
import { ConnectionPool } from '../wire/index.ts';
import { JobTracker } from './jobs.ts';
import { volumeKey } from './keys.ts';
import { LeaseCoordinator } from './lease-coordinator.ts';
import { VolumeDataOps } from './data-ops.ts';
import { CatalogStore } from './store.ts';
import { VolumeCatalog } from './volumes.ts';

/** What the node gives its catalog. */
export interface NodeCatalogOptions {
  config: ClusterConfig;
  /** The node's current map. */
  map: () => ClusterMap;
  /** Fetches a map of at least `epoch` (resolves false when none came in time). */
  fetchMap: (epoch: number) => Promise<boolean>;
  /** The authority, when this node runs it: the catalog's changes run here. */
  authority?: { acquireLease(volume: number): Promise<number>; leases(): Record<number, number> };
  /** The mutator's term (CatalogStoreOptions.term; default 1). */
  term?: number;
  /** Raw capacity and use of the cluster, bytes (heartbeats). */
  capacity: () => { rawBytes: number; usedBytes: number };
  log: { info(o: object, m: string): void; warn(o: object, m: string): void };
}

/** A node's catalog and, on the mutator, its helpers. */
export interface NodeCatalog {
  catalog: VolumeCatalog;
  jobs: JobTracker;
  leases?: LeaseCoordinator;
  /** True when this node runs the catalog's changes. */
  mutator: boolean;
  close(): void;
}

/** A ViewSource over a node's map, one ClusterView per epoch. */
export function nodeViews(config: ClusterConfig, map: () => ClusterMap, fetchMap: (epoch: number) => Promise<boolean>): ViewSource {
  let cached: ClusterView | null = null;
  const current = (): ClusterView => {
    const m = map();
    if (!cached || cached.map !== m) cached = new ClusterView(m, config.pools);
    return cached;
  };
  return {
    get current() {
      return current();
    },
    async refresh(epoch: number) {
      if (current().epoch < epoch) await fetchMap(epoch);
      return current();
    },
  };
}

/** Starts a node's catalog; see the module comment. */
export function startNodeCatalog(o: NodeCatalogOptions): NodeCatalog {
  const views = nodeViews(o.config, o.map, o.fetchMap);
  const connections = new ConnectionPool({
    token: o.config.token,
    address: (id) => {
      const n = o.map().nodes.find((x) => x.id === id);
      return n ? { host: n.host, port: n.port } : undefined;
    },
  });
  const store = new CatalogStore({ views, connections, mutator: !!o.authority, term: o.term });
  const jobs = new JobTracker();
  const a = o.authority;
  const leases = a ? new LeaseCoordinator({ acquire: (v) => a.acquireLease(v), last: (v) => a.leases()[v] ?? 0 }) : undefined;
  const data = leases ? new VolumeDataOps({ views, connections, leases, log: o.log }) : null;
  const refuse = (): never => {
    throw new Error('volume data operations run on the map authority node');
  };
  const catalog = new VolumeCatalog({
    store,
    pools: () => o.config.pools,
    // Ids start after cluster.json's volumes (migrated below with their ids); a data directory
    // made since volumes left cluster.json gives its first volume id 1.
    firstId: Math.max(0, ...o.config.volumes.map((v) => v.id)) + 1,
    capacity: o.capacity,
    jobs,
    data: data ?? { trimAll: refuse, snapshot: refuse, unpin: refuse, flatten: refuse, rollback: refuse },
  });
  let closed = false;
  if (a) void migrate();
  async function migrate(): Promise<void> {
    // cluster.json's volumes (data directories made before the catalog) move into it once:
    // a record that was ever written (a tombstone included) is left alone.
    for (let attempt = 0; !closed; attempt++) {
      try {
        for (const v of o.config.volumes) {
          if ((await store.get(volumeKey(v.name))) !== null) continue;
          await catalog.create({ name: v.name, sizeBytes: v.sizeBytes, pool: v.pool, thin: v.thin, extentBytes: v.extentBytes, id: v.id });
          o.log.info({ volume: v.name, id: v.id }, 'volume from cluster.json moved into the catalog');
        }
        const resumed = await catalog.resumeDeletes();
        if (resumed.length) o.log.info({ volumes: resumed.map((j) => j.target) }, 'unfinished volume deletes restarted');
        return;
      } catch (e) {
        if (attempt % 10 === 0) o.log.warn({ err: (e as Error).message }, 'catalog not ready yet (migration of cluster.json volumes); retrying');
        await new Promise((r) => setTimeout(r, 1000).unref());
      }
    }
  }
  return {
    catalog,
    jobs,
    leases,
    mutator: !!a,
    close() {
      closed = true;
      store.close();
      connections.close();
    },
  };
}
