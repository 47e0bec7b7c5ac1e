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

/** TLS files for the etcd client (PEM paths; relative ones are taken from the data directory). */
export const EtcdTlsSchema = z.object({
  /** CA bundle that signed the etcd members' certificates. */
  ca: z.string().min(1).optional(),
  /** Client certificate (mutual TLS). */
  cert: z.string().min(1).optional(),
  /** Client private key (mutual TLS). */
  key: z.string().min(1).optional(),
});

/** Where an etcd-backed authority keeps its state. */
export const EtcdAuthoritySchema = z.object({
  /** Client URLs of the etcd members, e.g. ["http://10.0.0.1:2379", ...]. */
  endpoints: z.array(z.string().url()).min(1),
  /** Key prefix of this cluster's state in etcd (no trailing slash), e.g. "/cairn/<clusterId>". */
  prefix: z.string().min(1).regex(/^[^\s]*[^/\s]$/, 'no whitespace and no trailing slash'),
  tls: EtcdTlsSchema.optional(),
  /**
   * Time to live of the membership leader's etcd lease, ms (default 3000): a leader that cannot
   * renew it for this long (stopped, partitioned) loses the role and can commit nothing more.
   */
  leaderTtlMs: z.number().int().min(1000).max(60000).optional(),
  /** Distinct peers (the leader included) that must report a node silent before it is marked down (default 2). */
  minDownReporters: z.number().int().min(1).max(16).optional(),
});

/**
 * Who orders map epochs and how peers check it. 'embedded': storage node `node` runs the
 * authority (its epochs and lease ledger are files in its directory). 'etcd': every node can
 * act for it; epochs, the lease ledger and the map history are committed to the etcd cluster
 * `etcd` names, and one node at a time (holding an etcd lease) makes membership decisions.
 * `node` is then only the node whose API is tried first. Either way every map is signed with
 * the key whose public half is `publicKey` (the private key: `<dataDir>/node<ID>/authority.key`,
 * on the authority node, or on every node for 'etcd').
 */
export const AuthoritySchema = z.object({
  kind: z.enum(['embedded', 'etcd']),
  node: z.number().int().min(0).max(32767),
  /** The authority's Ed25519 public key, base64 SPKI DER; every map must verify with it. */
  publicKey: z.string().min(1),
  /** Required when kind is 'etcd'. */
  etcd: EtcdAuthoritySchema.optional(),
}).refine((a) => a.kind !== 'etcd' || a.etcd !== undefined, { message: "an 'etcd' authority needs its etcd settings (endpoints, prefix)", path: ['etcd'] });

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
/** The etcd settings of an etcd-backed authority. */
export type EtcdAuthorityConfig = z.infer<typeof EtcdAuthoritySchema>;
/** Membership and gossip timing. */
export type Membership = z.infer<typeof MembershipSchema>;
/** The cluster configuration file. */
export type ClusterConfig = z.infer<typeof ClusterConfigSchema>;

/** The membership timing of `config`: its values over DEFAULT_MEMBERSHIP. */
export function membershipOf(config: ClusterConfig): Membership {
  return { ...DEFAULT_MEMBERSHIP, ...config.membership };
}
