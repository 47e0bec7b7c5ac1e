/**
 * Membership decisions, shared by both authorities: which up nodes to mark down and which
 * down nodes to mark out, from heartbeats the deciding process received and, for a leader
 * that requires it, from its peers' reports (each node's heartbeat lists the nodes it has not
 * heard from: `suspects`). A node is marked down when the decider has not heard it for
 * downAfterMs *and* enough distinct reporters agree — as Ceph's mon_osd_min_down_reporters —
 * so one process's bad view (a one-way partition, a stalled event loop) does not take a
 * healthy node out of the acting sets. A node down for outAfterMs is marked out, unless the
 * map's settings say noout.
 */
import { mapSettings, type ClusterMap } from '../clustermap/index.ts';
import type { Membership } from '../config/index.ts';

/** Milliseconds a node not heard from since the decider started has before it counts as silent. */
export const START_GRACE_MS = 15000;

/** A peer's latest report: the nodes it has not heard from, and when the report arrived (local ms). */
export interface SuspectReport {
  suspects: readonly number[];
  receivedAt: number;
}

/** What the decider knows. */
export interface MembershipInput {
  map: ClusterMap;
  /** Local time, ms. */
  now: number;
  /** When the decider started receiving heartbeats (ms). */
  startedAt: number;
  /** Last heartbeat received per node (local ms). */
  lastSeen: ReadonlyMap<number, number>;
  timing: Membership;
  /** The deciding node (never marked down by itself); null when none. */
  self: number | null;
  /** Latest report per reporting node (its heartbeat's suspects). */
  reports: ReadonlyMap<number, SuspectReport>;
  /**
   * Distinct reporters — the decider counts as one — that must find a node silent before it
   * is marked down; capped at the number of up nodes that report at all (a 2-node cluster
   * whose other node died cannot have 2 reporters). 1: the decider's view alone.
   */
  minReporters: number;
}

/** What to change. */
export interface MembershipDecision {
  /** Up nodes to mark down. */
  down: number[];
  /** Down nodes past outAfterMs to mark out. */
  out: number[];
  /** Down nodes past outAfterMs that the map's noout keeps in. */
  heldByNoout: number[];
}

/** True when the decider itself finds node `id` silent (see START_GRACE_MS). */
function silent(i: MembershipInput, id: number): boolean {
  const seen = i.lastSeen.get(id);
  if (seen !== undefined) return i.now - seen > i.timing.downAfterMs;
  return i.now - i.startedAt > Math.max(i.timing.downAfterMs, START_GRACE_MS);
}

/**
 * Decides membership changes (see the module comment). Pure: the caller submits them.
 * @returns node ids, ascending.
 */
export function membershipDecisions(i: MembershipInput): MembershipDecision {
  const down: number[] = [];
  const out: number[] = [];
  const heldByNoout: number[] = [];
  const noout = mapSettings(i.map).noout;
  const up = i.map.nodes.filter((n) => n.up);
  for (const n of i.map.nodes) {
    if (n.id === i.self) continue;
    if (n.up && silent(i, n.id) && agreed(i, n.id, up.map((u) => u.id))) down.push(n.id);
    if (!n.up && n.in && i.timing.outAfterMs > 0 && n.downSince !== null && i.now - n.downSince > i.timing.outAfterMs) {
      (noout ? heldByNoout : out).push(n.id);
    }
  }
  return { down, out, heldByNoout };
}

/** True when enough reporters (the decider included) find `id` silent. */
function agreed(i: MembershipInput, id: number, upIds: number[]): boolean {
  if (i.minReporters <= 1) return true;
  let reporting = 0;
  let agreeing = 0;
  for (const r of upIds) {
    if (r === id || r === i.self) continue;
    const rep = i.reports.get(r);
    // A report older than downAfterMs is from a node that may itself be gone: it counts neither way.
    if (!rep || i.now - rep.receivedAt > i.timing.downAfterMs) continue;
    reporting++;
    if (rep.suspects.includes(id)) agreeing++;
  }
  return 1 + agreeing >= Math.min(i.minReporters, 1 + reporting);
}

/** Log calls of a MembershipTracker. */
export interface MembershipLog {
  info(obj: object, msg: string): void;
}

/**
 * The state a membership decider keeps between decisions: last heartbeat per node, the
 * latest report per reporter, and which noout holds were already logged (one line per node
 * and episode).
 */
export class MembershipTracker {
  private readonly lastSeen = new Map<number, number>();
  private readonly reports = new Map<number, SuspectReport>();
  private readonly logged = new Set<number>();
  /** Each node's leaving heartbeat, until it is heard again: its send time (the node's clock) and when it arrived (ours), ms. */
  private readonly left = new Map<number, { sentAt: number; at: number }>();
  private startedAt: number;

  /**
   * @param timing membership timing (ms)
   * @param self the deciding node (never marked down by itself), null for none
   * @param minReporters see MembershipInput.minReporters
   */
  constructor(private readonly timing: Membership, private readonly self: number | null, private readonly minReporters: number, private readonly log: MembershipLog, now = Date.now()) {
    this.startedAt = now;
  }

  /**
   * Node `node` was heard from at local time `at` (ms); `suspects` is its report, when it
   * sent one; `hb` its send time and `leaving` flag. Returns how the heartbeat counts
   * (classify): only an 'alive' one is recorded as the node being heard.
   */
  heartbeat(node: number, at: number, suspects?: readonly number[], hb?: { sentAt: number; leaving?: boolean }): 'leaving' | 'stale' | 'alive' {
    const kind = this.classify(node, at, hb);
    if (kind !== 'alive') return kind;
    this.lastSeen.set(node, at);
    if (suspects) this.reports.set(node, { suspects, receivedAt: at });
    return kind;
  }

  /**
   * Sorts a heartbeat of `node`, arriving at local time `at` (ms), before it counts:
   * 'leaving' when it announces a graceful stop (remembered); 'stale' when it was sent no
   * later than the node's leaving one, by the node's own clock, and arrives within
   * downAfterMs of it (gossip delivered it late; it must not mark the stopped node up
   * again); else 'alive' (the node is back: the leaving mark is forgotten). The window keeps
   * a node whose clock stepped back across a restart from being ignored for more than
   * downAfterMs. Without `hb` (no send time): 'alive'.
   */
  private classify(node: number, at: number, hb?: { sentAt: number; leaving?: boolean }): 'leaving' | 'stale' | 'alive' {
    const left = this.left.get(node);
    if (hb?.leaving) {
      if (!left || hb.sentAt > left.sentAt) this.left.set(node, { sentAt: hb.sentAt, at });
      return 'leaving';
    }
    if (left !== undefined && hb && hb.sentAt <= left.sentAt && at - left.at < this.timing.downAfterMs) return 'stale';
    this.left.delete(node);
    return 'alive';
  }

  /**
   * Forgets what was heard and restarts the start-up grace at `now`: after this process was
   * stopped (SIGSTOP, a long pause), its silence says nothing about the other nodes.
   */
  reset(now: number): void {
    this.lastSeen.clear();
    this.reports.clear();
    this.startedAt = now;
  }

  /** membershipDecisions over what this tracker holds; logs each new noout hold once. */
  decide(map: ClusterMap, now: number): MembershipDecision {
    const d = membershipDecisions({ map, now, startedAt: this.startedAt, lastSeen: this.lastSeen, timing: this.timing, self: this.self, reports: this.reports, minReporters: this.minReporters });
    for (const id of d.heldByNoout) {
      if (this.logged.has(id)) continue;
      const n = map.nodes.find((x) => x.id === id);
      this.log.info({ node: id, downSince: n?.downSince, outAfterMs: this.timing.outAfterMs }, `noout set: node ${id} down past outAfterMs stays in`);
    }
    // Forget nodes no longer held (back up, marked out, or noout unset): a later hold logs again.
    this.logged.clear();
    for (const id of d.heldByNoout) this.logged.add(id);
    return d;
  }
}
