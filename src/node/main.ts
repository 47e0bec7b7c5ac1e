/**
 * Storage node daemon entry: `node --import tsx src/node/main.ts --data-dir DIR --node ID`.
 * Opens the node's partitions, serves the data path, and reports readiness to a parent
 * (IPC message {type: 'ready', port}) and on stdout. SIGTERM/SIGINT, or the parent going
 * away, stop it gracefully: in-flight requests finish and every partition is flushed.
 * While it runs, `<data-dir>/run/node<ID>.pid` holds its process id.
 */
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pino, destination } from 'pino';
import { loadConfig } from '../config/index.ts';
import { NodeServer } from './server.ts';
import { NodeStorage } from './storage.ts';

const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    node: { type: 'string' },
  },
});
const dataDir = values['data-dir'];
const nodeId = Number(values.node);
if (!dataDir || !Number.isInteger(nodeId)) {
  process.stderr.write('usage: main.ts --data-dir DIR --node ID\n');
  process.exit(2);
}

mkdirSync(join(dataDir, 'logs'), { recursive: true });
const log = pino({ base: { node: nodeId } }, destination({ dest: join(dataDir, 'logs', `node${nodeId}.log`), sync: true }));

const fail = (msg: string): never => {
  log.fatal(msg);
  log.flush();
  process.stderr.write(`cairn-node ${nodeId}: ${msg}\n`);
  process.exit(1);
};

const config = await loadConfig(dataDir).catch((e: Error) => fail(e.message));
if (!config) fail(`no cluster configuration in ${dataDir}`);
const me = config!.nodes.find((n) => n.id === nodeId) ?? fail(`node ${nodeId} is not in the cluster configuration`);

const storage = await NodeStorage.open(me, dataDir).catch((e: Error) => fail(`opening storage: ${e.message}`));
const server = new NodeServer({ config: config!, nodeId, storage, log });
const port = await server.listen(me.host, me.port).catch((e: Error) => fail(`listening on ${me.host}:${me.port}: ${e.message}`));
const pidFile = join(dataDir, 'run', `node${nodeId}.pid`);
mkdirSync(join(dataDir, 'run'), { recursive: true });
writeFileSync(pidFile, `${process.pid}\n`);
log.info({ port, partitions: storage.partitions.size }, 'ready');
process.stdout.write(`cairn-node ${nodeId} ready on ${me.host}:${port}\n`);
process.send?.({ type: 'ready', node: nodeId, port });

let stopping = false;
async function stop(reason: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ reason }, 'stopping');
  try {
    await server.close();
    await storage.close();
    rmSync(pidFile, { force: true });
    log.info('stopped');
    log.flush();
    process.exit(0);
  } catch (e) {
    fail(`shutdown: ${(e as Error).message}`);
  }
}
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
process.on('disconnect', () => void stop('parent went away'));
