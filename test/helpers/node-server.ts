/**
 * One real NodeServer in the test's own process, on 127.0.0.1 with one 8 MiB partition in a
 * temporary directory, a map view the test controls, and a WireClient connected to it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { partitionLeafId } from '../../placement/index.ts';
import type { ClusterMap } from '../../src/clustermap/index.ts';
import type { ClusterConfig, NodeConfig } from '../../src/config/index.ts';
import { NodeServer, NodeStorage, type NodeMapView } from '../../src/node/index.ts';
import { MissedLog } from '../../src/recovery/index.ts';
import { WireClient } from '../../src/wire/index.ts';

/** A running in-process node: its server, a connected client, its partition's leaf id. */
export interface InProcessNode {
  server: NodeServer;
  client: WireClient;
  leaf: number;
  /** Closes the client, the server, the missed log and the storage; removes the directory. */
  close(): Promise<void>;
}

/**
 * A static map view at `epoch` (node 0 up) for nodes whose epoch never changes.
 */
export function staticMap(epoch: number): NodeMapView {
  return {
    epoch: () => epoch,
    ensure: async () => false,
    address: () => undefined,
    map: () => ({ epoch, nodes: [{ id: 0, up: true }], topology: { leaves: [] } }) as unknown as ClusterMap,
  };
}

/** Starts node 0 with `map`, peered with nobody (current at once), and connects a client. */
export async function startInProcessNode(map: NodeMapView): Promise<InProcessNode> {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-node-'));
  const node: NodeConfig = { id: 0, host: '127.0.0.1', port: 1, devices: [{ path: 'dev0.img', sizeBytes: 8 << 20, partitions: 1 }] };
  const storage = await NodeStorage.open(node, dir);
  const config = { token: 't'.repeat(32), nodes: [node], pools: [], volumes: [] } as unknown as ClusterConfig;
  const missed = await MissedLog.open(join(dir, 'missed.log'));
  const server = new NodeServer({ config, nodeId: 0, storage, log: pino({ level: 'silent' }), map, missed });
  server.onMap();
  const port = await server.listen('127.0.0.1', 0);
  const client = new WireClient({ host: '127.0.0.1', port, token: config.token });
  await client.connect();
  return {
    server,
    client,
    leaf: partitionLeafId(0, 0, 0),
    close: async () => {
      client.close();
      await server.close();
      await missed.close();
      await storage.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
