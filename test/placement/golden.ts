/**
 * The golden-vector cases: maps, rules and inputs whose placements are pinned in
 * golden.json. `node --import tsx test/placement/golden.ts` prints them (used once to write
 * golden.json, and by the determinism test in a fresh process).
 */
import { addHosts, compileMap, generateMap, parseWeightSpec, place, setLeafState, setLeafWeight, type TopologyMap } from '../../placement/index.ts';

/** Named maps covering flat, racked, mixed-weight, grafted and drained cases. */
export function goldenMaps(): Record<string, TopologyMap> {
  const m40 = generateMap({ hosts: 10, devices: 1, partitions: 4 });
  const edited = setLeafState(setLeafWeight(addHosts(m40, [{ id: 10, devices: [{ capacityBytes: 2 ** 40, partitions: 4 }] }]), 3, 0), 65537, { up: false });
  return {
    flat40: m40,
    mixed40: generateMap({ hosts: 10, devices: 1, partitions: 4, weights: parseWeightSpec('1x5,2x5') }),
    racks1000: generateMap({ hosts: 50, devices: 4, partitions: 5, racks: 5 }),
    racks10000: generateMap({ hosts: 500, devices: 4, partitions: 5, racks: 20 }),
    edited40: edited,
  };
}

/** Inputs of the golden vectors. */
export const GOLDEN_INPUTS = [0, 1, 2, 3, 42, 1000, 65535, 123456789, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

/** Placements of every golden case: map -> "rule/size" -> x -> members. */
export function goldenVectors(): Record<string, Record<string, number[][]>> {
  const out: Record<string, Record<string, number[][]>> = {};
  for (const [name, map] of Object.entries(goldenMaps())) {
    const cm = compileMap(map);
    out[name] = {};
    for (const [rule, size] of [
      ['replicated', 3],
      ['erasure', 6],
    ] as const) {
      out[name][`${rule}/${size}`] = GOLDEN_INPUTS.map((x) => place(cm, rule, x, size).members);
    }
  }
  return out;
}

if (process.argv[1]?.endsWith('golden.ts')) process.stdout.write(`${JSON.stringify(goldenVectors())}\n`);
