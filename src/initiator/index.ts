/**
 * src/initiator: turns volume I/O into placed requests — cluster view (map, placement
 * cache), the Volume block device, and attaching a volume by name.
 */
export { ClusterView, PlacementError, extentPlacementInput } from './cluster-view.ts';
export { Volume, type VolumeOptions } from './volume.ts';
export { WriteGate } from './write-gate.ts';
