/**
 * One extent's copy on one partition as recovery sees it (src/recovery's ExtentCopy): a
 * local partition's allocator, or another node's partition over the wire protocol
 * (Op.Versions, Op.Read with Flag.Recovery, Op.Put). Plus the small helpers both use, and
 * the scrub digest of a copy (Op.Digest: extentDigest, remoteDigest).
 */
import { crc32c } from '@node-rs/crc32';
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

/**
 * Applies Put entries to `key` on `a`, each page with its own version (newer pages kept).
 * Runs of consecutive pages of one version (and kind) go to the allocator as one write or
 * trim: a backfilled extent written by large host writes is a few records, not 256.
 */
export async function applyPut(a: Allocator, key: number, entries: PutEntry[]): Promise<void> {
  const sorted = [...entries].sort((x, y) => x.page - y.page);
  const ops: Array<Promise<void>> = [];
  for (let i = 0; i < sorted.length;) {
    const first = sorted[i];
    let j = i + 1;
    while (j < sorted.length && sorted[j].page === sorted[j - 1].page + 1 && sorted[j].version === first.version && sorted[j].trim === first.trim) j++;
    const run = sorted.slice(i, j);
    ops.push(first.trim
      ? a.trim(key, first.page, run.length, first.version)
      : a.write(key, first.page, run.length === 1 ? first.data! : Buffer.concat(run.map((e) => e.data!)), first.version));
    i = j;
  }
  await Promise.all(ops);
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

/** An extent copy's scrub digest (Op.Digest): copies with equal page maps have equal digests. */
export interface ExtentDigest {
  /** crc32c over one 20-byte entry per page with a version or a block (see Op.Digest). */
  digest: number;
  /** Pages that have a block (mapped). */
  mapped: number;
  /** Pages ever written or trimmed (entries in the digest). */
  versioned: number;
}

/** Bytes of one page entry hashed into an ExtentDigest. */
const DIGEST_ENTRY = 20;

/**
 * The scrub digest of `key` on allocator `a` over its first `extentPages` pages (Op.Digest):
 * crc32c over, for each page ever written or trimmed (or mapped) in page order, u32 page,
 * f64 version, u32 flags (bit 0: mapped), u32 crc32c of the page's data from the page map
 * (0 when unmapped), all little-endian. Reads only the in-memory page map (no device I/O):
 * it finds copies that differ in what they hold, not bytes rotten on the device (a deep
 * scrub reads those). Cost: O(extentPages) plus one crc32c over at most 20 × extentPages bytes.
 */
export function extentDigest(a: Allocator, key: number, extentPages: number): ExtentDigest {
  const crcs = new Uint32Array(extentPages);
  const isMapped = new Uint8Array(extentPages);
  let mapped = 0;
  for (const p of a.pages(key)) {
    if (p.page >= extentPages) break;
    crcs[p.page] = p.crc;
    isMapped[p.page] = 1;
    mapped++;
  }
  const b = Buffer.allocUnsafe(extentPages * DIGEST_ENTRY);
  let n = 0;
  for (let p = 0; p < extentPages; p++) {
    const v = a.version(key, p);
    if (v <= 0 && !isMapped[p]) continue;
    const o = n++ * DIGEST_ENTRY;
    b.writeUInt32LE(p, o);
    b.writeDoubleLE(v, o + 4);
    b.writeUInt32LE(isMapped[p], o + 12);
    b.writeUInt32LE(isMapped[p] ? crcs[p] : 0, o + 16);
  }
  return { digest: n ? crc32c(b.subarray(0, n * DIGEST_ENTRY)) >>> 0 : 0, mapped, versioned: n };
}

/** The 12-byte Op.Digest reply payload of `d`: u32 digest, u32 mapped, u32 versioned. */
export function encodeDigest(d: ExtentDigest): Buffer {
  const b = Buffer.allocUnsafe(12);
  b.writeUInt32LE(d.digest >>> 0, 0);
  b.writeUInt32LE(d.mapped, 4);
  b.writeUInt32LE(d.versioned, 8);
  return b;
}

/**
 * Decodes an Op.Digest reply payload (inverse of encodeDigest).
 * @throws MemberError (status Invalid) when it is not 12 bytes long.
 */
export function decodeDigest(b: Buffer): ExtentDigest {
  if (b.length !== 12) throw new MemberError(Status.Invalid, `digest reply of ${b.length} bytes (want 12)`);
  return { digest: b.readUInt32LE(0), mapped: b.readUInt32LE(4), versioned: b.readUInt32LE(8) };
}

/**
 * The scrub digest of `extent` of `volume` on partition `leaf` of another node (Op.Digest
 * through `peers`, at map epoch `epoch`).
 * @throws MemberError on a non-Ok reply; ConnectionError when the node cannot be reached.
 */
export async function remoteDigest(peers: ConnectionPool, epoch: number, leaf: number, volume: number, extent: number, extentPages: number): Promise<ExtentDigest> {
  const node = decodePartitionLeafId(leaf).host;
  const c = await peers.get(node);
  const r = await c.request({ ...blank(Op.Digest, epoch), volume, extent, partition: leaf, pages: extentPages });
  if (r.h.status !== Status.Ok) throw new MemberError(r.h.status, `digest of partition ${leaf} on node ${node}: ${statusName(r.h.status)}`);
  return decodeDigest(r.payload);
}
