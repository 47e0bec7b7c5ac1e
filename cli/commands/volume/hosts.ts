import { Args, Command, Flags } from '@oclif/core';
import { apiFlags } from '../../lib/api.ts';
import { apiDo, volumeLines, type ApiVolume } from '../../lib/volumes.ts';

/** `cairn volume hosts NAME NQN... | --any`: the NVMe/TCP host allow-list of one volume. */
export default class VolumeHosts extends Command {
  static override summary = 'Set which NVMe/TCP hosts (host NQNs) may attach a volume; --any lifts the restriction.';
  static override description = 'Gateways apply the list to the volume\'s subsystem within a few seconds, for new connections.';
  static override examples = [
    '<%= config.bin %> volume hosts db1 nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427',
    '<%= config.bin %> volume hosts db1 --any',
  ];
  static override strict = false;
  static override args = {
    name: Args.string({ description: 'Volume name', required: true }),
    hosts: Args.string({ description: 'Host NQNs (one or more)' }),
  };
  static override flags = { ...apiFlags, any: Flags.boolean({ summary: 'Allow any host.', default: false }) };

  async run(): Promise<void> {
    const { args, argv, flags } = await this.parse(VolumeHosts);
    const hosts = (argv as string[]).slice(1);
    if (flags.any === hosts.length > 0) this.error('give host NQNs, or --any (not both)', { exit: 2 });
    const v = await apiDo(this, flags, (api) => api.call<ApiVolume>('PATCH', `/v1/volumes/${encodeURIComponent(args.name)}`, { allowHosts: hosts }));
    if (flags.json) this.log(JSON.stringify(v, null, 2));
    else for (const l of volumeLines(v)) this.log(l);
  }
}
