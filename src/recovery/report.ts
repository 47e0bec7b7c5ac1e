/**
 * What one storage node reports about the redundancy of the data it holds, for `cairn
 * status` and the management API (GET /v1/recovery). Extents are named by (volume id,
 * extent index); bytes are mapped 4 KiB pages × 4096 held by this node.
 */
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
  /** True while the node has not yet asked every up node what it missed. */
  peering: boolean;
  /** Extents pulled from peers and pages copied since the node started (resync and repair). */
  recovered: { extents: number; pages: number; repairs: number };
}
