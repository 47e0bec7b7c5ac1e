/**
 * Durable recovery progress of one node (`<data-dir>/node<ID>/recovery.json`): the extents
 * it still has to pull (with their kind, estimated bytes and where copies were found), the
 * placement they were computed for, and the per-kind counters. A node that restarts in the
 * middle of a backfill or rebalance takes the list up again — it neither forgets what it
 * still lacks nor starts the pass over (DESIGN "Recovery": resumable). Written atomically
 * (temporary file, fsync, rename).
 */
import { readFile } from 'node:fs/promises';
import { writeJsonDurably } from './durable-file.ts';
import { RECOVERY_KINDS, type RecoveryKind, type RecoveryProgress } from '../recovery/index.ts';

/** One extent still to pull. */
export interface SavedStale {
  volume: number;
  extent: number;
  kind: RecoveryKind;
  /** Estimated bytes to copy (largest copy found). */
  bytes: number;
  /** Partition leaf ids of other nodes holding copies when it was found. */
  holders: number[];
}

/** The stored state. */
export interface SavedRecovery {
  /** Placement fingerprint (src/node/recovery.ts placementFingerprint) the list was made for. */
  placement: number;
  stale: SavedStale[];
  progress: RecoveryProgress[];
}

/**
 * Reads the stored state; null when there is none or it does not parse (a node then
 * recomputes its work by peering, which is always correct, only slower).
 */
export async function loadRecovery(path: string): Promise<SavedRecovery | null> {
  let j: unknown;
  try {
    j = JSON.parse(await readFile(path, 'utf8'));
  } catch {
    return null;
  }
  const o = j as Partial<SavedRecovery>;
  if (typeof o.placement !== 'number' || !Array.isArray(o.stale) || !Array.isArray(o.progress)) return null;
  const kinds = new Set<string>(RECOVERY_KINDS);
  const stale = o.stale.filter((s) => s && Number.isInteger(s.volume) && Number.isInteger(s.extent) && kinds.has(s.kind) && Array.isArray(s.holders));
  const progress = o.progress.filter((p) => p && kinds.has(p.kind) && typeof p.extentsTotal === 'number');
  return { placement: o.placement, stale, progress };
}

/** Stores `state` at `path` atomically and durably. @throws the fs error. */
export function saveRecovery(path: string, state: SavedRecovery): Promise<void> {
  return writeJsonDurably(path, state);
}
