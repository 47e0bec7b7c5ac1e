/**
 * What every part of a chaos run shares: the local cluster, the volume under test, the
 * gateway, and small helpers to reach a node's management API or data path.
 */
import { ApiClient } from '../../src/api/index.ts';
import type { LocalCluster } from '../../src/cluster/index.ts';
import type { MapNode } from '../../src/clustermap/index.ts';
import type { PoolConfig, VolumeConfig } from '../../src/config/index.ts';
import { WireClient } from '../../src/wire/index.ts';
import type { GatewayProcess } from './gateway-process.ts';

/** The shared state of a chaos run. */
export interface ChaosContext {
  cluster: LocalCluster;
  dataDir: string;
  volume: VolumeConfig;
  pool: PoolConfig;
  gateway: GatewayProcess;
  /** Membership timing in force (ms). */
  downAfterMs: number;
  /** Longest wait for the cluster to heal after a fault (ms). */
  healTimeoutMs: number;
  /** A progress line on stderr. */
  log: (line: string) => void;
}

/** Nodes of the newest map the run's initiator holds. */
export function mapNodes(ctx: ChaosContext): MapNode[] {
  return ctx.cluster.view.map.nodes;
}

/** The management API client of node `id` (address from the current map, else cluster.json). */
export function api(ctx: ChaosContext, id: number, timeoutMs = 5000): ApiClient {
  const n = mapNodes(ctx).find((x) => x.id === id) ?? ctx.cluster.config.nodes.find((x) => x.id === id);
  if (!n) throw new Error(`node ${id} is in neither the map nor cluster.json`);
  return new ApiClient(`http://${n.host}:${n.apiPort}`, ctx.cluster.config.token, timeoutMs);
}

/** Id of the node running the map authority (node 0 unless cluster.json says otherwise). */
export function authorityNode(ctx: ChaosContext): number {
  return ctx.cluster.config.authority?.node ?? 0;
}

/** Data-path connections to the nodes, by node id, opened on demand and reopened when dropped. */
export class WirePeers {
  private readonly clients = new Map<number, WireClient>();

  /** Connections of `ctx`'s cluster. */
  constructor(private readonly ctx: ChaosContext) {}

  /** The connection to node `node`. @throws Error when it has no address or cannot be reached. */
  async get(node: number): Promise<WireClient> {
    let c = this.clients.get(node);
    if (!c || !c.alive) {
      const a = this.ctx.cluster.view.address(node);
      if (!a) throw new Error(`node ${node} is not in the map`);
      c = new WireClient({ host: a.host, port: a.port, token: this.ctx.cluster.config.token, timeoutMs: 30000 });
      await c.connect();
      this.clients.set(node, c);
    }
    return c;
  }

  /** Closes every connection. */
  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
