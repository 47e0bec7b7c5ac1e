/**
 * Which storage nodes a data directory runs. cluster.json lists the nodes the cluster was
 * created with (its creation map, epoch 1, is derived from that list and must never change);
 * nodes added later (`cairn node add`, LocalCluster.addNode) exist only in the signed map.
 * This module finds the newest signed map stored under a data directory and tells which of
 * its nodes live there.
 */
import { readdir, readFile, stat, mkdir, writeFile, rename } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { openSignedMap, parsePublicKey, peekSignedMap, type SignedMap } from '../clustermap/index.ts';
import type { ClusterConfig } from '../config/index.ts';

/** Path of node `id`'s persisted map (what its keeper loads at start). */
export function nodeMapPath(dataDir: string, id: number): string {
  return join(dataDir, `node${id}`, 'map.current');
}

/**
 * The newest signed map stored under `dataDir` that verifies with the authority key of
 * `config`: the embedded authority's epoch files (`node<A>/maps/*.map`, written before each
 * epoch is published) and every peer's `map.current` (`node*`, `initiator`). Files that do not
 * verify are skipped.
 * @returns the map, or null when there is none (or cluster.json names no authority yet).
 */
export async function newestStoredMap(dataDir: string, config: ClusterConfig): Promise<SignedMap | null> {
  if (!config.authority) return null;
  const key = parsePublicKey(config.authority.publicKey);
  const candidates: string[] = [];
  const authorityDir = join(dataDir, `node${config.authority.node}`, 'maps');
  const epochs = (await readdir(authorityDir).catch(() => [] as string[])).filter((f) => /^\d{10}\.map$/.test(f)).sort().reverse();
  // The newest two: one torn by a crash mid-write still leaves its predecessor.
  candidates.push(...epochs.slice(0, 2).map((f) => join(authorityDir, f)));
  for (const d of await readdir(dataDir).catch(() => [] as string[])) {
    if (/^node\d+$/.test(d) || d === 'initiator') candidates.push(join(dataDir, d, 'map.current'));
  }
  let best: SignedMap | null = null;
  for (const path of candidates) {
    const wire = await readFile(path).catch(() => null);
    if (!wire) continue;
    try {
      if (best && peekSignedMap(wire).epoch <= best.epoch) continue;
      best = openSignedMap(wire, key, config.clusterId);
    } catch {
      // corrupt, forged or of another cluster: not a candidate
    }
  }
  return best;
}

/**
 * Writes `s` as node `id`'s persisted map unless that node already holds one of the same or a
 * newer epoch, so a node that is not in cluster.json starts from a map that has it (and
 * dials the current members) instead of the creation map.
 */
export async function seedNodeMap(dataDir: string, id: number, s: SignedMap): Promise<void> {
  const path = nodeMapPath(dataDir, id);
  const held = await readFile(path).then((w) => peekSignedMap(w).epoch, () => 0);
  if (held >= s.epoch) return;
  await mkdir(join(dataDir, `node${id}`), { recursive: true });
  await writeFile(`${path}.tmp`, s.wire);
  await rename(`${path}.tmp`, path);
}

/** True when every device file of `node` exists under `dataDir` (the node's storage lives here). */
export async function devicesPresent(dataDir: string, node: { devices: ReadonlyArray<{ path: string }> }): Promise<boolean> {
  if (node.devices.length === 0) return false;
  for (const d of node.devices) {
    const st = await stat(resolve(dataDir, d.path)).catch(() => null);
    if (!st?.isFile()) return false;
  }
  return true;
}

/**
 * The process id of a node daemon for node `id` that runs on `dataDir` outside the caller
 * (e.g. `cairn node start` in another terminal), from `<dataDir>/run/node<ID>.pid`; null when
 * there is none. A pid file whose process is gone, or (on Linux) is not a node daemon, is stale.
 */
export async function runningNodePid(dataDir: string, id: number): Promise<number | null> {
  const pid = Number((await readFile(join(dataDir, 'run', `node${id}.pid`), 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0) return null;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return null;
  }
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => null);
  if (cmdline !== null && !(/main\.[tj]s\0/.test(cmdline) && cmdline.includes(`--node\0${id}\0`))) return null;
  return pid;
}
