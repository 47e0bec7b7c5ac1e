/**
 * Payload encodings of the recovery requests of the data-path protocol (src/wire/protocol.ts:
 * Versions, Put, Missed, Suspects). All little-endian, fixed-size entries.
 */
import { PAGE_SIZE, ProtocolError } from '../wire/index.ts';

/** One page's newest version on a member: `mapped` false means trimmed (reads as zeros). */
export interface PageVersion {
  /** Page index in the extent (4 KiB pages). */
  page: number;
  /** Newest version written or trimmed (> 0). */
  version: number;
  mapped: boolean;
}

/** One page to copy in a Put: data (4096 bytes) unless `trim`. */
export interface PutEntry {
  page: number;
  version: number;
  trim: boolean;
  /** 4096 bytes; absent for a trim. */
  data?: Buffer;
}

/** Bytes of one Versions / Put / Missed entry. */
export const ENTRY = 16;

/** Encodes page versions (Versions reply). */
export function encodeVersions(list: PageVersion[]): Buffer {
  const b = Buffer.allocUnsafe(list.length * ENTRY);
  list.forEach((v, i) => {
    b.writeUInt32LE(v.page, i * ENTRY);
    b.writeUInt32LE(v.mapped ? 1 : 0, i * ENTRY + 4);
    b.writeDoubleLE(v.version, i * ENTRY + 8);
  });
  return b;
}

/** Decodes a Versions reply. @throws ProtocolError on a length that is not whole entries. */
export function decodeVersions(b: Buffer): PageVersion[] {
  if (b.length % ENTRY) throw new ProtocolError(`versions payload of ${b.length} bytes`);
  const out: PageVersion[] = [];
  for (let o = 0; o < b.length; o += ENTRY) out.push({ page: b.readUInt32LE(o), mapped: (b.readUInt32LE(o + 4) & 1) === 1, version: b.readDoubleLE(o + 8) });
  return out;
}

/** Encodes a Put payload: the entries, then the data of every non-trim entry in order. */
export function encodePut(entries: PutEntry[]): Buffer {
  const n = entries.filter((e) => !e.trim).length;
  const b = Buffer.allocUnsafe(entries.length * ENTRY + n * PAGE_SIZE);
  let d = entries.length * ENTRY;
  entries.forEach((e, i) => {
    b.writeUInt32LE(e.page, i * ENTRY);
    b.writeUInt32LE(e.trim ? 1 : 0, i * ENTRY + 4);
    b.writeDoubleLE(e.version, i * ENTRY + 8);
    if (!e.trim) {
      if (!e.data || e.data.length !== PAGE_SIZE) throw new RangeError(`put of page ${e.page} without 4096 bytes of data`);
      e.data.copy(b, d);
      d += PAGE_SIZE;
    }
  });
  return b;
}

/**
 * Decodes a Put payload of `count` entries on pages below `maxPages`.
 * @throws ProtocolError when the sizes, pages or versions do not add up.
 */
export function decodePut(b: Buffer, count: number, maxPages: number): PutEntry[] {
  if (count < 1 || b.length < count * ENTRY) throw new ProtocolError(`put of ${count} entries carries ${b.length} bytes`);
  const out: PutEntry[] = [];
  let d = count * ENTRY;
  for (let i = 0; i < count; i++) {
    const page = b.readUInt32LE(i * ENTRY);
    const trim = (b.readUInt32LE(i * ENTRY + 4) & 1) === 1;
    const version = b.readDoubleLE(i * ENTRY + 8);
    if (page >= maxPages) throw new ProtocolError(`put names page ${page} (extent has ${maxPages})`);
    if (!Number.isSafeInteger(version) || version < 1) throw new ProtocolError(`put names version ${version}`);
    if (trim) out.push({ page, version, trim });
    else {
      if (d + PAGE_SIZE > b.length) throw new ProtocolError('put payload ends before its data');
      out.push({ page, version, trim, data: b.subarray(d, d + PAGE_SIZE) });
      d += PAGE_SIZE;
    }
  }
  if (d !== b.length) throw new ProtocolError(`put payload has ${b.length - d} bytes too many`);
  return out;
}

/** One Missed reply entry. */
export interface MissedRecord {
  volume: number;
  extent: number;
  /** The record's change stamp on the reporting node. */
  stamp: number;
}

/** Encodes a Missed reply. */
export function encodeMissed(list: MissedRecord[]): Buffer {
  const b = Buffer.allocUnsafe(list.length * ENTRY);
  list.forEach((m, i) => {
    b.writeUInt32LE(m.volume, i * ENTRY);
    b.writeUInt32LE(m.extent, i * ENTRY + 4);
    b.writeDoubleLE(m.stamp, i * ENTRY + 8);
  });
  return b;
}

/** Decodes a Missed reply. @throws ProtocolError on a partial entry. */
export function decodeMissed(b: Buffer): MissedRecord[] {
  if (b.length % ENTRY) throw new ProtocolError(`missed payload of ${b.length} bytes`);
  const out: MissedRecord[] = [];
  for (let o = 0; o < b.length; o += ENTRY) out.push({ volume: b.readUInt32LE(o), extent: b.readUInt32LE(o + 4), stamp: b.readDoubleLE(o + 8) });
  return out;
}

/** Encodes a list of u32 (Suspects reply). */
export function encodeU32s(list: number[]): Buffer {
  const b = Buffer.allocUnsafe(list.length * 4);
  list.forEach((x, i) => b.writeUInt32LE(x >>> 0, i * 4));
  return b;
}

/** Decodes a list of u32. @throws ProtocolError on a partial entry. */
export function decodeU32s(b: Buffer): number[] {
  if (b.length % 4) throw new ProtocolError(`u32 list of ${b.length} bytes`);
  const out: number[] = [];
  for (let o = 0; o < b.length; o += 4) out.push(b.readUInt32LE(o));
  return out;
}
