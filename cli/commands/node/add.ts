import { Command, Flags } from '@oclif/core';
import { resolve } from 'node:path';
import { apiFlags, clusterApi, type ClusterApi } from '../../lib/api.ts';
import { formatSize, sizeFlag } from '../../lib/size.ts';

/**
 * `cairn node add`: adds a storage node to a running cluster. By default the node runs here,
 * under the running `cairn up`: its device files are created (sparse) under --data-dir, the
 * `add-node` change is submitted through the management API, and the `cairn up` on that data
 * directory — which watches the map — starts and supervises the node; the command waits until
 * the map marks it up. With --no-start only the change is submitted (nothing is written
 * locally) and the command prints how to start the node, e.g. on another machine with
 * `cairn node start`. Errors are one line on stderr, exit 1.
 */
export default class NodeAdd extends Command {
  static override summary = 'Add a storage node to a running cluster: a new map epoch; `cairn up` starts it (or start it yourself with --no-start).';
  static override description =
    'The new node takes the next free id, free ports and, unless told otherwise, as many devices of the same size and partitions as node 0. ' +
    'It holds no data yet: placement moves extents onto it. Without --no-start, --data-dir must be the data directory of the running `cairn up`, ' +
    'which starts the node; the command waits until the map marks it up.';
  static override examples = [
    '<%= config.bin %> node add',
    '<%= config.bin %> node add --devices 4 --device-size 8GiB',
    '<%= config.bin %> node add --api http://10.0.0.1:7100 --token $CAIRN_TOKEN --host 10.0.0.5 --no-start',
  ];
  static override flags = {
    ...apiFlags,
    devices: Flags.integer({ summary: 'Devices (files) of the new node (default: as node 0).', min: 1, max: 256 }),
    'device-size': sizeFlag({ summary: 'Size of each device file, sparse (default: as node 0).' }),
    partitions: Flags.integer({ summary: 'Partitions per device (default: as node 0).', min: 1, max: 256 }),
    host: Flags.string({ summary: 'Address the node listens on and is reached at (default: node 0\'s).' }),
    port: Flags.integer({ summary: 'Data-path TCP port (default: a free one on --host).', min: 1, max: 65535 }),
    'gossip-port': Flags.integer({ summary: 'Gossip TCP port (default: a free one on --host).', min: 1, max: 65535 }),
    'api-port': Flags.integer({ summary: 'Management API TCP port (default: a free one on --host).', min: 1, max: 65535 }),
    start: Flags.boolean({ summary: 'Have the running `cairn up` on --data-dir start the node and wait until it is up (--no-start: only add it to the map).', default: true, allowNo: true }),
    timeout: Flags.integer({ summary: 'Seconds to wait for the node to be marked up.', default: 60, min: 1, max: 3600 }),
  };

  /** Prints `msg` as one line on stderr and exits 1. */
  private fail(msg: string): never {
    process.stderr.write(`cairn node add: ${msg.replace(/\s+/g, ' ').trim()}\n`);
    return this.exit(1);
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(NodeAdd);
    const { addNodeToMap, waitNodeUp } = await import('../../../src/cluster/add-node.ts');
    const { loadConfig } = await import('../../../src/config/index.ts');
    const { ApiError } = await import('../../../src/api/client.ts');
    const dataDir = resolve(flags['data-dir']);
    let api: ClusterApi;
    try {
      api = await clusterApi(flags);
    } catch (e) {
      return this.fail((e as Error).message);
    }
    let token = flags.token;
    if (flags.start) {
      // The node's files go where the running `cairn up` looks for them.
      const config = await loadConfig(dataDir).catch((e: Error) => this.fail(e.message));
      if (!config) return this.fail(`${dataDir} holds no cluster.json: without --no-start, --data-dir must be the data directory of the running \`cairn up\` (it starts the node)`);
      if (flags.api && flags.token !== config.token) return this.fail(`the cluster in ${dataDir} is not the one at ${flags.api} (different token)`);
      token = config.token;
    }
    let added: Awaited<ReturnType<typeof addNodeToMap>>;
    try {
      added = await addNodeToMap(api, {
        devices: flags.devices,
        deviceBytes: flags['device-size'],
        partitions: flags.partitions,
        host: flags.host,
        port: flags.port,
        gossipPort: flags['gossip-port'],
        apiPort: flags['api-port'],
        dataDir: flags.start ? dataDir : undefined,
      });
    } catch (e) {
      if (e instanceof ApiError && e.status === 0) return this.fail(`no running cluster: ${e.message}`);
      return this.fail((e as Error).message);
    }
    const n = added.node;
    const where = `data ${n.host}:${n.port}, gossip ${n.host}:${n.gossipPort}, API http://${n.host}:${n.apiPort}`;
    const layout = `${n.devices.length} device${n.devices.length === 1 ? '' : 's'} of ${formatSize(n.devices[0].sizeBytes)}, ${n.devices[0].partitions} partitions each`;
    if (!flags.start) {
      // Where a node joining from elsewhere fetches the map the first time.
      const map = await api.call<{ servedBy?: number; nodes: Array<{ id: number; host: string; apiPort: number }> }>('GET', '/v1/map').catch(() => null);
      const served = map?.nodes.find((x) => x.id === map.servedBy);
      const join = flags.api ?? (served ? `http://${served.host}:${served.apiPort}` : 'http://HOST:API-PORT');
      if (flags.json) {
        this.log(JSON.stringify({ node: n, epoch: added.epoch, up: false, join }));
        return;
      }
      this.log(`Node ${n.id} added to the map (epoch ${added.epoch}), down until it starts: ${layout}; ${where}.`);
      this.log(`Start it on ${n.host}, with a copy of this cluster's cluster.json in its data directory:`);
      this.log(`  cairn node start --data-dir DIR --node ${n.id} --join ${join}`);
      return;
    }
    if (!flags.json) {
      this.log(`Node ${n.id} added to the map (epoch ${added.epoch}): ${layout}.`);
      this.log(`Waiting for the cairn up on ${dataDir} to start it ...`);
    }
    const up = await waitNodeUp(api, n.id, flags.timeout * 1000, { token });
    if (!up) {
      return this.fail(`node ${n.id} is in the map but not up after ${flags.timeout} s: is \`cairn up --data-dir ${flags['data-dir']}\` running? (see ${dataDir}/logs/node${n.id}.log)`);
    }
    if (flags.json) {
      this.log(JSON.stringify({ node: n, epoch: up.epoch, up: true }));
      return;
    }
    this.log(`Node ${n.id} is up (map epoch ${up.epoch}): ${where}.`);
  }
}
