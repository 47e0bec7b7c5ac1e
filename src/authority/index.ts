/**
 * src/authority: the map authority — its interface (orders epochs, signs, stores, publishes,
 * decides membership) and the embedded implementation that runs inside a storage node.
 */
export type { MapAuthority, SubmitResult, HistoryEntry } from './authority.ts';
export { EmbeddedAuthority, authorityKeyPath, type EmbeddedAuthorityOptions, type AuthorityPublisher, type AuthorityLog } from './embedded.ts';
export { LeaseLedger, type LeaseGenerations } from './leases.ts';
export { EtcdAuthority, NotLeaderError, DEFAULT_LEADER_TTL_MS, DEFAULT_MIN_DOWN_REPORTERS, type EtcdAuthorityOptions } from './etcd.ts';
export { openEtcd, etcdKeys, seedEtcdAuthority, ETCD_CALL_TIMEOUT_MS, type EtcdSeed } from './etcd-state.ts';
export { membershipDecisions, MembershipTracker, START_GRACE_MS, type MembershipInput, type MembershipDecision, type SuspectReport, type MembershipLog } from './membership.ts';
export { LocalEtcd, type LocalEtcdMember, type LocalEtcdOptions } from './etcd-local.ts';
