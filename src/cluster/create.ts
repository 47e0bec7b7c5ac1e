/**
 * Creating a new cluster configuration: node ids and ports, device files, the topology
 * map (root -> host -> device -> partition), the default pool and volume.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { buildMap } from '../../placement/index.ts';
import type { ClusterConfig } from '../config/index.ts';

/** Layout of a new local cluster. Sizes in bytes. */
export interface ClusterLayout {
  nodes: number;
  devicesPerNode: number;
  deviceBytes: number;
  partitionsPerDevice: number;
  replicas: number;
  /** Name and size of the volume created with the cluster (none when volumeBytes is 0). */
  volumeName: string;
  volumeBytes: number;
  /** Extent size in bytes (power of two, 4 KiB..1 MiB). */
  extentBytes: number;
  /** Host the nodes listen on. */
  host: string;
  /** First node port; 0 picks free ports. */
  basePort: number;
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

/** Thrown for a layout that cannot work (e.g. more replicas than nodes). */
export class LayoutError extends Error {
  override name = 'LayoutError';
}

/** Asks the OS for `n` distinct free TCP ports on `host`. */
export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, host, () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/**
 * Builds a new cluster configuration for `layout`.
 * @throws LayoutError when the layout is inconsistent.
 */
export async function createClusterConfig(layout: ClusterLayout): Promise<ClusterConfig> {
  const l = layout;
  if (l.nodes < 1) throw new LayoutError('at least one node is needed');
  if (l.replicas > l.nodes) throw new LayoutError(`${l.replicas} replicas need at least ${l.replicas} nodes (one copy per host); got ${l.nodes}`);
  if (l.devicesPerNode < 1 || l.devicesPerNode > 256) throw new LayoutError('devices per node must be 1..256');
  if (l.partitionsPerDevice < 1 || l.partitionsPerDevice > 256) throw new LayoutError('partitions per device must be 1..256');
  if (l.deviceBytes / l.partitionsPerDevice < 64 * 4096) throw new LayoutError('device too small: each partition needs at least 256 KiB');
  if (!(l.extentBytes >= 4096 && l.extentBytes <= 2 ** 20 && (l.extentBytes & (l.extentBytes - 1)) === 0)) {
    throw new LayoutError('extent size must be a power of two between 4 KiB and 1 MiB');
  }
  if (l.volumeBytes % 4096) throw new LayoutError('volume size must be a multiple of 4 KiB');
  const ports = l.basePort ? Array.from({ length: l.nodes }, (_, i) => l.basePort + i) : await freePorts(l.nodes, l.host);
  const nodes = Array.from({ length: l.nodes }, (_, id) => ({
    id,
    host: l.host,
    port: ports[id],
    devices: Array.from({ length: l.devicesPerNode }, (_, d) => ({
      path: `node${id}/dev${d}.img`,
      sizeBytes: l.deviceBytes,
      partitions: l.partitionsPerDevice,
    })),
  }));
  const map = buildMap(nodes.map((n) => ({ id: n.id, name: `node${n.id}`, devices: n.devices.map((d) => ({ capacityBytes: d.sizeBytes, partitions: d.partitions })) })), 1);
  return {
    format: 1,
    clusterId: randomUUID(),
    token: randomBytes(24).toString('hex'),
    nodes,
    map,
    pools: [{ id: 0, name: 'default', replicas: l.replicas, minSize: l.replicas, failureDomain: 'host' }],
    volumes: l.volumeBytes > 0
      ? [{ id: 1, name: l.volumeName, sizeBytes: l.volumeBytes, pool: 0, extentBytes: l.extentBytes, thin: true, lease: 0 }]
      : [],
  };
}
