import { Command } from '@oclif/core';
import { apiFlags } from '../../lib/api.ts';
import { apiDo, volumeTable, type ApiVolume } from '../../lib/volumes.ts';

/** `cairn volume list`: every volume in the catalog. */
export default class VolumeList extends Command {
  static override summary = 'List volumes: size, used, pool, provisioning, snapshots, parent.';
  static override examples = ['<%= config.bin %> volume list', '<%= config.bin %> volume list --json'];
  static override flags = { ...apiFlags };

  async run(): Promise<void> {
    const { flags } = await this.parse(VolumeList);
    const r = await apiDo(this, flags, (api) => api.call<{ volumes: ApiVolume[] }>('GET', '/v1/volumes'));
    if (flags.json) this.log(JSON.stringify(r.volumes, null, 2));
    else this.log(r.volumes.length ? volumeTable(r.volumes) : 'no volumes (create one with `cairn volume create NAME --size 10GiB`)');
  }
}
