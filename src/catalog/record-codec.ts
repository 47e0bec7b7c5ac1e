/**
 * On-disk form of one catalog record: a 32-byte header and a JSON body, padded to whole
 * 4 KiB pages (at most RECORD_MAX_PAGES). The header lets a reader check the record it got
 * from one replica before trusting it:
 *
 *   0  u32 magic 'CATR'     4  u8 format (1)    5..7 zero
 *   8  u32 body bytes       12 u32 crc32c of the body
 *   16 f64 record version (the compare-and-swap counter; 0 is never written)
 *   24 u64 zero (reserved)
 *
 * A deleted record is a tombstone (body `null`): its version keeps counting, so a name that
 * is re-created never reuses a version and a stale replica can never win.
 */
import { crc32c } from '@node-rs/crc32';
import { PAGE_SIZE } from '../wire/index.ts';
import { RECORD_MAX_PAGES } from './keys.ts';

const MAGIC = 0x52544143; // "CATR" little-endian
const HEADER = 32;

/** Largest body a record holds, bytes. */
export const RECORD_MAX_BODY = RECORD_MAX_PAGES * PAGE_SIZE - HEADER;

/** Thrown for a record whose header or checksum is wrong (a torn or foreign page). */
export class RecordFormatError extends Error {
  override name = 'RecordFormatError';
}

/** A record as stored: its CAS version and its body (null for a tombstone). */
export interface StoredRecord {
  version: number;
  body: unknown;
}

/**
 * Encodes `body` at `version` into whole pages.
 * @throws RangeError when the JSON body exceeds RECORD_MAX_BODY or the version is not a positive safe integer.
 */
export function encodeRecord(version: number, body: unknown): Buffer {
  if (!Number.isSafeInteger(version) || version < 1) throw new RangeError(`record version ${version} is invalid`);
  const json = Buffer.from(JSON.stringify(body ?? null), 'utf8');
  if (json.length > RECORD_MAX_BODY) throw new RangeError(`catalog record of ${json.length} bytes exceeds ${RECORD_MAX_BODY}`);
  const pages = Math.ceil((HEADER + json.length) / PAGE_SIZE);
  const out = Buffer.alloc(pages * PAGE_SIZE);
  out.writeUInt32LE(MAGIC, 0);
  out[4] = 1;
  out.writeUInt32LE(json.length, 8);
  out.writeUInt32LE(crc32c(json), 12);
  out.writeDoubleLE(version, 16);
  json.copy(out, HEADER);
  return out;
}

/** Pages a record occupies, from its first page alone. @throws RecordFormatError. */
export function recordPages(first: Buffer): number {
  const { length } = header(first);
  return Math.ceil((HEADER + length) / PAGE_SIZE);
}

function header(buf: Buffer): { length: number; crc: number; version: number } {
  if (buf.length < HEADER || buf.readUInt32LE(0) !== MAGIC || buf[4] !== 1) throw new RecordFormatError('not a catalog record');
  const length = buf.readUInt32LE(8);
  if (length > RECORD_MAX_BODY) throw new RecordFormatError(`record body of ${length} bytes is too long`);
  return { length, crc: buf.readUInt32LE(12), version: buf.readDoubleLE(16) };
}

/**
 * Decodes a record from its pages (at least recordPages(first) of them).
 * @throws RecordFormatError on a bad header, a short buffer, a checksum mismatch or bad JSON.
 */
export function decodeRecord(buf: Buffer): StoredRecord {
  const h = header(buf);
  if (buf.length < HEADER + h.length) throw new RecordFormatError('record is cut short');
  const json = buf.subarray(HEADER, HEADER + h.length);
  if (crc32c(json) !== h.crc) throw new RecordFormatError('record checksum mismatch');
  try {
    return { version: h.version, body: JSON.parse(json.toString('utf8')) as unknown };
  } catch {
    throw new RecordFormatError('record body is not JSON');
  }
}
