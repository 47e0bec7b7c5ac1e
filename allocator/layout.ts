/**
 * On-device layout of one partition (all integers little-endian, block = 4 KiB):
 *
 *   block 0                 superblock: magic "CAIRNALC", format, page size, region size,
 *                           uuid, segment size in blocks, segment count, crc32c.
 *   blocks 1 + i·S ...      segment i (S blocks). A segment is filled front to back with
 *                           records; a record is one header block followed by its data
 *                           pages, written with one vectored write together with every other
 *                           record of the same group commit that lands in that segment.
 *
 * Record header (4096 bytes) — the segment summary of the pages that follow it:
 *    0 u32 magic "CLG2"      4 u8 type (1 write, 2 trim, 3 move)   5 u8 stream
 *    6 u16 entries           8 f64 seq (global, strictly increasing in log order)
 *   16 u32 crc32c of the previous header in this segment (0 for the first record)
 *   20 u32 uuid tag (first 4 bytes of the superblock uuid)   24 u32 segment index
 *   28 u16 data blocks that follow   30 u16 0   32 f64 age (log clock of the youngest data)
 *   40 entries, 24 bytes each        4092 u32 crc32c of bytes 0..4092
 * Write / move entry: f64 key, u32 page, f64 version, u32 crc32c of that data page.
 * Trim entry:         f64 key, u32 first page, f64 version, u32 page count.
 *
 * A header is accepted only if magic, crc, uuid tag, segment index and the per-segment
 * chain all match, which makes torn appends and stale records of an earlier use of the
 * segment unreachable. Design after Rosenblum & Ousterhout, "The Design and Implementation
 * of a Log-Structured File System" (SOSP 1991), §3.3 (segment summary blocks).
 */
import { crc32c } from '@node-rs/crc32';

/** Allocation unit and logical page size: 4 KiB. */
export const PAGE = 4096;
/** Superblock magic at byte 0 of a region. */
export const SUPER_MAGIC = 'CAIRNALC';
/** Format version written by this code; others are refused with FormatError. */
export const FORMAT_VERSION = 2;
/** Record header magic ("CLG2" little-endian). */
export const RECORD_MAGIC = 0x32474c43;
/** Record type: host write (entries describe the data pages that follow). */
export const REC_WRITE = 1;
/** Record type: host trim (header only; entries are page ranges). */
export const REC_TRIM = 2;
/** Record type: cleaner copy of live pages (same entry format as a write). */
export const REC_MOVE = 3;
/** Bytes before the first entry of a header. */
export const HEADER_FIXED = 40;
/** Bytes per header entry. */
export const ENTRY_SIZE = 24;
/** Entries that fit in one header block (before the trailing crc): 168. */
export const MAX_ENTRIES = Math.floor((PAGE - HEADER_FIXED - 4) / ENTRY_SIZE);
/** "No block" / "no version" marker in 32-bit map slots. */
export const NONE = 0xffffffff;

/** Geometry and identity read from (or written to) a superblock. */
export interface Superblock {
  /** Region size in bytes. */
  size: number;
  /** 16 random bytes chosen at format time. */
  uuid: Buffer;
  /** Blocks per segment. */
  segBlocks: number;
  /** Number of segments. */
  segments: number;
}

/** Encodes a superblock into a fresh 4 KiB buffer (crc included). */
export function encodeSuperblock(sb: Superblock): Buffer {
  const b = Buffer.alloc(PAGE);
  b.write(SUPER_MAGIC, 0, 'latin1');
  b.writeUInt32LE(FORMAT_VERSION, 8);
  b.writeUInt32LE(PAGE, 12);
  b.writeDoubleLE(sb.size, 16);
  sb.uuid.copy(b, 24);
  b.writeUInt32LE(sb.segBlocks, 40);
  b.writeUInt32LE(sb.segments, 44);
  b.writeUInt32LE(crc32c(b.subarray(0, PAGE - 4)), PAGE - 4);
  return b;
}

/**
 * Decodes block 0 of a region. Returns null for an all-zero block (unformatted region),
 * or a string describing why the block is not a valid superblock of this format.
 */
export function decodeSuperblock(b: Buffer): Superblock | null | string {
  if (b.every((x) => x === 0)) return null;
  if (b.toString('latin1', 0, 8) !== SUPER_MAGIC) return 'not a Cairn allocator region';
  if (crc32c(b.subarray(0, PAGE - 4)) !== b.readUInt32LE(PAGE - 4)) return 'superblock checksum mismatch';
  if (b.readUInt32LE(8) !== FORMAT_VERSION) return `format ${b.readUInt32LE(8)} not supported (want ${FORMAT_VERSION})`;
  if (b.readUInt32LE(12) !== PAGE) return `page size ${b.readUInt32LE(12)} not supported`;
  return { size: b.readDoubleLE(16), uuid: Buffer.from(b.subarray(24, 40)), segBlocks: b.readUInt32LE(40), segments: b.readUInt32LE(44) };
}

/** Fields of a record header (entries are read from the buffer directly). */
export interface RecordHeader {
  type: number;
  stream: number;
  entries: number;
  seq: number;
  prev: number;
  segment: number;
  dataBlocks: number;
  age: number;
  /** crc32c of the header (stored in its last 4 bytes). */
  crc: number;
}

/** Starts a header block: magic, type, stream, uuid tag, segment, seq, prev, age. */
export function initHeader(h: Buffer, type: number, stream: number, uuidTag: number, segment: number, seq: number, prev: number, age: number): void {
  h.fill(0);
  h.writeUInt32LE(RECORD_MAGIC, 0);
  h[4] = type;
  h[5] = stream;
  h.writeDoubleLE(seq, 8);
  h.writeUInt32LE(prev, 16);
  h.writeUInt32LE(uuidTag, 20);
  h.writeUInt32LE(segment, 24);
  h.writeDoubleLE(age, 32);
}

/** Finishes a header: entry and data-block counts, then its crc. Returns the crc. */
export function sealHeader(h: Buffer, entries: number, dataBlocks: number): number {
  h.writeUInt16LE(entries, 6);
  h.writeUInt16LE(dataBlocks, 28);
  const crc = crc32c(h.subarray(0, PAGE - 4));
  h.writeUInt32LE(crc, PAGE - 4);
  return crc;
}

/**
 * Parses and validates a header block found at block `pos` of segment `segment` (S blocks
 * per segment). Returns null unless magic, crc, uuid tag, segment, type, counts and `prev`
 * (the crc of the preceding header in the segment, 0 for the first) all check out.
 */
export function parseHeader(h: Buffer, uuidTag: number, segment: number, pos: number, segBlocks: number, prev: number): RecordHeader | null {
  if (h.readUInt32LE(0) !== RECORD_MAGIC) return null;
  const crc = h.readUInt32LE(PAGE - 4);
  if (crc32c(h.subarray(0, PAGE - 4)) !== crc) return null;
  if (h.readUInt32LE(20) !== uuidTag || h.readUInt32LE(24) !== segment || h.readUInt32LE(16) !== prev) return null;
  const type = h[4];
  const entries = h.readUInt16LE(6);
  const dataBlocks = h.readUInt16LE(28);
  if (entries > MAX_ENTRIES) return null;
  if (type === REC_TRIM) {
    if (dataBlocks !== 0) return null;
  } else if (type === REC_WRITE || type === REC_MOVE) {
    if (dataBlocks !== entries || entries === 0) return null;
  } else return null;
  if (pos + 1 + dataBlocks > segBlocks) return null;
  return { type, stream: h[5], entries, seq: h.readDoubleLE(8), prev, segment, dataBlocks, age: h.readDoubleLE(32), crc };
}
