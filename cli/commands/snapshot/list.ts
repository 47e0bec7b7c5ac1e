import { Args, Command } from '@oclif/core';
import { apiFlags } from '../../lib/api.ts';
import { apiDo, snapshotTable, type ApiSnapshot } from '../../lib/volumes.ts';

/** `cairn snapshot list VOL`. */
export default class SnapshotList extends Command {
  static override summary = 'List the snapshots of a volume, with their clones.';
  static override examples = ['<%= config.bin %> snapshot list db1'];
  static override args = { volume: Args.string({ description: 'Volume name', required: true }) };
  static override flags = { ...apiFlags };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SnapshotList);
    const r = await apiDo(this, flags, (api) => api.call<{ snapshots: ApiSnapshot[] }>('GET', `/v1/volumes/${encodeURIComponent(args.volume)}/snapshots`));
    if (flags.json) this.log(JSON.stringify(r.snapshots, null, 2));
    else this.log(r.snapshots.length ? snapshotTable(r.snapshots) : `volume ${args.volume} has no snapshots`);
  }
}
