import { Args, Command } from '@oclif/core';
import { apiFlags } from '../../lib/api.ts';
import { apiDo, type ApiSnapshot } from '../../lib/volumes.ts';

/** `cairn snapshot create VOL SNAP`. */
export default class SnapshotCreate extends Command {
  static override summary = 'Take an instant, crash-consistent, read-only snapshot of a volume (no data is copied).';
  static override examples = ['<%= config.bin %> snapshot create db1 before-upgrade'];
  static override args = {
    volume: Args.string({ description: 'Volume name', required: true }),
    name: Args.string({ description: 'Snapshot name', required: true }),
  };
  static override flags = { ...apiFlags };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SnapshotCreate);
    const t0 = performance.now();
    const s = await apiDo(this, flags, (api) => api.call<ApiSnapshot>('POST', `/v1/volumes/${encodeURIComponent(args.volume)}/snapshots`, { name: args.name }));
    if (flags.json) this.log(JSON.stringify(s, null, 2));
    else this.log(`snapshot ${s.volume}@${s.name} (${Math.round(performance.now() - t0)} ms); export it read-only as nbd://…/${s.volume}@${s.name}`);
  }
}
