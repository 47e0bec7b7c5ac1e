/**
 * Generated maps of about 40, 1,000 and 10,000 leaves (flat and racked, uniform and mixed
 * weights) shared by the property tests, and small helpers around them.
 */
import { addHosts, compileMap, decodePartitionLeafId, generateMap, mapKeys, parseWeightSpec, prepareRule, type Mappings, type TopologyMap } from '../../placement/index.ts';

/** A generated map and how it was made. */
export interface Fixture {
  name: string;
  map: TopologyMap;
  hosts: number;
  racks: number;
  devices: number;
  partitions: number;
}

function fixture(name: string, hosts: number, devices: number, partitions: number, racks = 0, weights?: string): Fixture {
  return { name, hosts, racks, devices, partitions, map: generateMap({ hosts, devices, partitions, racks, weights: weights ? parseWeightSpec(weights) : undefined }) };
}

/** The maps: 40 leaves (10 hosts x 4 partitions, as in the CRUSH figures), 1,000 and 10,000. */
export const FIXTURES: Fixture[] = [
  fixture('flat40', 10, 1, 4),
  fixture('mixed40', 10, 1, 4, 0, '1x5,2x5'),
  fixture('racks40', 10, 1, 4, 2),
  fixture('flat1000', 50, 4, 5),
  fixture('racks1000', 50, 4, 5, 5),
  fixture('flat10000', 500, 4, 5),
  fixture('racks10000', 500, 4, 5, 20),
];

/** The map with one more host like the others (in the last rack for racked maps). */
export function withHostAdded(f: Fixture): TopologyMap {
  return addHosts(f.map, [{ id: f.hosts, rack: f.racks > 0 ? f.racks - 1 : undefined, devices: Array.from({ length: f.devices }, () => ({ capacityBytes: 2 ** 40, partitions: f.partitions })) }]);
}

/** Mappings of keys first..first+keys-1 under `rule` with pool size `size`. */
export function mappings(map: TopologyMap, rule: string, size: number, keys: number, first = 0): Mappings {
  return mapKeys(prepareRule(compileMap(map), rule, size), first, keys);
}

/** Host number of a leaf id (build id scheme). */
export function hostOf(leaf: number): number {
  return decodePartitionLeafId(leaf).host;
}

/** Leaf id -> weight for leaves that are up and in. */
export function weightsOf(map: TopologyMap): Map<number, number> {
  return new Map(map.leaves.filter((l) => l.up && l.in).map((l) => [l.id, l.weight]));
}
