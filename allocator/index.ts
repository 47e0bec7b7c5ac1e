/**
 * allocator/: one partition's log-structured allocator over a region of a device file.
 * Imports nothing else of Cairn's.
 */
export { Allocator } from './allocator.ts';
/** The allocator's option, statistics, policy and recovery-report types (documented where declared). */
export type { AllocatorOptions, AllocatorStats, CleanerPolicy, RecoveryReport } from './allocator.ts';
export { AllocatorFullError, AllocatorStateError, ChecksumError, FormatError } from './errors.ts';
export { PAGE } from './layout.ts';
export { defaultSegmentBlocks, SUMMARY_MATCHED_BLOCKS } from './options.ts';
export { readCount, syncCount } from './device-io.ts';
export { setSyncIo, syncIoFigures, SyncIoPolicy, READ_LIMITS, WRITE_LIMITS } from './sync-io.ts';
/** The synchronous host I/O policy's bounds and counters (documented where declared). */
export type { SyncIoFigures, SyncIoLimits } from './sync-io.ts';
