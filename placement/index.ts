/**
 * placement/: pure, synchronous placement functions over a topology map — the map model and
 * its canonical encoding, strict validation, map building and editing, compilation, and
 * rules (take / choose / chooseleaf, firstn / indep) with straw2 draws, exact multi-pick
 * corrections and minimal-movement grafts and replacements. No I/O, and nothing else of
 * Cairn's is imported here.
 */
export type { Bucket, Leaf, TopologyMap, Rule, Step, TakeStep, ChooseStep, EmitStep, Graft } from './map.ts';
export { MAP_FORMAT, NONE } from './map.ts';
export { MapValidationError, PlacementError, type MapErrorCode } from './errors.ts';
export { validateMap, validateRuleSteps, MAX_POSITIONS } from './validate.ts';
export { encodeMap, decodeMap, mapChecksum } from './encode.ts';
export type { CompiledMap } from './compile.ts';
export { compileMap } from './compile.ts';
export type { Placement, ReplicatedRule, RuleRef } from './rule.ts';
export { place, prepareRule, PreparedRule } from './rule.ts';
export type { HostSpec, DeviceSpec, GenerateSpec } from './build.ts';
export {
  buildMap,
  generateMap,
  parseWeightSpec,
  defaultRules,
  partitionLeafId,
  decodePartitionLeafId,
  hostBucketId,
  rackBucketId,
  deviceBucketId,
} from './build.ts';
export { addHosts, removeHost, setLeafWeight, setLeafState, compactMap } from './edit.ts';
export { hash3, hashBytes } from './hash.ts';
export { straw2Index } from './straw2.ts';
export { inclusionProbabilities, solveCorrections, type Corrections } from './corrections.ts';
export { mapKeys, utilization, movement, type Mappings, type Utilization, type Movement } from './analysis.ts';
