import { Args, Command } from '@oclif/core';
import { apiFlags } from '../../lib/api.ts';
import { apiDo, volumeLines, type ApiVolume } from '../../lib/volumes.ts';

/** `cairn volume rename NAME NEW`. */
export default class VolumeRename extends Command {
  static override summary = 'Rename a volume (its data and snapshots stay; hosts reattach by the new name).';
  static override examples = ['<%= config.bin %> volume rename db1 db1-old'];
  static override args = {
    name: Args.string({ description: 'Volume name', required: true }),
    newName: Args.string({ description: 'New name', required: true }),
  };
  static override flags = { ...apiFlags };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(VolumeRename);
    const v = await apiDo(this, flags, (api) => api.call<ApiVolume>('PATCH', `/v1/volumes/${encodeURIComponent(args.name)}`, { name: args.newName }));
    if (flags.json) this.log(JSON.stringify(v, null, 2));
    else for (const l of volumeLines(v)) this.log(l);
  }
}
