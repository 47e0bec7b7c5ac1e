/**
 * src/gateway: serving cluster volumes to hosts (the cluster glue around the protocol-only
 * src/nvmf and src/nbd) — the catalog's volumes attached by name (leases, clones, snapshot
 * views) as NBD exports and one NVMe/TCP subsystem per volume, following creates, deletes
 * and resizes (volume-set.ts, frontends.ts); and the single-volume NVMe/TCP gateway process
 * (gateway.ts, ClusterLeasedVolume; entry main.ts, started by `cairn export nvmf`).
 */
import { entryPath } from '../runtime/index.ts';
export { ApiPool } from './api-pool.ts';
export { LazyDevice } from './lazy-device.ts';
export { VolumeSet, type Attached, type CatalogVolume, type VolumeSetOptions } from './volume-set.ts';
export { NvmfVolumes, nbdExports, type NvmfVolumesOptions } from './frontends.ts';
export { ClusterLeasedVolume } from './cluster-volume.ts';
export { ClusterSpace } from './cluster-space.ts';
export { startGateway, defaultCntlidRange, parseHostPort, parseRemotePath, type Gateway, type GatewayOptions, type GatewaySource } from './gateway.ts';

/** Path of the single-volume gateway process's entry (main.ts), for spawning it. */
export const GATEWAY_MAIN = entryPath('./main', import.meta.url);
