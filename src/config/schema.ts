/**
 * The cluster configuration file (`cluster.json` in a data directory): who the nodes are,
 * their devices, the topology map, pools and volumes. Written by the launcher, read by
 * every node process and initiator. Validated with zod on load.
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
  devices: z.array(DeviceSchema).min(1).max(256),
});

/** A pool: a placement rule and a redundancy scheme (replicas only, for now). */
export const PoolSchema = z.object({
  id: z.number().int().min(0),
  name: z.string().min(1),
  replicas: z.number().int().min(1).max(16),
  /** Fewest replicas that must acknowledge a write. */
  minSize: z.number().int().min(1).max(16),
  failureDomain: z.string().min(1),
});

/** A volume record. */
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
  volumes: z.array(VolumeSchema),
});

/** One device of a node. */
export type DeviceConfig = z.infer<typeof DeviceSchema>;
/** One storage node. */
export type NodeConfig = z.infer<typeof NodeSchema>;
/** A pool. */
export type PoolConfig = z.infer<typeof PoolSchema>;
/** A volume record. */
export type VolumeConfig = z.infer<typeof VolumeSchema>;
/** The cluster configuration file. */
export type ClusterConfig = z.infer<typeof ClusterConfigSchema>;
