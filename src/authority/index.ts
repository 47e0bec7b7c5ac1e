/**
 * src/authority: the map authority — its interface (orders epochs, signs, stores, publishes,
 * decides membership) and the embedded implementation that runs inside a storage node.
 */
export type { MapAuthority, SubmitResult, HistoryEntry } from './authority.ts';
export { EmbeddedAuthority, authorityKeyPath, type EmbeddedAuthorityOptions, type AuthorityPublisher, type AuthorityLog } from './embedded.ts';
export { LeaseLedger, type LeaseGenerations } from './leases.ts';
