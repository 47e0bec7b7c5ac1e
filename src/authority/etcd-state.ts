/**
 * The etcd authority's state and how to reach it: the client (endpoints, TLS, call
 * deadlines), the key layout under the cluster's prefix, and the one-time seeding of a
 * prefix with an existing history (`cairn authority migrate`).
 *
 * Keys (values are bytes):
 *   <prefix>/epoch              the current epoch, decimal; every change is a transaction
 *                               that compares it (compare-and-swap), so no two maps share an epoch
 *   <prefix>/maps/<epoch:010>   the signed map of that epoch (src/clustermap wire form)
 *   <prefix>/leases/<volume>    the last write-lease generation granted for the volume, decimal
 *   <prefix>/leader             the membership leader's node id, attached to its etcd lease
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { Etcd3, type IOptions } from 'etcd3';
import type { EtcdAuthorityConfig } from '../config/index.ts';

/** Milliseconds each etcd call may take before it fails (a stopped or partitioned member must not hang us). */
export const ETCD_CALL_TIMEOUT_MS = 3000;

/** The keys of a cluster's authority state under `prefix`. */
export function etcdKeys(prefix: string): {
  epoch: string; maps: string; map: (epoch: number) => string; leases: string; lease: (volume: number) => string; leader: string;
} {
  return {
    epoch: `${prefix}/epoch`,
    maps: `${prefix}/maps/`,
    map: (epoch) => `${prefix}/maps/${String(epoch).padStart(10, '0')}`,
    leases: `${prefix}/leases/`,
    lease: (volume) => `${prefix}/leases/${volume}`,
    leader: `${prefix}/leader`,
  };
}

/**
 * A client for the etcd cluster `cfg` names. TLS file paths that are relative are taken
 * from `dataDir`. Every call gets a deadline of ETCD_CALL_TIMEOUT_MS.
 * @throws Error when a TLS file cannot be read.
 */
export function openEtcd(cfg: EtcdAuthorityConfig, dataDir = '.'): Etcd3 {
  const file = (p: string): Buffer => readFileSync(isAbsolute(p) ? p : join(dataDir, p));
  const opts: IOptions = {
    hosts: cfg.endpoints,
    defaultCallOptions: () => ({ deadline: Date.now() + ETCD_CALL_TIMEOUT_MS }),
  };
  if (cfg.tls) {
    opts.credentials = {
      rootCertificate: cfg.tls.ca ? file(cfg.tls.ca) : Buffer.alloc(0),
      ...(cfg.tls.key ? { privateKey: file(cfg.tls.key) } : {}),
      ...(cfg.tls.cert ? { certChain: file(cfg.tls.cert) } : {}),
    };
  }
  return new Etcd3(opts);
}

/** What seedEtcdAuthority writes. */
export interface EtcdSeed {
  /** Signed maps (wire form) with their epochs, any order; the newest becomes current. */
  maps: Array<{ epoch: number; wire: Buffer }>;
  /** Last lease generation granted per volume id. */
  leases: Record<number, number>;
}

/** Puts per transaction (etcd's default --max-txn-ops is 128). */
const SEED_BATCH = 100;

/**
 * Writes an existing authority's history and lease ledger under `prefix`: the maps and
 * leases in batches, each a transaction that requires the prefix to hold no epoch yet, then
 * the epoch key last (so a prefix is never current with part of its history). A second
 * migration, or one racing a running etcd authority, changes nothing.
 * @throws Error when the prefix already holds an epoch, or `seed.maps` is empty.
 */
export async function seedEtcdAuthority(client: Etcd3, prefix: string, seed: EtcdSeed): Promise<void> {
  if (!seed.maps.length) throw new Error('nothing to migrate: no signed map');
  const k = etcdKeys(prefix);
  const newest = Math.max(...seed.maps.map((m) => m.epoch));
  const puts = [
    ...seed.maps.map((m) => () => client.put(k.map(m.epoch)).value(m.wire)),
    ...Object.entries(seed.leases).map(([v, g]) => () => client.put(k.lease(Number(v))).value(String(g))),
  ];
  const refuse = async (): Promise<never> => {
    const cur = await client.get(k.epoch).string();
    throw new Error(`etcd prefix ${prefix} already holds the authority's state (epoch ${cur}); nothing more was written`);
  };
  for (let i = 0; i < puts.length; i += SEED_BATCH) {
    const r = await client.if(k.epoch, 'Create', '==', 0).then(...puts.slice(i, i + SEED_BATCH).map((p) => p())).commit();
    if (!r.succeeded) return refuse();
  }
  const r = await client.if(k.epoch, 'Create', '==', 0).then(client.put(k.epoch).value(String(newest))).commit();
  if (!r.succeeded) return refuse();
}
