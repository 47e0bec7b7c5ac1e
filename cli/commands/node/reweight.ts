import { Args, Command, Flags } from '@oclif/core';
import { apiFlags } from '../../lib/api.ts';
import { submitChange } from '../../lib/change.ts';

/** `cairn node reweight ID WEIGHT`: sets a node's (or device's) weight factor, 0..1. */
export default class NodeReweight extends Command {
  static override summary = 'Set the weight factor (0..1) of a storage node or one of its devices: a new map epoch.';
  static override examples = ['<%= config.bin %> node reweight 2 0.5', '<%= config.bin %> node reweight 2 0.8 --device 0'];
  static override args = {
    id: Args.integer({ description: 'Node id', required: true, min: 0, max: 32767 }),
    weight: Args.string({ description: 'Weight factor between 0 and 1', required: true }),
  };
  static override flags = { ...apiFlags, device: Flags.integer({ summary: 'Only this device of the node.', min: 0, max: 255 }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(NodeReweight);
    const weight = Number(args.weight);
    if (!(weight >= 0 && weight <= 1)) this.error(`weight must be a number between 0 and 1, got '${args.weight}'`, { exit: 2 });
    await submitChange(this, flags, { type: 'reweight', node: args.id, weight, ...(flags.device !== undefined ? { device: flags.device } : {}) });
  }
}
