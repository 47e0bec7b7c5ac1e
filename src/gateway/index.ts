/**
 * src/gateway: serving the catalog's volumes to hosts — attaching them by name (leases,
 * clones, snapshot views), NBD exports and one NVMe/TCP subsystem per volume, following
 * creates, deletes and resizes.
 */
export { ApiPool } from './api-pool.ts';
export { LazyDevice } from './lazy-device.ts';
export { VolumeSet, type Attached, type CatalogVolume, type VolumeSetOptions } from './volume-set.ts';
export { NvmfVolumes, nbdExports, type NvmfVolumesOptions } from './frontends.ts';
