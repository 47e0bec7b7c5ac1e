/** Options of Allocator.open and the tuning derived from them. */
import { AllocatorStateError } from './errors.ts';
import { PAGE } from './layout.ts';
import { MIN_PAGES_PER_HEADER } from './summary.ts';
import { RESERVE } from './log-streams.ts';
import type { CleanerPolicy } from './victim.ts';

/** Where the partition lives and how it behaves. */
export interface AllocatorOptions {
  /** Path of the device file (created if missing unless `create` is false). */
  path: string;
  /** Byte offset of the region in the file; a multiple of 4096. */
  offset: number;
  /** Region size in bytes; a multiple of 4096, at least 256 KiB. */
  size: number;
  /** Format the region if block 0 is all zeros. Default true. */
  create?: boolean;
  /** Directory of the checkpoint database. Default `${path}.meta/${offset}`. */
  metaDir?: string;
  /**
   * When the checkpoint database is missing or belongs to another region, rebuild the page
   * map from the log alone instead of failing with FormatError. Pages trimmed by trim
   * records that were already recycled (after a checkpoint covered them) may reappear, and
   * snapshot pins are forgotten. Default false.
   */
  rebuildFromLog?: boolean;
  /**
   * Segment size in bytes, used only when formatting: a multiple of 4096, 8 KiB..64 MiB.
   * Default: defaultSegmentBlocks (1.25 MiB once the region holds 64 of them).
   */
  segmentBytes?: number;
  /** Most live pages allowed, as a fraction of all segment blocks. Default 0.9. */
  maxUtilization?: number;
  /**
   * Longest time in milliseconds a host record's summary block is held back so that later
   * writes can share it (one 4 KiB header per up to a segment of pages instead of one per
   * group commit). Its pages are written and readable at once, and flush() writes the
   * summary; a process crash before it is written loses those pages as it may lose any
   * unflushed write. 0: every group commit writes its own summary. Default 100.
   */
  summaryHoldMs?: number;
  /** Cleaner victim policy. Default 'cost-benefit'. */
  cleaner?: CleanerPolicy;
  /** Background cleaning rate limit in bytes copied per second (0: none). Default 256 MiB/s. */
  cleanerBytesPerSec?: number;
  /**
   * Checkpoint once hosts wrote this many × the live bytes since the last one (at least
   * `checkpointMinBytes` of host writes). Counted in host bytes, not appended bytes, so the
   * cleaner's copies do not multiply the rate: each checkpoint writes ≈ 13 bytes per mapped
   * page, ≈ 0.1 % of host bytes at the default whatever the write amplification. Recovery
   * rolls forward over the records written since (≈ 0.3 s of CPU per GiB of log here), which
   * can never be more than the region holds. Default 3.
   */
  checkpointFactor?: number;
  /** Lower bound of the checkpoint interval in host bytes written. Default 256 MiB. */
  checkpointMinBytes?: number;
  /**
   * Test hook: milliseconds to wait between a host read's map lookup and its device
   * read, to widen the window in which the cleaner could reuse the segment. Default 0.
   */
  readDelayMs?: number;
  /**
   * Relocate reads found scattered over the log: their pages, already read, are appended
   * side by side through the cleaner's path (relocate.ts). Default true.
   */
  relocateReads?: boolean;
  /**
   * When the device is a regular file with holes (sparse), fill each never-written segment
   * with zeros just before the log reaches it, so appends and fdatasync do not allocate
   * blocks one write at a time (prezero.ts). Block devices and files without holes are
   * never zeroed. Default true.
   */
  prezero?: boolean;
  /**
   * Test hook: milliseconds to wait before a segment's zeros are written, to widen the window
   * in which the log could reach that segment. Default 0.
   */
  prezeroDelayMs?: number;
  /**
   * Bytes the log writes between two background fdatasyncs, so that dirty pages go to the
   * device steadily rather than in one late burst of kernel writeback (writeback.ts). Default
   * 64 MiB; 0 turns it off.
   */
  writebackBytes?: number;
}

/** Tuning resolved from the options and the geometry. */
export interface Tuning {
  /** Most live pages (mapped + kept for pins). */
  maxLive: number;
  minGarbage: number;
  policy: CleanerPolicy;
  cleanerBytesPerSec: number;
  lowWater: number;
  highWater: number;
  checkpointFactor: number;
  checkpointMinBlocks: number;
  readDelayMs: number;
  summaryHoldMs: number;
  relocateReads: boolean;
  /** AllocatorOptions.prezero (the device must still be a sparse file). */
  prezero: boolean;
  prezeroDelayMs: number;
  /** AllocatorOptions.writebackBytes. */
  writebackBytes: number;
}

/**
 * Blocks per segment of a full-size segment: one record header plus the 319 pages it can
 * describe when they are scattered (≈ 10.5–12 bytes per one-page run with its crc32c
 * against BODY_MAX = 4044 bytes: 337–385 fit). Both streams normally put one record in a
 * segment, so summaries cost ≈ WA / (SUMMARY_MATCHED_BLOCKS − 1) of host bytes: 1.25 MiB
 * segments need 20 % fewer summary bytes than 1 MiB ones, which left ~80 pages of each
 * header unused. Bigger segments still would need a second header whenever entries grow
 * (larger version deltas in a long-lived volume) and idle more space in free and open
 * segments (4 MiB: WA 5.43 → 5.98 at 90 %). Measured at 90 % utilisation, 1 GiB region,
 * uniform 4 KiB overwrites: 1 MiB metadata 2.27 %, WA 5.43; 1.25 MiB 1.88 %, WA 5.45.
 */
export const SUMMARY_MATCHED_BLOCKS = 320;

/**
 * Default blocks per segment for a region of `blocks` 4 KiB blocks (the superblock
 * excluded): SUMMARY_MATCHED_BLOCKS (1.25 MiB) when that gives at least 64 segments,
 * else the largest power of two from 8 blocks (32 KiB) up to 256 (1 MiB) that does, so
 * that small regions keep enough segments for the cleaner to choose from.
 */
export function defaultSegmentBlocks(blocks: number): number {
  if (SUMMARY_MATCHED_BLOCKS * 64 <= blocks) return SUMMARY_MATCHED_BLOCKS;
  let s = 8;
  while (s < 256 && s * 2 * 64 <= blocks) s *= 2;
  return s;
}

/**
 * Derives the tuning for `segments` segments of `S` blocks.
 * @throws AllocatorStateError on an option out of range.
 */
export function resolveTuning(opts: AllocatorOptions, S: number, segments: number): Tuning {
  const util = opts.maxUtilization ?? 0.9;
  if (!(util > 0 && util <= 0.99)) throw new AllocatorStateError(`maxUtilization ${util} must be in (0, 0.99]`);
  // Cleaning a segment gains space only if its garbage exceeds the headers its copies need.
  const minGarbage = Math.ceil(S / MIN_PAGES_PER_HEADER) + 2;
  const perSeg = S - minGarbage;
  const maxLive = Math.max(0, Math.floor(Math.min(util * segments * S, (segments - RESERVE - 3) * perSeg)));
  const hold = opts.summaryHoldMs ?? 100;
  if (!(hold >= 0 && hold <= 60_000)) throw new AllocatorStateError(`summaryHoldMs ${hold} must be in 0..60000`);
  const writebackBytes = opts.writebackBytes ?? 64 * 1024 * 1024;
  if (!(Number.isSafeInteger(writebackBytes) && writebackBytes >= 0)) throw new AllocatorStateError(`writebackBytes ${writebackBytes} must be a whole number of bytes, 0 or more`);
  const factor = opts.checkpointFactor ?? 3;
  if (!(factor > 0)) throw new AllocatorStateError(`checkpointFactor ${factor} must be positive`);
  // Free segments kept ahead of the host stream. Each one idles space (LFS utilisation is
  // live ÷ all segments), so the pool stays small: one more than the cleaner's reserve,
  // plus one per 1024 segments for bursts.
  const lowWater = RESERVE + 1 + Math.floor(segments / 1024);
  return {
    maxLive,
    minGarbage,
    policy: opts.cleaner ?? 'cost-benefit',
    cleanerBytesPerSec: opts.cleanerBytesPerSec ?? 256 * 1024 * 1024,
    lowWater,
    highWater: lowWater + 1 + Math.floor(segments / 1024),
    checkpointFactor: factor,
    checkpointMinBlocks: Math.ceil((opts.checkpointMinBytes ?? 256 * 1024 * 1024) / PAGE),
    readDelayMs: opts.readDelayMs ?? 0,
    summaryHoldMs: hold,
    relocateReads: opts.relocateReads ?? true,
    prezero: opts.prezero ?? true,
    prezeroDelayMs: opts.prezeroDelayMs ?? 0,
    writebackBytes,
  };
}
