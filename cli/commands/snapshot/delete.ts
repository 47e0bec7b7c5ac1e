import { Args, Command } from '@oclif/core';
import { apiFlags } from '../../lib/api.ts';
import { apiDo, splitSnapshot } from '../../lib/volumes.ts';

/** `cairn snapshot delete VOL@SNAP` (or `VOL SNAP`). */
export default class SnapshotDelete extends Command {
  static override summary = 'Delete a snapshot: its pins are released and the old versions become garbage for the cleaners.';
  static override description = 'Refused (exit 4) while clones of it are not flattened; the message names them.';
  static override examples = ['<%= config.bin %> snapshot delete db1@before-upgrade', '<%= config.bin %> snapshot delete db1 before-upgrade'];
  static override args = {
    volume: Args.string({ description: 'VOLUME@SNAPSHOT, or the volume name followed by the snapshot name', required: true }),
    name: Args.string({ description: 'Snapshot name (when the first argument is only the volume)' }),
  };
  static override flags = { ...apiFlags };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SnapshotDelete);
    let spec: { volume: string; snapshot: string };
    try {
      spec = args.name ? { volume: args.volume, snapshot: args.name } : splitSnapshot(args.volume);
    } catch (e) {
      this.error((e as Error).message, { exit: 2 });
    }
    await apiDo(this, flags, (api) => api.call('DELETE', `/v1/volumes/${encodeURIComponent(spec.volume)}/snapshots/${encodeURIComponent(spec.snapshot)}`));
    if (flags.json) this.log(JSON.stringify({ deleted: `${spec.volume}@${spec.snapshot}` }));
    else this.log(`snapshot ${spec.volume}@${spec.snapshot} deleted`);
  }
}
