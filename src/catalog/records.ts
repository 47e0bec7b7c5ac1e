/**
 * What catalog records hold (validated with zod when read back). Sizes are bytes.
 */
import { z } from 'zod';

/** Volume and snapshot names: 1–128 of letters, digits, '.', '_', '-', starting with a letter or digit. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Why `name` is not a valid volume or snapshot name, or null when it is. */
export function nameProblem(name: unknown, what = 'name'): string | null {
  if (typeof name !== 'string' || name.length === 0) return `${what} is required`;
  if (name.length > 128) return `${what} '${name.slice(0, 20)}…' is longer than 128 characters`;
  if (!NAME_PATTERN.test(name)) return `${what} '${name}' may hold only letters, digits, '.', '_' and '-', and must start with a letter or digit`;
  return null;
}

/** Where a clone came from: a snapshot of another volume (read-through until flattened). */
export const ParentSchema = z.object({
  volume: z.string(),
  volumeId: z.number().int().min(1),
  snapshot: z.string(),
  /** The snapshot's pinned version (reads of the parent are as of it). */
  version: z.number(),
  /** Parent volume size at the snapshot, bytes: clone reads beyond it are zeros. */
  sizeBytes: z.number().int().positive(),
});

/** A volume record. */
export const VolumeRecordSchema = z.object({
  kind: z.literal('volume'),
  name: z.string(),
  id: z.number().int().min(1).max(0x1fffff),
  sizeBytes: z.number().int().positive(),
  pool: z.number().int().min(0),
  /** Extent size in bytes (a power of two, 4 KiB – 1 MiB). */
  extentBytes: z.number().int(),
  thin: z.boolean(),
  createdAt: z.string(),
  /** 'deleting': a delete job is trimming it; it is no longer served. */
  state: z.enum(['ready', 'deleting']),
  /** Names of its snapshots, oldest first. */
  snapshots: z.array(z.string()),
  /** Set for a clone until it is flattened. */
  parent: ParentSchema.nullable(),
  /** Host NQNs allowed to attach it over NVMe/TCP; empty: any host (the gateway's own list applies). */
  allowHosts: z.array(z.string()).default([]),
  /** The last attachment that took its write lease: who, under which generation, when (ISO). */
  attachment: z.object({ holder: z.string(), generation: z.number().int(), at: z.string() }).nullable().default(null),
});

/** A snapshot record. */
export const SnapshotRecordSchema = z.object({
  kind: z.literal('snapshot'),
  volume: z.string(),
  volumeId: z.number().int().min(1),
  name: z.string(),
  /** Pinned version: the view holds each page's newest version ≤ this. */
  version: z.number(),
  /** Volume size when the snapshot was taken, bytes. */
  sizeBytes: z.number().int().positive(),
  createdAt: z.string(),
  /** Clones made from it that are not flattened yet. */
  clones: z.array(z.string()),
});

/** One index shard: volume name -> id. */
export const IndexShardSchema = z.object({ kind: z.literal('index'), volumes: z.record(z.string(), z.number()) });

/** A counter record. */
export const CounterSchema = z.object({ kind: z.literal('counter'), next: z.number().int().min(1) });

/** A volume record. */
export type VolumeRecord = z.infer<typeof VolumeRecordSchema>;
/** A snapshot record. */
export type SnapshotRecord = z.infer<typeof SnapshotRecordSchema>;
/** A clone's parent. */
export type ParentRef = z.infer<typeof ParentSchema>;
/** An index shard. */
export type IndexShard = z.infer<typeof IndexShardSchema>;
/** A counter. */
export type Counter = z.infer<typeof CounterSchema>;
