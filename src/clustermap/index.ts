/**
 * src/clustermap: the epoch-versioned, authority-signed cluster map — its model, canonical
 * encoding and checksum, Ed25519 signature, changes, and the per-peer keeper that accepts
 * only newer maps that verify.
 */
// Model: schemas and types, plus the cluster-wide settings (MapSettingsSchema, MapSettings,
// DEFAULT_SETTINGS, mapSettings).
export * from './types.ts';
export { buildTopology, checkTopology, placementTopology, mapNode } from './topology.ts';
export { canonical, encodeMap, decodeMap, mapChecksum, MapDecodeError } from './codec.ts';
export { generateAuthorityKeys, parsePublicKey, parsePrivateKey, signMapBytes, verifyMapBytes } from './signing.ts';
export { signMap, openSignedMap, peekSignedMap, MapRejectedError, MAX_SIGNED_MAP, type SignedMap, type MapRejectReason } from './signed-map.ts';
export { applyChange, describeChange, ChangeError, OperatorChangeSchema, type OperatorChange, type MapChange } from './changes.ts';
export { MapKeeper, type MapKeeperOptions, type KeeperLog, type OfferResult } from './keeper.ts';
export { initialMap } from './initial.ts';
