import { Args, Command, Flags } from '@oclif/core';
import { apiFlags } from '../../lib/api.ts';
import { parseSize } from '../../lib/size.ts';
import { apiDo, volumeLines, type ApiVolume } from '../../lib/volumes.ts';

/** `cairn volume resize NAME SIZE`: grows online; shrinking needs --allow-shrink. */
export default class VolumeResize extends Command {
  static override summary = 'Resize a volume: grow online (hosts see it: NBD on reconnect, NVMe by a namespace-changed notice); shrink only with --allow-shrink.';
  static override description = 'Exit status: 0 done; 2 bad size; 3 no such volume; 4 a shrink without --allow-shrink, or the volume changed meanwhile; 5 no room for a thick volume.';
  static override examples = ['<%= config.bin %> volume resize db1 20GiB', '<%= config.bin %> volume resize db1 5GiB --allow-shrink'];
  static override args = {
    name: Args.string({ description: 'Volume name', required: true }),
    size: Args.string({ description: 'New size (binary units or bytes)', required: true }),
  };
  static override flags = { ...apiFlags, 'allow-shrink': Flags.boolean({ summary: 'Allow a smaller size: data past the new end is lost.', default: false }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(VolumeResize);
    let size: number;
    try {
      size = parseSize(args.size);
    } catch (e) {
      this.error((e as Error).message, { exit: 2 });
    }
    const v = await apiDo(this, flags, (api) => api.call<ApiVolume>('PATCH', `/v1/volumes/${encodeURIComponent(args.name)}`, { size, allowShrink: flags['allow-shrink'] }));
    if (flags.json) this.log(JSON.stringify(v, null, 2));
    else for (const l of volumeLines(v)) this.log(l);
  }
}
