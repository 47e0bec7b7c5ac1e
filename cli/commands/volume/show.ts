import { Args, Command } from '@oclif/core';
import { apiFlags } from '../../lib/api.ts';
import { apiDo, volumeLines, type ApiVolume } from '../../lib/volumes.ts';

/** `cairn volume show NAME`. */
export default class VolumeShow extends Command {
  static override summary = 'Show one volume: size, used bytes, pool, snapshots, parent.';
  static override examples = ['<%= config.bin %> volume show db1'];
  static override args = { name: Args.string({ description: 'Volume name', required: true }) };
  static override flags = { ...apiFlags };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(VolumeShow);
    const v = await apiDo(this, flags, (api) => api.call<ApiVolume>('GET', `/v1/volumes/${encodeURIComponent(args.name)}`));
    if (flags.json) this.log(JSON.stringify(v, null, 2));
    else for (const l of volumeLines(v)) this.log(l);
  }
}
