/**
 * The layout of a new local cluster and `cairn up`'s defaults. Kept free of imports with
 * side effects so the CLI can read the defaults without loading the cluster machinery.
 */
import type { Membership } from '../config/schema.ts';

/** Layout of a new local cluster. Sizes in bytes. */
export interface ClusterLayout {
  nodes: number;
  devicesPerNode: number;
  deviceBytes: number;
  partitionsPerDevice: number;
  replicas: number;
  /** Fewest acting copies that may acknowledge a write (default: size − ⌊size/2⌋, as Ceph). */
  minSize?: number;
  /**
   * Name and size of the volume created with the cluster, in the catalog, by
   * LocalCluster.start (none when volumeBytes is 0).
   */
  volumeName: string;
  volumeBytes: number;
  /** Extent size in bytes of that volume (power of two, 4 KiB..1 MiB). */
  extentBytes: number;
  /** Host the nodes listen on. */
  host: string;
  /**
   * First node port; 0 picks free ports. With N nodes, node i listens on basePort + i (data
   * path), basePort + N + i (gossip) and basePort + 2N + i (management API).
   */
  basePort: number;
  /** Membership timing written to cluster.json (defaults: DEFAULT_MEMBERSHIP). */
  membership?: Partial<Membership>;
}

/** Defaults of `cairn up`: 3 nodes × 2 devices of 4 GiB (sparse), a 1 GiB 3-replica thin volume. */
export const DEFAULT_LAYOUT: ClusterLayout = {
  nodes: 3,
  devicesPerNode: 2,
  deviceBytes: 4 * 2 ** 30,
  partitionsPerDevice: 4,
  replicas: 3,
  volumeName: 'vol0',
  volumeBytes: 2 ** 30,
  extentBytes: 2 ** 20,
  host: '127.0.0.1',
  basePort: 0,
};

