/**
 * placement/: pure, synchronous placement functions over a topology map. No I/O, and
 * nothing else of Cairn's is imported here.
 */
export type { Bucket, Leaf, TopologyMap } from './map.ts';
export { MapValidationError, validateMap } from './map.ts';
export type { CompiledMap, CompiledBucket } from './compile.ts';
export { compileMap } from './compile.ts';
export type { Rule, Placement } from './rule.ts';
export { place } from './rule.ts';
export type { HostSpec, DeviceSpec } from './build.ts';
export { buildMap, partitionLeafId, decodePartitionLeafId } from './build.ts';
export { hash3, hashBytes } from './hash.ts';
export { straw2Index } from './straw2.ts';
