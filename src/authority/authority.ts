/**
 * The map authority's face: the one place that orders epochs. The embedded authority
 * (embedded.ts) runs inside a designated storage node; a consensus-backed one (etcd: a
 * compare-and-swap on the "current epoch" key, history under a prefix, a leader lease for
 * the membership monitor) can implement the same interface later.
 */
import type { MapChange, SignedMap } from '../clustermap/index.ts';
import type { LeaseGenerations } from './leases.ts';

/** What submit() did. */
export interface SubmitResult {
  /** The current epoch after the change (unchanged when `changed` is false). */
  epoch: number;
  checksum: number;
  /** False when the change altered nothing (no new epoch). */
  changed: boolean;
  /** When the epoch was published (ms since 1970, performance-clock precision). */
  publishedAt: number;
}

/** One epoch of the map's history. */
export interface HistoryEntry {
  epoch: number;
  checksum: number;
  createdAt: number;
  change: string;
}

/** The map authority. */
export interface MapAuthority {
  /** The newest signed map. */
  current(): SignedMap;
  /**
   * Applies `change` to the newest map, signs the result as the next epoch, stores it
   * durably, then publishes it. Submissions are applied one at a time, in order.
   * @throws ChangeError when the change does not apply.
   */
  submit(change: MapChange): Promise<SubmitResult>;
  /** Every epoch so far, oldest first. */
  history(): Promise<HistoryEntry[]>;
  /**
   * Grants the next write-lease generation of `volume` (DESIGN promise 5), durably: a
   * generation is never issued twice. The caller then announces it to the storage nodes.
   * @throws Error when the authority is closed or cannot store the grant.
   */
  acquireLease(volume: number): Promise<number>;
  /** The last generation granted per volume id. */
  leases(): LeaseGenerations;
  /**
   * Membership input: node `node` was heard from (a heartbeat), at local time `at` (ms);
   * `suspects` is the node's report (the nodes it has not heard from), when it sent one.
   * `hb` carries the heartbeat's own send time and its `leaving` flag: a leaving node is
   * marked down at once (by the membership leader), and its heartbeats sent before that
   * one, arriving late, do not mark it up again (MembershipTracker.heartbeat).
   */
  heartbeat(node: number, at: number, suspects?: readonly number[], hb?: { sentAt: number; leaving?: boolean }): void;
  /** Stops timers; waits for a submission in progress. */
  close(): Promise<void>;
}
