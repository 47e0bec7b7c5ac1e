/**
 * The cluster map: the epoch-versioned, authority-signed description of the cluster that
 * every storage node and initiator holds — storage nodes with their addresses, devices and
 * states, and the topology map (placement/) derived from them. It follows the role of
 * Ceph's OSDMap (Weil et al., "RADOS", PDSW 2007): one ordered sequence of epochs, each a
 * complete map, learned by everybody by gossip.
 */
import { z } from 'zod';
import type { TopologyMap } from '../../placement/index.ts';

/** One device of a node in the map. `id` is stable (it is part of its partitions' leaf ids). */
export const MapDeviceSchema = z.object({
  /** Device index on its node, 0..255; never reused while the device is in the map. */
  id: z.number().int().min(0).max(255),
  /** Path of the backing file, relative to the data directory. */
  path: z.string().min(1),
  /** Bytes. */
  sizeBytes: z.number().int().positive(),
  partitions: z.number().int().min(1).max(256),
  /** Part of placement (in) or drained (out). */
  in: z.boolean(),
  /** Weight factor 0..1 applied on top of the capacity-derived weight. */
  reweight: z.number().min(0).max(1),
});

/** One storage node in the map: addresses, devices and membership state. */
export const MapNodeSchema = z.object({
  id: z.number().int().min(0).max(32767),
  host: z.string().min(1),
  /** Data-path port (src/wire). */
  port: z.number().int().min(1).max(65535),
  /** libp2p (gossip) TCP port. */
  gossipPort: z.number().int().min(1).max(65535),
  /** Management API (HTTP) port. */
  apiPort: z.number().int().min(1).max(65535),
  devices: z.array(MapDeviceSchema).max(256),
  /** Reachable (heartbeats arrive). Routing only: placement ignores it. */
  up: z.boolean(),
  /** Part of placement. */
  in: z.boolean(),
  /** Weight factor 0..1 applied to every device of the node (Ceph's "reweight"). */
  reweight: z.number().min(0).max(1),
  /**
   * Epoch at which the node was last marked up after being down (absent: up since the map
   * was created). A node that sees its own upEpoch change knows it was marked down in
   * between — and may have missed writes — so it peers again before serving reads.
   */
  upEpoch: z.number().int().min(1).optional(),
  /**
   * Epoch at which the node (or one of its devices) was last brought back in after being
   * out (absent: in since the map was created). Nobody recorded what it missed while out, so
   * a node that sees its inEpoch change compares every extent placed on it with the other
   * members (a full peering) before it serves reads of them.
   */
  inEpoch: z.number().int().min(1).optional(),
  /** When the node was marked down (ms since 1970), or null while up. */
  downSince: z.number().nullable(),
  /** True when the authority (not an operator) marked it out; it comes back in on return. */
  autoOut: z.boolean(),
});

/**
 * Cluster-wide settings carried in the map, changed by operator map changes (`cairn set`,
 * `cairn unset`), so that every node and initiator applies the same values from the same
 * epoch on. Like Ceph's OSDMap flags and the monitor-held osd_* options.
 */
export const MapSettingsSchema = z.object({
  /**
   * Ceph's noout: the authority does not mark down nodes out automatically, however long
   * they stay down (for planned maintenance). Operator `out` still works.
   */
  noout: z.boolean(),
  /**
   * Recovery (resync, backfill, rebalance, scrub) data rate limit per node, bytes/s;
   * 0 = unlimited.
   */
  recoveryBytesPerSec: z.number().int().min(0),
  /** How often each extent is scrubbed (shallow: versions and checksums), ms; 0 = never on schedule. */
  scrubIntervalMs: z.number().int().min(0),
  /** How often each extent is deep-scrubbed (data compared), ms; 0 = never on schedule. */
  deepScrubIntervalMs: z.number().int().min(0),
});

/** The whole map. */
export const ClusterMapSchema = z.object({
  format: z.literal(1),
  clusterId: z.string().min(1),
  /** Monotonically increasing; 1 is the map written at cluster creation. */
  epoch: z.number().int().min(1).max(0xffffffff),
  /** When the authority made this epoch (ms since 1970). */
  createdAt: z.number(),
  /** What changed, for `cairn map history`. */
  change: z.string(),
  nodes: z.array(MapNodeSchema).min(1),
  /** Derived from `nodes` by buildTopology; carried so every peer places with the same tree. */
  topology: z.custom<TopologyMap>((v) => typeof v === 'object' && v !== null),
  /**
   * Settings that differ from DEFAULT_SETTINGS (absent keys take the default; absent
   * altogether in maps signed before settings existed). Read them with mapSettings().
   */
  settings: MapSettingsSchema.partial().optional(),
});

/** One device of a node in the map. */
export type MapDevice = z.infer<typeof MapDeviceSchema>;
/** One storage node in the map. */
export type MapNode = z.infer<typeof MapNodeSchema>;
/** The cluster map at one epoch. */
export type ClusterMap = z.infer<typeof ClusterMapSchema>;
/** Cluster-wide settings in force (every key present); see MapSettingsSchema for units. */
export type MapSettings = z.infer<typeof MapSettingsSchema>;

/**
 * Settings of a map that carries none: noout off, recovery at 64 MiB/s per node, shallow
 * scrub every 24 h and deep scrub every 7 days (Ceph's osd_scrub_min_interval and
 * osd_deep_scrub_interval).
 */
export const DEFAULT_SETTINGS: MapSettings = Object.freeze({
  noout: false,
  recoveryBytesPerSec: 64 * 1024 * 1024,
  scrubIntervalMs: 24 * 3600 * 1000,
  deepScrubIntervalMs: 7 * 24 * 3600 * 1000,
});

/**
 * The settings in force at `map`'s epoch: DEFAULT_SETTINGS overlaid with the keys the map
 * carries. Pure; never throws.
 */
export function mapSettings(map: ClusterMap): MapSettings {
  const out: MapSettings = { ...DEFAULT_SETTINGS };
  for (const [k, v] of Object.entries(map.settings ?? {})) {
    if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  }
  return out;
}
