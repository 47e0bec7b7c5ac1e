/**
 * Control messages on the gossip topics and the map-fetch protocol. Small JSON objects
 * (control plane only; validated with zod on receipt), except maps, which travel in their
 * signed binary form (src/clustermap/signed-map.ts).
 *
 * - heartbeat topic: {node, epoch, checksum, sentAt, partitions: [{leaf, capacityBytes, usedBytes, liveBytes}],
 *                    volumes?: [{volume, storedBytes}], suspects?: [node]}
 * - digest topic:    {epoch, checksum, sentAt}
 * - map topic:       a signed map (wire bytes)
 * - map-fetch:       request {minEpoch}; reply one status byte (0: a map follows, 1: none
 *                    at or above minEpoch) then the signed map.
 */
import { z } from 'zod';

/** Space of one partition as its allocator reports it (bytes). */
export const PartitionStatSchema = z.object({
  leaf: z.number().int().min(0),
  capacityBytes: z.number().min(0),
  usedBytes: z.number().min(0),
  liveBytes: z.number().min(0),
});

/** Bytes of one volume's mapped pages on one node (every copy it holds counts). */
export const VolumeStatSchema = z.object({
  volume: z.number().int().min(0),
  storedBytes: z.number().min(0),
});

/** A storage node's heartbeat. */
export const HeartbeatSchema = z.object({
  node: z.number().int().min(0).max(32767),
  /** The map epoch the node holds, and that map's checksum (0 for the unsigned creation map). */
  epoch: z.number().int().min(0),
  checksum: z.number().int().min(0),
  /** Sender's clock, ms since 1970. */
  sentAt: z.number(),
  partitions: z.array(PartitionStatSchema).max(65536),
  /** Bytes of mapped pages this node stores per volume (all its partitions; refreshed every few seconds). */
  volumes: z.array(VolumeStatSchema).max(65536).optional(),
  /**
   * Nodes the sender has not heard a heartbeat from for the membership's downAfterMs (its
   * report to the membership leader, which marks a node down only when enough peers agree).
   */
  suspects: z.array(z.number().int().min(0).max(32767)).max(32768).optional(),
  /**
   * The sender is stopping (a graceful stop, SIGTERM): the membership leader marks it down
   * now instead of after downAfterMs of silence, so I/O moves to the other copies before
   * its connections close. Its last heartbeat; older ones arriving later are ignored.
   */
  leaving: z.literal(true).optional(),
});

/** The authority's map digest. */
export const DigestSchema = z.object({
  epoch: z.number().int().min(1),
  checksum: z.number().int().min(0),
  sentAt: z.number(),
});

/** One partition's space. */
export type PartitionStat = z.infer<typeof PartitionStatSchema>;
/** One volume's stored bytes on a node. */
export type VolumeStat = z.infer<typeof VolumeStatSchema>;
/** A heartbeat. */
export type Heartbeat = z.infer<typeof HeartbeatSchema>;
/** A map digest. */
export type Digest = z.infer<typeof DigestSchema>;

/** Encodes a control message as UTF-8 JSON. */
export function encodeMessage(m: Heartbeat | Digest | { minEpoch: number }): Uint8Array {
  return Buffer.from(JSON.stringify(m), 'utf8');
}

/** Decodes and validates a control message; null when it is not valid. */
export function decodeMessage<T>(schema: z.ZodType<T>, data: Uint8Array): T | null {
  try {
    const r = schema.safeParse(JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8')));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

/** The map-fetch request. */
export const FetchRequestSchema = z.object({ minEpoch: z.number().int().min(0) });
