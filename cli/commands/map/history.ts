import { Command } from '@oclif/core';
import type { HistoryEntry } from '../../../src/authority/index.ts';
import { apiFlags, clusterApi, table } from '../../lib/api.ts';

/** `cairn map history`: every epoch of the map, oldest first. */
export default class MapHistory extends Command {
  static override summary = 'List every epoch of the cluster map with its time, checksum and change.';
  static override examples = ['<%= config.bin %> map history'];
  static override flags = apiFlags;

  async run(): Promise<void> {
    const { flags } = await this.parse(MapHistory);
    let r: { epochs: HistoryEntry[] };
    try {
      r = await (await clusterApi(flags)).call('GET', '/v1/map/history');
    } catch (e) {
      this.error((e as Error).message, { exit: 1 });
    }
    if (flags.json) {
      this.log(JSON.stringify(r.epochs, null, 2));
      return;
    }
    this.log(table(['EPOCH', 'TIME', 'CHECKSUM', 'CHANGE'], r.epochs.map((e) => [
      String(e.epoch), e.createdAt ? new Date(e.createdAt).toISOString() : '-', e.checksum.toString(16).padStart(8, '0'), e.change,
    ])));
  }
}
