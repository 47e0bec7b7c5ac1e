/**
 * NBD metadata querying with the one context this server offers, `base:allocation` (NBD
 * protocol, "Metadata querying", "`base:allocation` metadata context",
 * NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT and NBD_CMD_BLOCK_STATUS): parsing
 * the options' data, matching their queries, and encoding a device's BlockExtents as one
 * NBD_REPLY_TYPE_BLOCK_STATUS chunk.
 */
import type { BlockDevice, BlockExtent } from '../volume/block-device.ts';
import { BlockDeviceError } from '../volume/index.ts';
import * as C from './constants.ts';

/** Context id this server gives `base:allocation` in NBD_OPT_SET_META_CONTEXT replies. */
export const BASE_ALLOCATION_ID = 1;

/**
 * Most bytes one NBD_CMD_BLOCK_STATUS looks at (the spec lets a server answer for less than
 * asked; clients ask again from where the reply stopped). Bounds the work per request: a
 * cluster volume asks its members once per extent in range.
 */
export const MAX_STATUS_BYTES = 1024 * 1024 * 1024;

/** Most descriptors in one reply chunk (the spec's SHOULD NOT exceed 2^20); the rest is asked for again. */
const MAX_DESCRIPTORS = 1 << 20;

/** Bytes of a structured reply chunk header (magic, flags, type, cookie, length). */
export const CHUNK_HEADER = 20;

/** The data of NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT. */
export interface MetaRequest {
  /** Export name the contexts are for. */
  name: string;
  /** Query strings, in request order. */
  queries: string[];
}

/**
 * Parses the data of a LIST/SET_META_CONTEXT option: u32 name length, name, u32 query
 * count, then per query u32 length and the query.
 * @returns null when the lengths do not add up exactly (the caller answers NBD_REP_ERR_INVALID).
 */
export function parseMetaRequest(data: Buffer): MetaRequest | null {
  if (data.length < 8) return null;
  const nameLen = data.readUInt32BE(0);
  if (4 + nameLen + 4 > data.length) return null;
  const name = data.toString('utf8', 4, 4 + nameLen);
  const count = data.readUInt32BE(4 + nameLen);
  const queries: string[] = [];
  let pos = 8 + nameLen;
  for (let i = 0; i < count; i++) {
    if (pos + 4 > data.length) return null;
    const len = data.readUInt32BE(pos);
    if (pos + 4 + len > data.length) return null;
    queries.push(data.toString('utf8', pos + 4, pos + 4 + len));
    pos += 4 + len;
  }
  return pos === data.length ? { name, queries } : null;
}

/**
 * Contexts a NBD_OPT_LIST_META_CONTEXT request lists: `base:allocation` for no query at all,
 * for the `base:` wildcard and for itself; queries of other namespaces (and unknown `base:`
 * leaves) are ignored, as the spec requires.
 */
export function listedContexts(queries: string[]): string[] {
  if (queries.length === 0) return [C.META_BASE_ALLOCATION];
  return queries.some((q) => q === 'base:' || q === C.META_BASE_ALLOCATION) ? [C.META_BASE_ALLOCATION] : [];
}

/**
 * Whether a NBD_OPT_SET_META_CONTEXT request selects `base:allocation` (only its exact name
 * does; `base:` selects nothing during SET, and no queries select nothing).
 */
export function selectsAllocation(queries: string[]): boolean {
  return queries.includes(C.META_BASE_ALLOCATION);
}

/** Reply to a request that asked for no block status it may have: flags-0 data over the range. */
function allData(offset: number, length: number): BlockExtent[] {
  return [{ offset, length, hole: false, zero: false }];
}

/**
 * The `base:allocation` state of [offset, offset+length) of `dev` (bytes), from its
 * blockStatus, or all data when it has none. Checks the device's answer: runs must start at
 * `offset`, be consecutive and non-empty; those reaching past the end are cut at it.
 * @throws BlockDeviceError EIO when the device's runs are not consecutive from `offset`.
 */
export async function deviceStatus(dev: BlockDevice, offset: number, length: number): Promise<BlockExtent[]> {
  if (!dev.blockStatus) return allData(offset, length);
  const runs = await dev.blockStatus(offset, length);
  const end = offset + length;
  let pos = offset;
  const out: BlockExtent[] = [];
  for (const r of runs) {
    if (pos >= end) break;
    if (r.offset !== pos || !(r.length > 0)) {
      throw new BlockDeviceError('EIO', `device reported block status run ${r.offset}+${r.length} where ${pos} was expected`);
    }
    out.push(r.offset + r.length > end ? { ...r, length: end - r.offset } : r);
    pos = r.offset + r.length;
  }
  if (out.length === 0) throw new BlockDeviceError('EIO', `device reported no block status for ${offset}+${length}`);
  return out;
}

/** `base:allocation` flags of a run. */
function stateOf(r: BlockExtent): number {
  return (r.hole ? C.STATE_HOLE : 0) | (r.zero ? C.STATE_ZERO : 0);
}

/**
 * Encodes `runs` as one NBD_REPLY_TYPE_BLOCK_STATUS chunk payload for context `contextId`,
 * preceded by CHUNK_HEADER bytes the caller fills in (one allocation). Adjacent runs with
 * the same flags are merged; with `reqOne` only the first descriptor is sent (the runs never
 * exceed the request, so neither does it), and never more than 2^20.
 */
export function encodeStatus(contextId: number, runs: BlockExtent[], reqOne: boolean): Buffer {
  const lengths: number[] = [];
  const flags: number[] = [];
  for (const r of runs) {
    const f = stateOf(r);
    const last = flags.length - 1;
    if (last >= 0 && flags[last] === f) lengths[last] += r.length;
    else {
      if ((reqOne && last >= 0) || lengths.length === MAX_DESCRIPTORS) break;
      lengths.push(r.length);
      flags.push(f);
    }
  }
  const b = Buffer.allocUnsafe(CHUNK_HEADER + 4 + 8 * lengths.length);
  b.writeUInt32BE(contextId, CHUNK_HEADER);
  for (let i = 0; i < lengths.length; i++) {
    b.writeUInt32BE(lengths[i], CHUNK_HEADER + 4 + 8 * i);
    b.writeUInt32BE(flags[i], CHUNK_HEADER + 8 + 8 * i);
  }
  return b;
}
