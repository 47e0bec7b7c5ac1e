import { Args, Flags } from '@oclif/core';
import { hashBytes, NONE } from '../../../placement/index.ts';
import { jsonFlag, loadMap, loadRule, PlacementCommand } from '../../lib/placement-files.ts';

/**
 * `cairn placement map`: where one key goes. KEY is a placement input (an unsigned 32-bit
 * integer) or any other string, which is hashed (xxHash32) into one.
 */
export default class PlacementMap extends PlacementCommand {
  static override summary = 'Show the leaves one key maps to.';
  static override examples = ['<%= config.bin %> placement map --map map40.json 12345', '<%= config.bin %> placement map --map map40.json --rule erasure --size 6 vol7/extent42'];
  static override args = {
    key: Args.string({ required: true, description: 'Placement input (0..4294967295) or a name to hash.' }),
  };
  static override flags = {
    map: Flags.string({ summary: 'Map file (canonical JSON).', required: true }),
    rule: Flags.string({ summary: 'Rule name or id.', default: 'replicated' }),
    size: Flags.integer({ summary: 'Pool size (replicas, or k+m).', default: 3, min: 1, max: 16 }),
    json: jsonFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(PlacementMap);
    const map = loadMap(flags.map);
    const { cm, pr } = loadRule(map, flags.rule, flags.size);
    let x: number;
    if (/^\d+$/.test(args.key)) {
      x = Number(args.key);
      if (x > 0xffffffff) this.error(`key ${args.key} is above 4294967295; quote a name to hash it instead`);
    } else {
      x = hashBytes(new TextEncoder().encode(args.key));
    }
    const out = new Int32Array(pr.width);
    const written = pr.placeInto(x, out);
    const members = Array.from(out.subarray(0, written));
    const missing = pr.indep ? members.filter((m) => m === NONE).length : pr.width - written;
    const named = members.map((id) => (id === NONE ? { id, name: null } : { id, name: map.leaves[cm.leafIndex.get(id)!].name }));
    if (flags.json) {
      this.printJson({ key: args.key, x, epoch: map.epoch, rule: pr.rule.name, size: flags.size, members: named, complete: missing === 0, missing });
    } else {
      this.log(`key ${args.key} (x=${x}) epoch ${map.epoch} rule ${pr.rule.name} size ${flags.size}:`);
      named.forEach((m, i) => this.log(`  ${i}: ${m.id === NONE ? 'NONE' : `${m.id} ${m.name}`}`));
      if (missing > 0) this.log(`  incomplete: ${missing} position(s) unfilled`);
    }
  }
}
