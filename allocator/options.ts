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
   * Default: the power of two giving ≥ 64 segments, clamped to 32 KiB..1 MiB. Each record
   * costs one 4 KiB header and one header describes ~340 scattered pages, so 1 MiB segments
   * cost ≈ WA / 256 of host bytes in summaries; bigger ones cost less per page but idle more
   * space in free and open segments (4 MiB against 1 MiB, 90 % utilisation, 1 GiB region,
   * uniform 4 KiB overwrites: metadata 2.22 % → 1.89 % of host bytes, but WA 5.43 → 5.98).
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
  };
}
