import { Args, Command, Flags } from '@oclif/core';
import { apiFlags } from '../../lib/api.ts';
import { apiDo, waitJob, type ApiJob } from '../../lib/volumes.ts';

/** `cairn volume rollback VOL SNAP`. */
export default class VolumeRollback extends Command {
  static override summary = 'Roll a volume back to one of its snapshots (its writer pauses while the job runs).';
  static override examples = ['<%= config.bin %> volume rollback db1 before-upgrade'];
  static override args = {
    name: Args.string({ description: 'Volume name', required: true }),
    snapshot: Args.string({ description: 'Snapshot name', required: true }),
  };
  static override flags = { ...apiFlags, wait: Flags.boolean({ summary: 'Wait for the job to end (default).', default: true, allowNo: true }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(VolumeRollback);
    const job = await apiDo(this, flags, async (api) => {
      const j = await api.call<ApiJob>('POST', `/v1/volumes/${encodeURIComponent(args.name)}/rollback`, { snapshot: args.snapshot });
      return flags.wait ? waitJob(api, j, `rolling ${args.name} back to ${args.snapshot}`) : j;
    });
    if (flags.json) this.log(JSON.stringify(job, null, 2));
    else this.log(flags.wait ? `volume ${args.name} rolled back to ${args.snapshot}` : `rollback job ${job.id}`);
  }
}
