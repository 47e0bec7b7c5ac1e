/**
 * Creating a new cluster configuration: node ids and ports, device files, the topology
 * map (root -> host -> device -> partition) and the default pool. It lists no volumes (they
 * live in the catalog; LocalCluster.start creates the layout's volume there).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { buildMap } from '../../placement/index.ts';
import { authorityKeyPath } from '../authority/index.ts';
import { generateAuthorityKeys } from '../clustermap/index.ts';
import type { ClusterConfig } from '../config/index.ts';
import type { ClusterLayout } from './layout.ts';
export { DEFAULT_LAYOUT, type ClusterLayout } from './layout.ts';
import { freePorts } from '../net/index.ts';

/** Thrown for a layout that cannot work (e.g. more replicas than nodes). */
export class LayoutError extends Error {
  override name = 'LayoutError';
}

/**
 * Builds a new cluster configuration for `layout` (with `volumes: []`; the layout's volume
 * settings are checked here and used by LocalCluster.start).
 * @throws LayoutError when the layout is inconsistent.
 */
export async function createClusterConfig(layout: ClusterLayout): Promise<ClusterConfig> {
  const l = layout;
  if (l.nodes < 1) throw new LayoutError('at least one node is needed');
  if (l.minSize !== undefined && (!Number.isInteger(l.minSize) || l.minSize < 1 || l.minSize > l.replicas)) {
    throw new LayoutError(`min_size ${l.minSize} must be between 1 and the ${l.replicas} replicas`);
  }
  if (l.replicas > l.nodes) throw new LayoutError(`${l.replicas} replicas need at least ${l.replicas} nodes (one copy per host); got ${l.nodes}`);
  if (l.devicesPerNode < 1 || l.devicesPerNode > 256) throw new LayoutError('devices per node must be 1..256');
  if (l.partitionsPerDevice < 1 || l.partitionsPerDevice > 256) throw new LayoutError('partitions per device must be 1..256');
  if (l.deviceBytes / l.partitionsPerDevice < 64 * 4096) throw new LayoutError('device too small: each partition needs at least 256 KiB');
  if (!(l.extentBytes >= 4096 && l.extentBytes <= 2 ** 20 && (l.extentBytes & (l.extentBytes - 1)) === 0)) {
    throw new LayoutError('extent size must be a power of two between 4 KiB and 1 MiB');
  }
  if (l.volumeBytes % 4096) throw new LayoutError('volume size must be a multiple of 4 KiB');
  const ports = l.basePort ? Array.from({ length: 3 * l.nodes }, (_, i) => l.basePort + i) : await freePorts(3 * l.nodes, l.host);
  if (ports[ports.length - 1] > 65535) throw new LayoutError(`base port ${l.basePort} leaves too few ports for ${l.nodes} nodes (3 each)`);
  const nodes = Array.from({ length: l.nodes }, (_, id) => ({
    id,
    host: l.host,
    port: ports[id],
    gossipPort: ports[l.nodes + id],
    apiPort: ports[2 * l.nodes + id],
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
    pools: [{ id: 0, name: 'default', replicas: l.replicas, minSize: l.minSize ?? defaultMinSize(l.replicas), failureDomain: 'host' }],
    // Volumes live in the catalog: LocalCluster.start creates the layout's volume there.
    volumes: [],
    ...(l.membership ? { membership: l.membership } : {}),
  };
}

/**
 * Fills in what the control plane needs and older data directories lack: gossip and API
 * ports per node, and the map authority (embedded in the lowest node id: a new Ed25519 key
 * pair, the private key written to `<dataDir>/node<ID>/authority.key` with mode 0600, the
 * public key into the config). Mutates `config`.
 * @returns true when it changed something (the caller saves the config).
 */
export async function provisionControlPlane(dataDir: string, config: ClusterConfig): Promise<boolean> {
  let changed = false;
  const missing = config.nodes.filter((n) => n.gossipPort === undefined || n.apiPort === undefined);
  if (missing.length) {
    const ports = await freePorts(2 * missing.length, missing[0].host);
    missing.forEach((n, i) => {
      n.gossipPort = ports[2 * i];
      n.apiPort = ports[2 * i + 1];
    });
    changed = true;
  }
  if (!config.authority) {
    const node = Math.min(...config.nodes.map((n) => n.id));
    const keys = generateAuthorityKeys();
    const path = authorityKeyPath(dataDir, node);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, keys.privateKeyPem, { mode: 0o600 });
    config.authority = { kind: 'embedded', node, publicKey: keys.publicKey };
    changed = true;
  }
  return changed;
}

/**
 * The default min_size of a pool of `size` replicas, as Ceph's: size − ⌊size / 2⌋ (3 → 2,
 * 2 → 1, 1 → 1). A write is acknowledged by every acting member and never by fewer than
 * this; below it, I/O on the extent waits.
 */
export function defaultMinSize(size: number): number {
  return Math.max(1, size - Math.floor(size / 2));
}
