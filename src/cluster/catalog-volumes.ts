/**
 * The volumes a LocalCluster starts with, from the catalog: a new data directory's layout
 * volume is created there; volumes an older cluster.json lists (the authority moves them into
 * the catalog when it starts) are waited for and then removed from cluster.json; and the
 * in-memory config.volumes is filled from the catalog for attach() and the tests.
 */
import { ApiError } from '../api/client.ts';
import { CONFIG_FILE, loadConfig, saveConfig, type ClusterConfig, type VolumeConfig } from '../config/index.ts';
import type { ApiPool, CatalogVolume } from '../gateway/index.ts';
import type { ClusterLayout } from './create.ts';

/** How long start-up waits for the catalog to create or show volumes (ms). */
export const CATALOG_WAIT_MS = 30000;

/** The in-memory VolumeConfig of catalog volume `v` (its lease generation lives with the authority). */
function volumeConfigOf(v: CatalogVolume): VolumeConfig {
  return { id: v.id, name: v.name, sizeBytes: v.sizeBytes, pool: v.pool, extentBytes: v.extentBytes, thin: v.thin, lease: 0 };
}

/** `msg` on one line, at most 200 characters (a node's stderr or an API error can span many). */
export function oneLine(msg: string): string {
  const flat = msg.replace(/\s+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 199)}…` : flat;
}

/**
 * `method path` through the nodes' APIs, retried every 250 ms while no node answers or the
 * answer is 503 (the catalog or the authority is not serving yet), until `deadline` (ms
 * since 1970) or `stopped()`.
 * @throws ApiError: the last answer.
 */
export async function catalogCall<T>(api: ApiPool, method: 'GET' | 'POST', path: string, body: unknown, deadline: number, stopped: () => boolean = () => false): Promise<T> {
  for (;;) {
    try {
      return await api.call<T>(method, path, body);
    } catch (e) {
      if (!(e instanceof ApiError) || (e.status !== 0 && e.status !== 503) || Date.now() >= deadline || stopped()) throw e;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** What settleVolumes works with. */
export interface SettleContext {
  api: ApiPool;
  /** The cluster's config; its `volumes` are replaced in memory. */
  config: ClusterConfig;
  dataDir: string;
  /** A new data directory's layout (its volume is created), or null for an existing one. */
  layout: ClusterLayout | null;
  /** Name of the layout's volume (listed right after cluster.json's). */
  layoutName: string;
  stopped: () => boolean;
  progress: (line: string) => void;
}

/**
 * The volumes at start (see the module comment). config.volumes (in memory) ends as
 * cluster.json's volumes first, then the layout's, then the others by name (clones and
 * volumes being deleted left out; attach() looks up what is missing).
 * @throws Error when the layout's volume cannot be created within CATALOG_WAIT_MS.
 */
export async function settleVolumes(c: SettleContext): Promise<void> {
  const deadline = Date.now() + CATALOG_WAIT_MS;
  const listed = [...c.config.volumes];
  let records: VolumeConfig[] | null = null;
  if (c.layout) {
    records = [];
    if (c.layout.volumeBytes > 0) {
      const body = { name: c.layout.volumeName, size: c.layout.volumeBytes, extentBytes: c.layout.extentBytes };
      const v = await catalogCall<CatalogVolume>(c.api, 'POST', '/v1/volumes', body, deadline, c.stopped).catch((e: Error) => {
        throw new Error(`cannot create volume '${c.layout!.volumeName}' in the catalog within ${CATALOG_WAIT_MS / 1000} s: ${e.message}`);
      });
      records.push(volumeConfigOf(v));
    }
  }
  if (listed.length) await moveListedVolumes(c, listed, deadline);
  if (!records) {
    try {
      const r = await catalogCall<{ volumes: CatalogVolume[] }>(c.api, 'GET', '/v1/volumes', undefined, Math.max(deadline, Date.now() + 5000), c.stopped);
      records = r.volumes.filter((v) => v.state === 'ready' && v.parent === null).map(volumeConfigOf);
    } catch (e) {
      c.progress(`could not list the catalog's volumes: ${oneLine((e as Error).message)}; attach() looks them up by name`);
      return;
    }
  }
  const byName = new Map(records.map((v) => [v.name, v]));
  // A cluster.json volume that differs from its catalog record stays as cluster.json has it.
  const ordered = listed.map((v) => {
    const r = byName.get(v.name);
    return r && r.id === v.id && r.extentBytes === v.extentBytes ? r : v;
  });
  const named = byName.get(c.layoutName);
  if (named && !ordered.some((v) => v.name === c.layoutName)) ordered.push(named);
  for (const v of records) if (!ordered.some((o) => o.name === v.name)) ordered.push(v);
  c.config.volumes.splice(0, c.config.volumes.length, ...ordered);
}

/**
 * Waits (until `deadline`) for cluster.json's volumes `listed` to be in the catalog (the
 * authority migrates them, keeping their ids and extent sizes), checks that the authority's
 * lease ledger holds at least each one's `lease` generation (the ledger writes the floors
 * cluster.json gives it when it opens, so a restart without them never hands out an old
 * generation), then rewrites cluster.json without them (atomically, mode 0600). A volume
 * that does not show up, or differs from its catalog record, stays in cluster.json.
 */
async function moveListedVolumes(c: SettleContext, listed: VolumeConfig[], deadline: number): Promise<void> {
  const pending = new Map(listed.map((v) => [v.name, v]));
  const moved: VolumeConfig[] = [];
  while (pending.size && !c.stopped()) {
    for (const v of [...pending.values()]) {
      try {
        const r = await c.api.call<CatalogVolume>('GET', `/v1/volumes/${encodeURIComponent(v.name)}`);
        pending.delete(v.name);
        if (r.id !== v.id || r.extentBytes !== v.extentBytes) {
          c.progress(`volume ${v.name} in ${CONFIG_FILE} (id ${v.id}, ${v.extentBytes}-byte extents) differs from the catalog's (id ${r.id}, ${r.extentBytes}-byte extents); left in ${CONFIG_FILE}`);
        } else moved.push(v);
      } catch (e) {
        // 404: the authority has not migrated it yet; 503 / unreachable: not serving yet.
        if (!(e instanceof ApiError) || ![0, 404, 503].includes(e.status)) {
          pending.delete(v.name);
          c.progress(`cannot look up volume ${v.name} in the catalog: ${oneLine((e as Error).message)}; left in ${CONFIG_FILE}`);
        }
      }
    }
    if (!pending.size || Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  if (pending.size) c.progress(`volumes ${[...pending.keys()].join(', ')} of ${CONFIG_FILE} did not appear in the catalog within ${CATALOG_WAIT_MS / 1000} s; left in ${CONFIG_FILE}`);
  if (!moved.length || c.stopped()) return;
  let leases: Record<string, number>;
  try {
    leases = (await catalogCall<{ leases: Record<string, number> }>(c.api, 'GET', '/v1/leases', undefined, Math.max(deadline, Date.now() + 5000), c.stopped)).leases;
  } catch (e) {
    c.progress(`cannot read the authority's lease generations: ${oneLine((e as Error).message)}; volumes left in ${CONFIG_FILE}`);
    return;
  }
  const safe = moved.filter((v) => {
    if ((leases[v.id] ?? 0) >= v.lease) return true;
    c.progress(`the authority's lease ledger is below volume ${v.name}'s generation ${v.lease}; left in ${CONFIG_FILE}`);
    return false;
  });
  if (!safe.length) return;
  // Re-read: only the volumes change.
  const onDisk = await loadConfig(c.dataDir);
  if (!onDisk) return;
  onDisk.volumes = onDisk.volumes.filter((v) => !safe.some((s) => s.name === v.name && s.id === v.id));
  await saveConfig(c.dataDir, onDisk);
  for (const v of safe) c.progress(`moved volume ${v.name} from ${CONFIG_FILE} into the catalog`);
}

/**
 * Volume `name` from the catalog, as a VolumeConfig (`known`: the names to cite when there is none).
 * @throws Error when there is none, it is a clone or being deleted; ApiError when the catalog cannot be asked.
 */
export async function catalogVolume(api: ApiPool, name: string, known: VolumeConfig[]): Promise<VolumeConfig> {
  let v: CatalogVolume;
  try {
    v = await catalogCall<CatalogVolume>(api, 'GET', `/v1/volumes/${encodeURIComponent(name)}`, undefined, Date.now() + 10000);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) throw new Error(`no volume named '${name}' (have: ${known.map((x) => x.name).join(', ') || 'none'}, and the catalog has none by that name)`);
    throw e;
  }
  if (v.state !== 'ready') throw new Error(`volume '${name}' is being deleted`);
  if (v.parent !== null) throw new Error(`volume '${name}' is a clone: attach it through volumeSet()`);
  return volumeConfigOf(v);
}
