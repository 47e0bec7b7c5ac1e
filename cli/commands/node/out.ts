import { Args, Command, Flags } from '@oclif/core';
import { apiFlags } from '../../lib/api.ts';
import { submitChange } from '../../lib/change.ts';

/** `cairn node out ID`: marks a node (or one of its devices) out of data placement. */
export default class NodeOut extends Command {
  static override summary = 'Mark a storage node (or one device of it) out of data placement: a new map epoch.';
  static override examples = ['<%= config.bin %> node out 2', '<%= config.bin %> node out 2 --device 1'];
  static override args = { id: Args.integer({ description: 'Node id', required: true, min: 0, max: 32767 }) };
  static override flags = { ...apiFlags, device: Flags.integer({ summary: 'Only this device of the node.', min: 0, max: 255 }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(NodeOut);
    await submitChange(this, flags, { type: 'out', node: args.id, ...(flags.device !== undefined ? { device: flags.device } : {}) });
  }
}
