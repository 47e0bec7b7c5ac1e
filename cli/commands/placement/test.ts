import { Flags } from '@oclif/core';
import { mapKeys, movement, utilization } from '../../../placement/index.ts';
import { jsonFlag, loadMap, loadRule, PlacementCommand } from '../../lib/placement-files.ts';

/**
 * `cairn placement test`: like `crushtool --test`. Maps --keys inputs, prints per-leaf
 * utilization statistics against the weights and the mapping rate; with --compare, also
 * maps the same inputs with a second map and reports the data moved against the optimum.
 */
export default class PlacementTest extends PlacementCommand {
  static override summary = 'Map many keys: utilization statistics, rate, and movement against a second map.';
  static override examples = [
    '<%= config.bin %> placement test --map map40.json --rule replicated --keys 100000',
    '<%= config.bin %> placement test --map map40.json --rule erasure --size 6 --keys 100000 --compare map44.json --json',
  ];
  static override flags = {
    map: Flags.string({ summary: 'Map file (canonical JSON).', required: true }),
    rule: Flags.string({ summary: 'Rule name or id.', default: 'replicated' }),
    size: Flags.integer({ summary: 'Pool size (replicas, or k+m).', default: 3, min: 1, max: 16 }),
    keys: Flags.integer({ summary: 'Number of inputs to map.', default: 100000, min: 1, max: 100_000_000 }),
    first: Flags.integer({ summary: 'First input.', default: 0, min: 0, max: 0xffffffff }),
    compare: Flags.string({ summary: 'Second map file: report movement from --map to it.' }),
    'per-leaf': Flags.boolean({ summary: 'Also list every leaf (count, expected).', default: false }),
    json: jsonFlag,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(PlacementTest);
    const map = loadMap(flags.map);
    const { cm, pr } = loadRule(map, flags.rule, flags.size);
    pr.placeInto(flags.first, new Int32Array(pr.width)); // build contexts before timing
    const t0 = process.hrtime.bigint();
    const a = mapKeys(pr, flags.first, flags.keys);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const weights = new Map(map.leaves.filter((l) => l.up && l.in).map((l) => [l.id, l.weight]));
    const u = utilization(a, weights);
    const incomplete = countIncomplete(a.leaves, a.width);
    const result: Record<string, unknown> = {
      map: flags.map,
      epoch: map.epoch,
      rule: pr.rule.name,
      size: flags.size,
      keys: flags.keys,
      mappingsPerSecond: Math.round(flags.keys / seconds),
      incomplete,
      utilization: {
        placements: u.placements,
        leaves: u.leaves,
        lambda: u.lambda,
        cv: u.cv,
        idealCv: u.idealCv,
        cvRatio: u.cvRatio,
        max: u.maxUtilization,
        min: u.minUtilization,
        onZeroWeight: u.onZeroWeight,
      },
    };
    if (flags['per-leaf']) {
      result.perLeaf = [...u.perLeaf].map(([id, v]) => ({ id, name: map.leaves[cm.leafIndex.get(id)!].name, count: v.count, expected: v.expected }));
    }
    if (flags.compare) {
      const other = loadMap(flags.compare);
      const b = mapKeys(loadRule(other, flags.rule, flags.size).pr, flags.first, flags.keys);
      const mv = movement(a, b);
      result.compare = { map: flags.compare, epoch: other.epoch, ...mv };
    }
    if (flags.json) {
      this.printJson(result);
      return;
    }
    this.log(`${flags.map} epoch ${map.epoch}, rule ${pr.rule.name}, size ${flags.size}: ${flags.keys} keys, ${result.mappingsPerSecond} mappings/s`);
    this.log(
      `  ${u.placements} placements on ${u.leaves} leaves (lambda ${u.lambda.toFixed(1)}); utilization CV ${u.cv.toFixed(5)} = ${u.cvRatio.toFixed(3)} x ideal ${u.idealCv.toFixed(5)}; min ${u.minUtilization.toFixed(4)} max ${u.maxUtilization.toFixed(4)}`,
    );
    if (incomplete > 0) this.log(`  ${incomplete} keys with unfilled positions`);
    if (u.onZeroWeight > 0) this.log(`  ${u.onZeroWeight} placements on leaves of weight 0`);
    if (result.perLeaf) for (const l of result.perLeaf as { id: number; name: string; count: number; expected: number }[]) this.log(`  leaf ${l.id} ${l.name}: ${l.count} (expected ${l.expected.toFixed(1)})`);
    if (flags.compare) {
      const c = result.compare as ReturnType<typeof movement>;
      this.log(
        `  vs ${flags.compare}: moved ${c.moved} of ${c.pairs} (key, slot) pairs (${(c.movedFraction * 100).toFixed(3)}%), optimum ${c.optimal}: ${c.ratio.toFixed(4)} x optimal (positional ${c.positionalRatio.toFixed(4)} x)`,
      );
    }
  }
}

function countIncomplete(leaves: Int32Array, width: number): number {
  let n = 0;
  for (let i = 0; i < leaves.length; i += width) {
    for (let k = 0; k < width; k++) {
      if (leaves[i + k] === -1) {
        n++;
        break;
      }
    }
  }
  return n;
}
