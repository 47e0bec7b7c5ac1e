/** The allocator's space, traffic and memory figures. */
import { PAGE } from './layout.ts';
import type { PartitionState } from './partition-state.ts';
import type { RecoveryReport } from './recovery.ts';

/** Space, traffic and memory figures. Sizes in bytes. */
export interface AllocatorStats {
  /** Bytes of pages the partition can hold (the live-page limit × 4096). */
  capacityBytes: number;
  /** Region size. */
  rawBytes: number;
  segmentBytes: number;
  segments: number;
  freeSegments: number;
  /** Segments per state: free, open (being appended to), sealed, being cleaned, dying (empty, not yet reusable). */
  segmentStates: { free: number; open: number; sealed: number; cleaning: number; dying: number };
  /** Bytes of segments holding log data (not free), plus the superblock. */
  usedBytes: number;
  /** capacityBytes − liveBytes − retainedBytes: room for new pages. */
  freeBytes: number;
  /** Mapped pages × 4096. */
  liveBytes: number;
  /** Old page versions kept for snapshot pins × 4096. */
  retainedBytes: number;
  mappedPages: number;
  keys: number;
  /** Page bytes written by write(). */
  hostBytesWritten: number;
  /** Bytes appended to the log: host pages, cleaner copies, record headers. */
  deviceBytesWritten: number;
  /** Record headers (segment summaries) plus checkpoint bytes handed to the database. */
  metadataBytesWritten: number;
  summaryBytesWritten: number;
  /** Part of summaryBytesWritten that describes cleaner copies. */
  cleanerSummaryBytesWritten: number;
  checkpointBytesWritten: number;
  /** Page bytes copied by the cleaner. */
  cleanerBytesMoved: number;
  /** Page bytes read relocation copied (pages a read found scattered, relocate.ts). */
  readRelocatedBytes: number;
  /** Never-written segments of a sparse device file filled with zeros ahead of the log (prezero.ts). */
  prezeroedSegments: number;
  /** Background fdatasyncs of smoothed writeback (writeback.ts). */
  writebackSyncs: number;
  /** deviceBytesWritten / hostBytesWritten (1 when nothing was written). */
  writeAmplification: number;
  segmentsCleaned: number;
  /** Mean live fraction of the segments the cleaner emptied (0 when none). */
  cleanedUtilization: number;
  checkpoints: number;
  /** Estimated bytes of memory held by the page map (tables and per-key overhead). */
  mapBytes: number;
  /** What the recovery at open did. */
  recovery: RecoveryReport;
}

/** Computes the figures of `st` (capacity in pages `maxLive`). */
export function computeStats(st: PartitionState, maxLive: number, recovery: RecoveryReport): AllocatorStats {
  let mapBytes = 0;
  let keys = 0;
  for (const t of st.tables.values()) {
    mapBytes += t.bytes();
    if (t.mapped > 0) keys++;
  }
  const c = st.segs.counts();
  const k = st.counters;
  const S = st.geo.S;
  return {
    capacityBytes: maxLive * PAGE,
    rawBytes: st.geo.size,
    segmentBytes: S * PAGE,
    segments: st.segs.count,
    freeSegments: c.free,
    segmentStates: c,
    usedBytes: (st.segs.count - c.free) * S * PAGE + PAGE,
    freeBytes: (maxLive - st.mappedPages - st.retainedPages) * PAGE,
    liveBytes: st.mappedPages * PAGE,
    retainedBytes: st.retainedPages * PAGE,
    mappedPages: st.mappedPages,
    keys,
    hostBytesWritten: k.hostBytes,
    deviceBytesWritten: k.logBytes,
    metadataBytesWritten: k.summaryBytes + k.ckptBytes,
    summaryBytesWritten: k.summaryBytes,
    cleanerSummaryBytesWritten: k.coldSummaryBytes,
    checkpointBytesWritten: k.ckptBytes,
    cleanerBytesMoved: k.movedBytes,
    readRelocatedBytes: k.relocatedBytes,
    prezeroedSegments: k.prezeroedSegments,
    writebackSyncs: k.writebackSyncs,
    writeAmplification: k.hostBytes ? k.logBytes / k.hostBytes : 1,
    segmentsCleaned: k.segmentsCleaned,
    cleanedUtilization: k.segmentsCleaned ? k.cleanedLiveSum / k.segmentsCleaned / S : 0,
    checkpoints: k.checkpoints,
    mapBytes,
    recovery,
  };
}
