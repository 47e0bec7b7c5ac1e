/**
 * src/initiator: turns volume I/O into placed requests — cluster view (map, placement
 * cache), the map follower (gossip), the Volume block device.
 */
import { entryPath } from '../runtime/index.ts';
export { ClusterView, PlacementError, extentPlacementInput, fixedViews, type ViewSource } from './cluster-view.ts';
export { MapFollower, type MapFollowerOptions } from './map-follower.ts';
export { DEFAULT_IO_TIMEOUT_MS, Volume, type VolumeOptions, type VolumeCounters, type VolumeLog } from './volume.ts';
export { WriteGate } from './write-gate.ts';
export { SnapshotView, type SnapshotViewOptions, type SnapshotViewCounters } from './snapshot-view.ts';
export { pinSnapshot, unpinSnapshot, type PinResult, type NodeFailure } from './snapshot-pins.ts';
export { ClonedVolume, type CloneParent, type ClonedVolumeOptions } from './clone-volume.ts';
export { extentVersions, heldExtents } from './extent-versions.ts';
export { MemberIo, type MemberIoContext, type ReadPolicy, type Segment } from './member-io.ts';

/** Path of the stand-alone initiator control-plane process's entry (follower-main.ts). */
export const FOLLOWER_MAIN = entryPath('./follower-main', import.meta.url);
export { grantLease, takeWriteLease, LeaseError } from './lease.ts';
