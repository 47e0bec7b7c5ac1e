/**
 * The cluster configuration file (`cluster.json` in a data directory): what a node needs in
 * order to start — who the nodes are, their devices, the topology map, pools, the authority.
 * Volumes live in the catalog (src/catalog), not here. Written by the launcher, read by
 * every node process and initiator. Validated with zod on load. Its `map` is the creation
 * map (epoch 1); later epochs are signed by the authority and learned by gossip
 * (src/clustermap, src/gossip).
 */
import { z } from 'zod';
import type { TopologyMap } from '../../placement/index.ts';

/** One device of a node: a file of fixed size split into equal partitions. */
export const DeviceSchema = z.object({
  /** Path of the backing file, relative to the data directory. */
  path: z.string().min(1),
  /** Bytes; a multiple of partitions × 4096. */
  sizeBytes: z.number().int().positive(),
  partitions: z.number().int().min(1).max(256),
});

/** One storage node. `id` is also its host bucket's host id in the map. */
export const NodeSchema = z.object({
  id: z.number().int().min(0).max(32767),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  /** libp2p (gossip) TCP port. Absent in data directories made before gossip; filled on open. */
  gossipPort: z.number().int().min(1).max(65535).optional(),
  /** Management API (HTTP) port. Absent in data directories made before gossip; filled on open. */
  apiPort: z.number().int().min(1).max(65535).optional(),
  devices: z.array(DeviceSchema).min(1).max(256),
});

/** Who orders map epochs and how peers check it. */
export const AuthoritySchema = z.object({
  /** Kind of authority; 'embedded' runs inside storage node `node`. */
  kind: z.literal('embedded'),
  node: z.number().int().min(0).max(32767),
  /** The authority's Ed25519 public key, base64 SPKI DER; every map must verify with it. */
  publicKey: z.string().min(1),
});

/** Membership and gossip timing (milliseconds). */
export const MembershipSchema = z.object({
  /** How often each storage node publishes a heartbeat. */
  heartbeatMs: z.number().int().min(50).max(60000),
  /** A node whose heartbeats stopped this long is marked down (a new epoch). */
  downAfterMs: z.number().int().min(100).max(3600000),
  /** A node down this long is marked out (Ceph's mon_osd_down_out_interval, 600 s). */
  outAfterMs: z.number().int().min(0).max(30 * 24 * 3600000),
  /** How often the authority publishes the map digest (epoch, checksum). */
  digestMs: z.number().int().min(50).max(60000),
});

/** Defaults of MembershipSchema: heartbeat 1 s, down after 4 s, out after 600 s, digest 1 s. */
export const DEFAULT_MEMBERSHIP: Membership = { heartbeatMs: 1000, downAfterMs: 4000, outAfterMs: 600000, digestMs: 1000 };

/** A pool: a placement rule and a redundancy scheme (replicas only, for now). */
export const PoolSchema = z.object({
  id: z.number().int().min(0),
  name: z.string().min(1),
  replicas: z.number().int().min(1).max(16),
  /** Fewest replicas that must acknowledge a write. */
  minSize: z.number().int().min(1).max(16),
  failureDomain: z.string().min(1),
});

/**
 * A volume as cluster.json listed it before volumes moved into the catalog; also the
 * in-memory record an initiator attaches (LocalCluster.config.volumes, with lease 0).
 */
export const VolumeSchema = z.object({
  id: z.number().int().min(1).max(0xffffffff),
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/),
  sizeBytes: z.number().int().positive(),
  pool: z.number().int().min(0),
  /** Extent size in bytes: a power of two, multiple of 4096, at most 1 MiB. */
  extentBytes: z.number().int(),
  thin: z.boolean(),
  /** Last write-lease generation handed out; the next attachment takes lease + 1. */
  lease: z.number().int().min(0),
});

/** The whole file. */
export const ClusterConfigSchema = z.object({
  format: z.literal(1),
  clusterId: z.string().uuid(),
  /** Shared secret every node and initiator presents (data path Hello). */
  token: z.string().min(16),
  nodes: z.array(NodeSchema).min(1),
  map: z.custom<TopologyMap>((v) => typeof v === 'object' && v !== null),
  pools: z.array(PoolSchema).min(1),
  /**
   * Empty in data directories made since volumes live in the catalog. Older ones list their
   * volumes here: the authority migrates them into the catalog (keeping ids, extent sizes and
   * lease generations as a floor of its ledger) and LocalCluster.start then removes them.
   */
  volumes: z.array(VolumeSchema),
  /** The map authority. Absent in data directories made before gossip; filled on open. */
  authority: AuthoritySchema.optional(),
  /** Membership timing; DEFAULT_MEMBERSHIP when absent. */
  membership: MembershipSchema.partial().optional(),
});

/** One device of a node. */
export type DeviceConfig = z.infer<typeof DeviceSchema>;
/** One storage node. */
export type NodeConfig = z.infer<typeof NodeSchema>;
/** A pool. */
export type PoolConfig = z.infer<typeof PoolSchema>;
/** A volume record. */
export type VolumeConfig = z.infer<typeof VolumeSchema>;
/** The map authority's record. */
export type AuthorityConfig = z.infer<typeof AuthoritySchema>;
/** Membership and gossip timing. */
export type Membership = z.infer<typeof MembershipSchema>;
/** The cluster configuration file. */
export type ClusterConfig = z.infer<typeof ClusterConfigSchema>;

/** The membership timing of `config`: its values over DEFAULT_MEMBERSHIP. */
export function membershipOf(config: ClusterConfig): Membership {
  return { ...DEFAULT_MEMBERSHIP, ...config.membership };
}
