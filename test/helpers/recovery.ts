/**
 * Helpers for replication and recovery tests against a LocalCluster: each node's recovery
 * report (GET /v1/recovery), waiting until resync is over, and host reads sent to one
 * member directly.
 */
import { ApiClient } from '../../src/api/index.ts';
import type { LocalCluster } from '../../src/cluster/index.ts';
import type { NodeRecoveryReport } from '../../src/recovery/index.ts';
import { decodeVersions } from '../../src/recovery/index.ts';
import { Flag, Op, Status, WireClient } from '../../src/wire/index.ts';

/** Node `node`'s recovery report, or null when it does not answer within 3 s. */
export async function recoveryReport(cluster: LocalCluster, node: number): Promise<NodeRecoveryReport | null> {
  // A node added to the running cluster is only in the map, not in cluster.json.
  const n = cluster.follower?.current.map.nodes.find((x) => x.id === node) ?? cluster.config.nodes.find((x) => x.id === node);
  if (!n) return null;
  try {
    return await new ApiClient(`http://${n.host}:${n.apiPort}`, cluster.config.token, 3000).call<NodeRecoveryReport>('GET', '/v1/recovery');
  } catch {
    return null;
  }
}

/**
 * Resolves true once every node answers, has peered and holds nothing stale, and no node
 * holds a resync record for a node in `targets` (default: for anyone); false after `timeoutMs`.
 */
export async function resyncDone(cluster: LocalCluster, timeoutMs: number, targets?: number[]): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const reports = await Promise.all(cluster.config.nodes.map((n) => recoveryReport(cluster, n.id)));
    if (reports.every((r) => r && !r.peering && r.stale.length === 0 && !r.missed.some((m) => !targets || targets.includes(m.node)))) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

/**
 * Host-reads whole extents [0, extents) of volume `volume` (pool `pool`, lease `lease`) from
 * node `node`'s own copies (the read the node would refuse while not current) and compares
 * them with `expect` (the volume's bytes from offset 0); extents not placed on `node` are skipped.
 * @returns the extents that differed or failed, the status of the first, and how many were read.
 */
export async function readOnNode(cluster: LocalCluster, node: number, volume: number, pool: number, lease: number, expect: Buffer, extentBytes: number): Promise<{ bad: number[]; firstStatus: number; checked: number }> {
  const r0 = await recoveryReport(cluster, node);
  const view = await cluster.follower!.refresh(r0?.epoch ?? cluster.view.epoch);
  const a = view.address(node)!;
  const c = new WireClient({ host: a.host, port: a.port, token: cluster.config.token });
  await c.connect();
  const bad: number[] = [];
  let checked = 0;
  let firstStatus = Status.Ok as number;
  try {
    for (let x = 0; x * extentBytes < expect.length; x++) {
      const members = view.members(volume, x, pool);
      const leaf = members.find((m) => view.nodeOf(m) === node);
      if (leaf === undefined) continue; // not placed on this node
      checked++;
      const r = await c.request({ op: Op.Read, flags: 0, epoch: view.epoch, volume, extent: x, partition: leaf, firstPage: 0, pages: extentBytes / 4096, lease, version: 0, members });
      if (r.h.status !== Status.Ok || !r.payload.equals(expect.subarray(x * extentBytes, (x + 1) * extentBytes))) {
        if (bad.length === 0) firstStatus = r.h.status;
        bad.push(x);
      }
    }
  } finally {
    c.close();
  }
  return { bad, firstStatus, checked };
}

/**
 * Compares every extent [0, extents) of `volume`'s copies on its placed members (at the
 * in-process initiator's current map): page versions and bytes.
 * @returns descriptions of the differences (empty when identical).
 */
export async function compareMembers(cluster: LocalCluster, volume: { name: string }, extents: number): Promise<string[]> {
  const view = cluster.view;
  const rec = cluster.config.volumes.find((v) => v.name === volume.name)!;
  const pages = rec.extentBytes / 4096;
  const clients = new Map<number, WireClient>();
  const get = async (node: number): Promise<WireClient> => {
    let c = clients.get(node);
    if (!c) {
      const n = view.address(node)!;
      c = new WireClient({ host: n.host, port: n.port, token: cluster.config.token });
      await c.connect();
      clients.set(node, c);
    }
    return c;
  };
  const diffs: string[] = [];
  try {
    for (let x = 0; x < extents; x++) {
      const members = view.members(rec.id, x, rec.pool);
      const copies = await Promise.all(members.map(async (m) => {
        const c = await get(view.nodeOf(m));
        const base = { flags: Flag.Recovery, epoch: view.epoch, volume: rec.id, extent: x, partition: m, firstPage: 0, pages, lease: 0, version: 0, members: [] };
        const v = await c.request({ ...base, op: Op.Versions });
        const d = await c.request({ ...base, op: Op.Read });
        if (v.h.status !== Status.Ok || d.h.status !== Status.Ok) throw new Error(`extent ${x} on partition ${m}: status ${v.h.status}/${d.h.status}`);
        return { m, versions: JSON.stringify(decodeVersions(v.payload)), data: Buffer.from(d.payload) };
      }));
      for (const c of copies.slice(1)) {
        if (c.versions !== copies[0].versions) diffs.push(`extent ${x}: page versions differ between partitions ${copies[0].m} and ${c.m}`);
        else if (!c.data.equals(copies[0].data)) diffs.push(`extent ${x}: bytes differ between partitions ${copies[0].m} and ${c.m}`);
      }
    }
  } finally {
    for (const c of clients.values()) c.close();
  }
  return diffs;
}
