/**
 * src/recovery: keeping an extent's copies identical — the durable record of what a down
 * member missed (log-guided resync), page-by-page reconcile by version (resync, peering
 * after a writer change, read repair), the writer's unsettled extents, the payload codecs
 * of the recovery requests, and the per-node report behind `cairn status`.
 */
export { MissedLog, type MissedEntry } from './missed-log.ts';
export { newer, reconcileExtent, repairRange, type ExtentCopy, type ReconcileResult } from './reconcile.ts';
export { RecoveryThrottle, type RecoveryThrottleOptions } from './throttle.ts';
export { ProgressTracker } from './progress.ts';
export { predictMoves, type PredictedMoves, type VolumeExtents } from './moves.ts';
export { UnsettledExtents } from './unsettled.ts';
export {
  ENTRY, decodeMissed, decodePut, decodeU32s, decodeVersions, encodeMissed, encodePut, encodeU32s, encodeVersions,
  type MissedRecord, type PageVersion, type PutEntry,
} from './codec.ts';
/** One node's redundancy report (GET /v1/recovery). */
export type { NodeRecoveryReport, RecoveryKind, RecoveryProgress, RecoveryTraffic } from './report.ts';
/** Every recovery kind, in report order. */
export { RECOVERY_KINDS } from './report.ts';
