import { Command } from '@oclif/core';
import type { NodeRow } from '../../../src/api/index.ts';
import { apiFlags, clusterApi, table } from '../../lib/api.ts';
import { formatSize } from '../../lib/size.ts';

/** `cairn node list`: every storage node with its state and space. */
export default class NodeList extends Command {
  static override summary = 'List storage nodes: id, address, up/down, in/out, weight, capacity and usage.';
  static override examples = ['<%= config.bin %> node list'];
  static override flags = apiFlags;

  async run(): Promise<void> {
    const { flags } = await this.parse(NodeList);
    let r: { epoch: number; nodes: NodeRow[] };
    try {
      r = await (await clusterApi(flags)).call('GET', '/v1/nodes');
    } catch (e) {
      this.error((e as Error).message, { exit: 1 });
    }
    if (flags.json) {
      this.log(JSON.stringify(r, null, 2));
      return;
    }
    this.log(`map epoch ${r.epoch}`);
    this.log(table(['ID', 'ADDRESS', 'STATE', 'REWEIGHT', 'WEIGHT', 'CAPACITY', 'USED', 'LIVE', 'HEARTBEAT'], r.nodes.map((n) => [
      String(n.id), n.address, `${n.up ? 'up' : 'down'}/${n.in ? 'in' : 'out'}`, n.reweight.toFixed(2), n.weight.toFixed(5),
      formatSize(n.capacityBytes), formatSize(n.usedBytes), formatSize(n.liveBytes),
      n.heartbeatAgeMs === null ? '-' : `${(n.heartbeatAgeMs / 1000).toFixed(1)}s ago`,
    ])));
  }
}
