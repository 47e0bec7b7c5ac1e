/**
 * What one storage node reports about the redundancy of the data it holds, for `cairn
 * status`, `cairn recovery status` and the management API (GET /v1/recovery). Extents are
 * named by (volume id, extent index); bytes are mapped 4 KiB pages × 4096 held by this node.
 */

/**
 * The kinds of background data movement (DESIGN "Recovery"):
 * - resync: a member pulls the writes it missed while down (log-guided), or compares every
 *   extent placed on it after a crash or after coming back in;
 * - backfill: a new member copies an extent because a former member went out;
 * - rebalance: a new member copies an extent because placement moved it (in, reweight, a
 *   new node or device);
 * - scrub: members compare (and with a deep scrub, re-read) their copies.
 */
export type RecoveryKind = 'resync' | 'backfill' | 'rebalance' | 'scrub';

/** Every kind, in report order. */
export const RECOVERY_KINDS: readonly RecoveryKind[] = ['resync', 'backfill', 'rebalance', 'scrub'];

/**
 * One node's progress of one kind of work since it was last idle (a pass). Totals grow when
 * more work of the kind arrives during a pass; a pass ends (active false) when nothing of the
 * kind is left, and its figures stay until the next pass starts. For resync the bytes of an
 * extent become known only when it is compared, so `bytesTotal` may grow as the pass runs.
 */
export interface RecoveryProgress {
  kind: RecoveryKind;
  /** Work left. */
  active: boolean;
  /** When the pass started (ms since 1970), or null before the first pass. */
  startedAt: number | null;
  /** When the pass finished (ms since 1970), or null while active or before the first pass. */
  finishedAt: number | null;
  extentsTotal: number;
  extentsDone: number;
  /** Bytes to copy (scrub: to compare or read). */
  bytesTotal: number;
  bytesDone: number;
  /** Bytes per second over about the last 10 s. */
  rate: number;
}

/** Recovery data traffic of one node since it started (bytes; trims of copies no longer placed). */
export interface RecoveryTraffic {
  /** Page data pulled from other nodes (resync, backfill, rebalance, repair). */
  bytesIn: number;
  /** Page data served to other nodes' recovery reads. */
  bytesOut: number;
  /** Copies of extents no longer placed here that were trimmed once every member had them. */
  trimmedExtents: number;
  /** Bytes those copies held. */
  trimmedBytes: number;
  /** Passes over the copies no longer placed here that finished (trimming or not: an undersized extent keeps its copy). */
  trimPasses: number;
}

/** One node's report. */
export interface NodeRecoveryReport {
  /** The reporting node. */
  node: number;
  /** Map epoch the node holds. */
  epoch: number;
  /** Every extent this node holds a copy of: [volume, extent, bytes]. */
  held: Array<[number, number, number]>;
  /**
   * Log-guided resync records: extents this node applied writes to while member node
   * `node` was not in the acting set (down), so that member must pull them before it
   * serves them again.
   */
  missed: Array<{ node: number; volume: number; extent: number }>;
  /**
   * Extents this node knows it lacks (it missed writes, or has not yet peered with every
   * up node since it started or came back up) and does not serve reads of: [volume, extent].
   */
  stale: Array<[number, number]>;
  /**
   * True while the node has not yet asked every up node what it missed, or has not yet
   * sorted out the map's latest placement change (marked the extents newly placed on it stale).
   */
  peering: boolean;
  /** Extents pulled from peers and pages copied since the node started (resync and repair). */
  recovered: { extents: number; pages: number; repairs: number };
  /** Progress per kind, one entry per RECOVERY_KINDS entry, in that order. */
  progress: RecoveryProgress[];
  /** Data moved since start. */
  traffic: RecoveryTraffic;
  /** Recovery rate limit in force on this node (bytes/s; 0: unlimited). */
  rateLimit: number;
}
