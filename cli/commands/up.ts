import { Command, Flags } from '@oclif/core';

/** `cairn up`: starts a local cluster and exports a volume. */
export default class Up extends Command {
  static override summary = 'Start a local Cairn cluster and export a volume over NBD.';
  static override flags = {
    nodes: Flags.integer({ default: 3, summary: 'Storage nodes to start.' }),
  };
  async run(): Promise<void> {
    const { flags } = await this.parse(Up);
    this.log(`nodes ${flags.nodes}`);
  }
}
