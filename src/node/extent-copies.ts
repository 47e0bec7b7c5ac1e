/**
 * One extent's copy on one partition as recovery sees it (src/recovery's ExtentCopy): a
 * local partition's allocator, or another node's partition over the wire protocol
 * (Op.Versions, Op.Read with Flag.Recovery, Op.Put). Plus the small helpers both use.
 */
import type { Allocator } from '../../allocator/index.ts';
import { decodePartitionLeafId } from '../../placement/index.ts';
import { decodeVersions, encodePut, type ExtentCopy, type PageVersion, type PutEntry } from '../recovery/index.ts';
import { Flag, Op, Status, statusName, type ConnectionPool, type RequestHeader } from '../wire/index.ts';
import type { NodeStorage } from './storage.ts';

/** Thrown by copies on a non-Ok reply or a missing partition; `status` is the wire status. */
export class MemberError extends Error {
  override name = 'MemberError';
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** A request header with every field zero but `op` and `epoch`. */
export function blank(op: number, epoch: number): Omit<RequestHeader, 'id'> {
  return { op, flags: 0, epoch, volume: 0, extent: 0, partition: 0, firstPage: 0, pages: 0, lease: 0, version: 0, members: [] };
}

/** Page versions of `key` on allocator `a` over its first `extentPages` pages. */
export function localVersions(a: Allocator, key: number, extentPages: number): PageVersion[] {
  const mapped = new Set<number>();
  for (const p of a.pages(key)) mapped.add(p.page);
  const out: PageVersion[] = [];
  for (let p = 0; p < extentPages; p++) {
    const v = a.version(key, p);
    if (v > 0) out.push({ page: p, version: v, mapped: mapped.has(p) });
  }
  return out;
}

/** Applies Put entries to `key` on `a`, each page with its own version (newer pages kept). */
export async function applyPut(a: Allocator, key: number, entries: PutEntry[]): Promise<void> {
  await Promise.all(entries.map((e) => (e.trim ? a.trim(key, e.page, 1, e.version) : a.write(key, e.page, e.data!, e.version))));
}

/**
 * The copy of allocator key `key` in local partition `leaf` of node `nodeId`.
 * @throws MemberError NoPartition when this node does not hold `leaf`.
 */
export function localCopy(storage: NodeStorage, nodeId: number, leaf: number, key: number, extentPages: number): ExtentCopy {
  const a = storage.get(leaf);
  if (!a) throw new MemberError(Status.NoPartition, `node ${nodeId} does not hold partition ${leaf}`);
  return {
    leaf,
    versions: async () => localVersions(a, key, extentPages),
    read: (first, n) => a.read(key, first, n),
    put: async (entries) => {
      await applyPut(a, key, entries);
      storage.markDirty(a);
    },
  };
}

/**
 * The copy of `extent` of `volume` on partition `leaf` of another node, reached through
 * `peers` at the map epoch `epoch()`. Its calls reject with MemberError on a non-Ok reply
 * and with ConnectionError when the node cannot be reached.
 */
export function remoteCopy(peers: ConnectionPool, epoch: () => number, leaf: number, volume: number, extent: number, extentPages: number): ExtentCopy {
  const node = decodePartitionLeafId(leaf).host;
  const call = async (op: number, firstPage: number, pages: number, flags: number, payload?: Buffer): Promise<Buffer> => {
    const c = await peers.get(node);
    const r = await c.request({ ...blank(op, epoch()), flags, volume, extent, partition: leaf, firstPage, pages }, payload);
    if (r.h.status !== Status.Ok) throw new MemberError(r.h.status, `partition ${leaf} on node ${node}: ${statusName(r.h.status)}`);
    return r.payload;
  };
  return {
    leaf,
    versions: async () => decodeVersions(await call(Op.Versions, 0, extentPages, 0)),
    read: (first, n) => call(Op.Read, first, n, Flag.Recovery),
    put: async (entries) => {
      await call(Op.Put, 0, entries.length, 0, encodePut(entries));
    },
  };
}
