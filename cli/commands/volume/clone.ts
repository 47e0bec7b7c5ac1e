import { Args, Command } from '@oclif/core';
import { apiFlags } from '../../lib/api.ts';
import { apiDo, splitSnapshot, volumeLines, type ApiVolume } from '../../lib/volumes.ts';

/** `cairn volume clone VOL@SNAP NEW`. */
export default class VolumeClone extends Command {
  static override summary = 'Create a writable copy-on-write clone of a snapshot (reads fall through to the snapshot until flattened).';
  static override examples = ['<%= config.bin %> volume clone db1@golden db1-test'];
  static override args = {
    source: Args.string({ description: 'VOLUME@SNAPSHOT', required: true }),
    name: Args.string({ description: 'Name of the new volume', required: true }),
  };
  static override flags = { ...apiFlags };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(VolumeClone);
    let src: { volume: string; snapshot: string };
    try {
      src = splitSnapshot(args.source);
    } catch (e) {
      this.error((e as Error).message, { exit: 2 });
    }
    const v = await apiDo(this, flags, (api) => api.call<ApiVolume>('POST', `/v1/volumes/${encodeURIComponent(src.volume)}/snapshots/${encodeURIComponent(src.snapshot)}/clone`, { name: args.name }));
    if (flags.json) this.log(JSON.stringify(v, null, 2));
    else for (const l of volumeLines(v)) this.log(l);
  }
}
