/**
 * A local cluster whose map authority is etcd (issue 14): the config change for a new data
 * directory, and the signing key every node needs (with etcd, any node may commit an epoch,
 * so each one signs with the cluster's authority key).
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { LocalEtcd, authorityKeyPath } from '../authority/index.ts';
import { loadConfig, type ClusterConfig } from '../config/index.ts';

/** Where LocalCluster finds the etcd cluster of a new data directory. */
export interface LocalEtcdAuthority {
  /** Client URLs of the etcd members. */
  endpoints: string[];
  /** Key prefix (default `/cairn/<clusterId>`). */
  prefix?: string;
  /** TTL of the membership leader's etcd lease, ms (default 3000). */
  leaderTtlMs?: number;
  /** Reporters needed to mark a node down (default 2). */
  minDownReporters?: number;
}

/**
 * Makes `config`'s (embedded, just provisioned) authority an etcd one and copies its key into
 * every node's directory. Mutates `config`.
 * @throws Error when the config has no authority yet, or the key file is missing.
 */
export function useEtcdAuthority(dataDir: string, config: ClusterConfig, etcd: LocalEtcdAuthority): void {
  const a = config.authority;
  if (!a) throw new Error('cluster.json has no authority to move to etcd');
  config.authority = {
    kind: 'etcd', node: a.node, publicKey: a.publicKey,
    etcd: {
      endpoints: etcd.endpoints, prefix: etcd.prefix ?? `/cairn/${config.clusterId}`,
      ...(etcd.leaderTtlMs !== undefined ? { leaderTtlMs: etcd.leaderTtlMs } : {}),
      ...(etcd.minDownReporters !== undefined ? { minDownReporters: etcd.minDownReporters } : {}),
    },
  };
  for (const n of config.nodes) ensureNodeKey(dataDir, config, n.id);
}

/**
 * With an etcd authority, copies the authority key into node `id`'s directory when it has
 * none (nodes added later need it too); no-op for an embedded authority.
 * @throws Error when no node directory holds the key.
 */
export function ensureNodeKey(dataDir: string, config: ClusterConfig, id: number): void {
  if (config.authority?.kind !== 'etcd') return;
  const to = authorityKeyPath(dataDir, id);
  if (existsSync(to)) return;
  const from = [config.authority.node, ...config.nodes.map((n) => n.id)].map((n) => authorityKeyPath(dataDir, n)).find((p) => existsSync(p));
  if (!from) throw new Error(`no node directory under ${dataDir} holds the authority key (authority.key)`);
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(from, to);
}

/** Directory of the local etcd cluster that `cairn up --etcd` runs for a data directory. */
export function localEtcdDir(dataDir: string): string {
  return join(dataDir, 'etcd');
}

/**
 * For `cairn up`: the local etcd a data directory needs, started — with `wanted` (--etcd) for
 * a new directory, or because the directory's cluster.json names an etcd authority and its
 * local etcd state exists (`<dataDir>/etcd/etcd.json`). Null when it needs none (an etcd
 * authority elsewhere is the operator's to run).
 * @throws Error when `wanted` but the directory has an embedded authority (one clear line
 *         naming `cairn authority migrate`), or etcd cannot be started.
 */
export async function startLocalEtcdFor(dataDir: string, wanted: boolean, onProgress?: (line: string) => void): Promise<LocalEtcd | null> {
  const config = await loadConfig(dataDir);
  const dir = localEtcdDir(dataDir);
  if (config?.authority && config.authority.kind !== 'etcd' && wanted) {
    throw new Error(`${dataDir} already has a cluster whose map authority is embedded in node ${config.authority.node}; move it to etcd with \`cairn authority migrate --local --data-dir ${dataDir}\` (cluster stopped)`);
  }
  const local = existsSync(join(dir, 'etcd.json'));
  if (!(wanted && !config) && !(config?.authority?.kind === 'etcd' && local)) return null;
  return LocalEtcd.start({ dir, members: 3, onProgress });
}
