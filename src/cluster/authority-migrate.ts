/**
 * `cairn authority migrate`: moves a stopped cluster's embedded map authority into etcd
 * (issue 14). What moves: every signed map the authority stored (`node<A>/maps/*.map`, each
 * verified with the cluster's key; one that does not verify is skipped and reported), its
 * write-lease ledger (`node<A>/leases.json`, with the generations an older cluster.json still
 * lists as a floor), so epochs and generations continue where they were. Then the authority
 * key is copied into every node's directory (with etcd every node may sign an epoch) and
 * cluster.json names the etcd authority. The cluster must be stopped: a running embedded
 * authority could commit an epoch etcd never hears of.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LeaseLedger, LocalEtcd, openEtcd, seedEtcdAuthority } from '../authority/index.ts';
import { openSignedMap, parsePublicKey } from '../clustermap/index.ts';
import { loadConfig, saveConfig, CONFIG_FILE, type EtcdAuthorityConfig } from '../config/index.ts';
import { ensureNodeKey, localEtcdDir } from './etcd-mode.ts';
import { runningNodePid } from './node-set.ts';

/** Options of migrateAuthorityToEtcd. */
export interface MigrateOptions {
  dataDir: string;
  /** The etcd cluster (endpoints, prefix — default `/cairn/<clusterId>` —, TLS files); or 'local': a 3-member LocalEtcd under `<dataDir>/etcd`. */
  etcd: Omit<EtcdAuthorityConfig, 'prefix'> & { prefix?: string } | 'local';
  onProgress?: (line: string) => void;
}

/** What migrateAuthorityToEtcd moved. */
export interface MigrateResult {
  prefix: string;
  endpoints: string[];
  /** Signed maps written to etcd, and the newest epoch among them. */
  epochs: number;
  newestEpoch: number;
  /** Maps skipped because they did not verify (file names). */
  skipped: string[];
  /** Last lease generation per volume id, as written to etcd. */
  leases: Record<number, number>;
}

/** A migration that cannot run; the message is one line for the CLI. */
export class MigrateError extends Error {
  override name = 'MigrateError';
}

/**
 * Runs the migration described in the module comment.
 * @throws MigrateError when the directory has no cluster, its authority is already etcd, a
 *         node process runs, or no stored map verifies; Error from etcd (unreachable, or the
 *         prefix already holds an authority's state — nothing is changed locally then).
 */
export async function migrateAuthorityToEtcd(o: MigrateOptions): Promise<MigrateResult> {
  const config = await loadConfig(o.dataDir);
  if (!config?.authority) throw new MigrateError(`no cluster in ${o.dataDir} (no ${CONFIG_FILE} with an authority)`);
  const a = config.authority;
  if (a.kind === 'etcd') throw new MigrateError(`the map authority of ${o.dataDir} is already etcd (${a.etcd?.endpoints.join(', ')}, prefix ${a.etcd?.prefix})`);
  const dir = join(o.dataDir, `node${a.node}`, 'maps');
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => /^\d{10}\.map$/.test(f)).sort();
  const pub = parsePublicKey(a.publicKey);
  const maps: Array<{ epoch: number; wire: Buffer }> = [];
  const skipped: string[] = [];
  const nodeIds = new Set(config.nodes.map((n) => n.id));
  for (const f of files) {
    try {
      const s = openSignedMap(await readFile(join(dir, f)), pub, config.clusterId);
      maps.push({ epoch: s.epoch, wire: s.wire });
      for (const n of s.map.nodes) nodeIds.add(n.id);
    } catch (e) {
      skipped.push(f);
      o.onProgress?.(`skipping ${f}: it does not verify (${(e as Error).message})`);
    }
  }
  if (!maps.length) throw new MigrateError(`no stored map of the authority under ${dir} verifies: nothing to migrate`);
  for (const id of nodeIds) {
    const pid = await runningNodePid(o.dataDir, id);
    if (pid !== null) throw new MigrateError(`node ${id} is running (pid ${pid}): stop the cluster before migrating its authority`);
  }
  const floor = Object.fromEntries(config.volumes.map((v) => [v.id, v.lease]));
  const leases = (await LeaseLedger.open(join(o.dataDir, `node${a.node}`, 'leases.json'), floor)).all();

  let local: LocalEtcd | null = null;
  try {
    if (o.etcd === 'local') local = await LocalEtcd.start({ dir: localEtcdDir(o.dataDir), members: 3, onProgress: o.onProgress });
    const given = o.etcd === 'local' ? { endpoints: local!.endpoints } : o.etcd;
    const cfg: EtcdAuthorityConfig = { ...given, prefix: given.prefix ?? `/cairn/${config.clusterId}` };
    const client = openEtcd(cfg, o.dataDir);
    try {
      await seedEtcdAuthority(client, cfg.prefix, { maps, leases });
    } finally {
      client.close();
    }
    config.authority = { kind: 'etcd', node: a.node, publicKey: a.publicKey, etcd: cfg };
    for (const id of nodeIds) ensureNodeKey(o.dataDir, config, id);
    await saveConfig(o.dataDir, config);
    const newestEpoch = Math.max(...maps.map((m) => m.epoch));
    o.onProgress?.(`moved ${maps.length} epochs (newest ${newestEpoch}) and ${Object.keys(leases).length} volumes' lease generations to etcd ${cfg.endpoints.join(', ')} under ${cfg.prefix}`);
    return { prefix: cfg.prefix, endpoints: cfg.endpoints, epochs: maps.length, newestEpoch, skipped, leases };
  } finally {
    await local?.stop();
  }
}
