import { Args, Command, Flags } from '@oclif/core';
import { apiFlags } from '../../lib/api.ts';
import { sizeFlag } from '../../lib/size.ts';
import { apiDo, volumeLines, type ApiVolume } from '../../lib/volumes.ts';

/** `cairn volume create NAME --size S`: creates a volume in the catalog (idempotent). */
export default class VolumeCreate extends Command {
  static override summary = 'Create a volume (thin by default; --thick reserves its whole size now).';
  static override description = 'Running it again with the same name and properties succeeds and changes nothing. Exit status: 0 created or already there; 2 bad name or size; 4 the name exists with other properties; 5 a thick volume the cluster cannot hold; 1 cluster unreachable.';
  static override examples = ['<%= config.bin %> volume create db1 --size 10GiB', '<%= config.bin %> volume create scratch --size 512MiB --thick --pool 0'];
  static override args = { name: Args.string({ description: 'Volume name: letters, digits, . _ - (up to 128)', required: true }) };
  static override flags = {
    ...apiFlags,
    size: sizeFlag({ summary: 'Size, with binary units (10GiB, 512M) or bytes; a multiple of 4 KiB.', required: true }),
    thick: Flags.boolean({ summary: 'Reserve the whole size now (fails when the cluster cannot hold it).', default: false }),
    pool: Flags.integer({ summary: 'Pool id.', default: 0, min: 0 }),
    'allow-host': Flags.string({ summary: 'Host NQN allowed to attach it over NVMe/TCP (repeatable; default: any host).', multiple: true }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(VolumeCreate);
    const v = await apiDo(this, flags, (api) => api.call<ApiVolume>('POST', '/v1/volumes', { name: args.name, size: flags.size, pool: flags.pool, thick: flags.thick, ...(flags['allow-host']?.length ? { allowHosts: flags['allow-host'] } : {}) }));
    if (flags.json) this.log(JSON.stringify(v, null, 2));
    else for (const l of volumeLines(v)) this.log(l);
  }
}
