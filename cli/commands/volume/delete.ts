import { Args, Command, Flags } from '@oclif/core';
import { apiFlags } from '../../lib/api.ts';
import { apiDo, waitJob, type ApiJob } from '../../lib/volumes.ts';

/** `cairn volume delete NAME`: a background job trims it everywhere, then removes it. */
export default class VolumeDelete extends Command {
  static override summary = 'Delete a volume: every member trims its extents (space comes back), then the record goes.';
  static override description = 'Runs as a background job on the cluster; waits for it with progress unless --no-wait. Exit status: 0 done (or started); 3 no such volume; 4 it still has snapshots; 1 failed.';
  static override examples = ['<%= config.bin %> volume delete scratch', '<%= config.bin %> volume delete scratch --no-wait'];
  static override args = { name: Args.string({ description: 'Volume name', required: true }) };
  static override flags = { ...apiFlags, wait: Flags.boolean({ summary: 'Wait for the job to end (default; --no-wait returns at once).', default: true, allowNo: true }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(VolumeDelete);
    const job = await apiDo(this, flags, async (api) => {
      const j = await api.call<ApiJob>('DELETE', `/v1/volumes/${encodeURIComponent(args.name)}`);
      return flags.wait ? waitJob(api, j, `deleting ${args.name}`) : j;
    });
    if (flags.json) this.log(JSON.stringify(job, null, 2));
    else this.log(flags.wait ? `volume ${args.name} deleted` : `deleting volume ${args.name}: job ${job.id}`);
  }
}
