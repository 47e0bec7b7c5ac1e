/**
 * src/catalog: volume and snapshot records placed and replicated like data (no directory),
 * updated by compare-and-swap; the volume, snapshot and clone operations on them.
 */
export { CATALOG_POOL, CATALOG_VOLUME, INDEX_SHARDS, RECORD_MAX_PAGES, catalogExtent, indexKey, snapshotKey, volumeKey } from './keys.ts';
export { RECORD_MAX_BODY, RecordFormatError, decodeRecord, encodeRecord, type StoredRecord } from './record-codec.ts';
export { CatalogConflictError, CatalogStore, CatalogUnavailableError, type CatalogStoreOptions } from './store.ts';
export { NAME_PATTERN, nameProblem, type ParentRef, type SnapshotRecord, type VolumeRecord } from './records.ts';
export { CatalogError } from './errors.ts';
export { JobTracker, type Job, type JobProgress } from './jobs.ts';
export { LeaseCoordinator, LeaseTakenError, type LeaseLedgerAccess } from './lease-coordinator.ts';
export { VolumeDataOps, volumeConfigOf, type VolumeDataOpsOptions } from './data-ops.ts';
export { DEFAULT_EXTENT_BYTES, MAX_VOLUME_BYTES, VolumeCatalog, type CatalogDataOps, type CreateVolume, type Versioned, type VolumeCatalogOptions } from './volumes.ts';
