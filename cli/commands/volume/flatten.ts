import { Args, Command, Flags } from '@oclif/core';
import { apiFlags } from '../../lib/api.ts';
import { apiDo, waitJob, type ApiJob } from '../../lib/volumes.ts';

/** `cairn volume flatten NAME`. */
export default class VolumeFlatten extends Command {
  static override summary = 'Flatten a clone: copy the rest of its parent snapshot so it no longer depends on it.';
  static override examples = ['<%= config.bin %> volume flatten db1-test'];
  static override args = { name: Args.string({ description: 'Clone name', required: true }) };
  static override flags = { ...apiFlags, wait: Flags.boolean({ summary: 'Wait for the job to end (default).', default: true, allowNo: true }) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(VolumeFlatten);
    const job = await apiDo(this, flags, async (api) => {
      const j = await api.call<ApiJob>('POST', `/v1/volumes/${encodeURIComponent(args.name)}/flatten`);
      return flags.wait ? waitJob(api, j, `flattening ${args.name}`) : j;
    });
    if (flags.json) this.log(JSON.stringify(job, null, 2));
    else this.log(flags.wait ? `volume ${args.name} flattened` : `flatten job ${job.id}`);
  }
}
