import { Command, Flags } from '@oclif/core';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The storage node daemon's entry module. */
const NODE_MAIN = fileURLToPath(new URL(`../../../src/node/main${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

/**
 * `cairn node start`: runs one storage node in the foreground until Ctrl-C (or SIGTERM), when
 * it stops gracefully (the map marks it down first, in-flight requests finish, partitions are
 * flushed). The data directory
 * needs the cluster's cluster.json (it holds the cluster token and the authority's public key).
 * A node listed there starts as is; a node added later (`cairn node add --no-start`) finds its
 * entry in the newest map stored under the data directory, else fetches it from --join the
 * first time. Exits with the node daemon's exit code; errors are one line on stderr, exit 1.
 */
export default class NodeStart extends Command {
  static override summary = 'Run one storage node in the foreground (e.g. a node joining from another machine).';
  static override description =
    'To join a node on another machine: copy cluster.json (it holds the cluster credentials) into an empty data directory there, ' +
    'register the node with `cairn node add --no-start --host <its address>`, then run this command with --join and the API ' +
    'address of a running node. Once it has run, its map is stored in the data directory and --join is no longer needed. ' +
    'Ctrl-C or SIGTERM stops the node gracefully: it waits (at most 3 s) until the map marks it down, so hosts move their I/O ' +
    'to the other copies, then finishes what is in flight and flushes.';
  static override examples = [
    '<%= config.bin %> node start --data-dir /srv/cairn --node 3 --join http://10.0.0.1:7100',
    '<%= config.bin %> node start --data-dir /srv/cairn --node 3',
  ];
  static override flags = {
    'data-dir': Flags.string({ summary: 'Data directory holding cluster.json; the node\'s device files and logs go here.', default: '.cairn', env: 'CAIRN_DATA_DIR' }),
    node: Flags.integer({ summary: 'Id of the node to run.', required: true, min: 0, max: 32767 }),
    join: Flags.string({ summary: 'Management API of a running node (http://HOST:PORT), to learn this node\'s entry from the first time.' }),
  };

  /** Prints `msg` as one line on stderr and exits 1. */
  private fail(msg: string): never {
    process.stderr.write(`cairn node start: ${msg.replace(/\s+/g, ' ').trim()}\n`);
    return this.exit(1);
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(NodeStart);
    const { loadConfig } = await import('../../../src/config/index.ts');
    const dataDir = resolve(flags['data-dir']);
    const config = await loadConfig(dataDir).catch((e: Error) => this.fail(e.message));
    if (!config) return this.fail(`${dataDir} holds no cluster.json: copy the cluster's cluster.json there first`);
    if (flags.join && !/^https?:\/\/[^/\s]+\/?$/.test(flags.join)) return this.fail(`--join wants http://HOST:PORT, got '${flags.join}'`);
    if (!config.nodes.some((n) => n.id === flags.node)) {
      // A node of this data directory's cluster added later: start it from the newest map
      // stored here (e.g. the authority's, when this is the directory of `cairn up`).
      const { newestStoredMap, seedNodeMap } = await import('../../../src/cluster/node-set.ts');
      const newest = await newestStoredMap(dataDir, config).catch(() => null);
      if (newest?.map.nodes.some((n) => n.id === flags.node)) await seedNodeMap(dataDir, flags.node, newest);
    }
    // From the sources the node needs tsx; compiled (dist/) it runs as it is.
    const fromSource = NODE_MAIN.endsWith('.ts');
    const child = spawn(process.execPath, [...(fromSource ? ['--import', import.meta.resolve('tsx')] : []), NODE_MAIN, '--data-dir', dataDir, '--node', String(flags.node), ...(flags.join ? ['--join', flags.join] : [])], {
      // The IPC channel ties the node to this command: should this process die, the node stops too.
      stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    });
    // A terminal's Ctrl-C reaches the node too (same process group); a signal sent to this
    // process alone is passed on. Either way the node stops gracefully and we exit with it.
    const forward = (sig: NodeJS.Signals): void => {
      if (child.exitCode === null) child.kill(sig);
    };
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    const code = await new Promise<number>((r) => child.once('exit', (c, sig) => r(c ?? (sig === 'SIGINT' || sig === 'SIGTERM' ? 0 : 1))));
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
    if (code !== 0) this.exit(code);
  }
}
