/**
 * On-device layout of one partition (all integers little-endian):
 *
 *   block 0        superblock: magic "CAIRNALC", format, page size, region size, uuid, crc32c
 *   blocks 1..     the log: records appended back to back. A record is one 4 KiB header
 *                  block followed (for writes) by its data pages. The header holds the
 *                  summary of the record — per page: owner key, logical page, version, crc32c —
 *                  so a host write needs no separate metadata write.
 *
 * Record header (4096 bytes):
 *   0  u32 magic 0x474f4c43 ("CLOG")   4 u8 type (1 write, 2 trim)   5 u8 0   6 u16 entries
 *   8  f64 sequence (1, 2, 3, ...)     16 u32 crc32c of the previous header (chain)
 *   20 u32 uuid tag (first 4 bytes of the superblock uuid)   24.. entries   4092 u32 crc32c(0..4092)
 * Write entry (24 bytes): f64 key, u32 page, f64 version, u32 crc32c of the page.
 * Trim entry  (24 bytes): f64 key, u32 first page, f64 version, u32 page count.
 */

/** Allocation unit and logical page size: 4 KiB. */
export const PAGE = 4096;
export const SUPER_MAGIC = 'CAIRNALC';
export const FORMAT_VERSION = 1;
export const RECORD_MAGIC = 0x474f4c43;
export const REC_WRITE = 1;
export const REC_TRIM = 2;
export const HEADER_FIXED = 24;
export const ENTRY_SIZE = 24;
/** Entries that fit in one header block (before the trailing crc). */
export const MAX_ENTRIES = Math.floor((PAGE - HEADER_FIXED - 4) / ENTRY_SIZE);
