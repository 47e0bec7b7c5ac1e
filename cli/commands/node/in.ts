import { Args, Command, Flags } from '@oclif/core';
import { apiFlags } from '../../lib/api.ts';
import { submitChange } from '../../lib/change.ts';

/** `cairn node in ID`: marks a node (or one of its devices) in, i.e. back in data placement (the reverse of `node out`). */
export default class NodeIn extends Command {
  static override summary = 'Mark a storage node (or one device of it) in: it takes part in data placement again; a new map epoch.';
  static override description = 'The reverse of `cairn node out`: placement picks the node (or device) again, and recovery moves its share of the data back to it.';
  static override examples = ['<%= config.bin %> node in 2', '<%= config.bin %> node in 2 --device 1'];
  static override args = { id: Args.integer({ description: 'Node id', required: true, min: 0, max: 32767 }) };
  static override flags = { ...apiFlags, device: Flags.integer({ summary: 'Only this device of the node.', min: 0, max: 255 }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(NodeIn);
    await submitChange(this, flags, { type: 'in', node: args.id, ...(flags.device !== undefined ? { device: flags.device } : {}) });
  }
}
