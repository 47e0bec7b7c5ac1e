/**
 * A storage node's families: data-path requests by op and status (with latency), bytes of
 * host writes it applied as the extent's primary or as a replica, fsyncs, connections, and
 * per partition the allocator's appended bytes, write amplification, cleaner work and
 * live/free space; the map (epoch, nodes up and in) as this node holds it; and the
 * recovery work this node has (extents and bytes to move, stale extents it does not serve,
 * missed-write records it keeps for absent members, i.e. degraded extents).
 */
import type { Registry } from 'prom-client';
import { mirroredCounter, mirroredGauge, type Sample } from './registry.ts';
import { HistogramCells, mirroredHistogram } from './tally.ts';

/** Buckets of cairn_node_request_duration_seconds, seconds: 25 µs to 10 s. */
const NODE_LATENCY_BUCKETS = [25e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 100e-3, 500e-3, 2.5, 10];

/** One partition's figures, as the allocator reports them (bytes; see allocator/stats.ts). */
export interface PartitionFigures {
  /** Partition leaf id (placement's id of the partition). */
  leaf: number;
  capacityBytes: number;
  liveBytes: number;
  freeBytes: number;
  retainedBytes: number;
  hostBytesWritten: number;
  deviceBytesWritten: number;
  metadataBytesWritten: number;
  cleanerBytesMoved: number;
  readRelocatedBytes: number;
  segmentsCleaned: number;
  writeAmplification: number;
}

/** Recovery work of one kind on this node (src/recovery/report.ts RecoveryProgress). */
export interface RecoveryFigures {
  kind: string;
  extentsTotal: number;
  extentsDone: number;
  bytesTotal: number;
  bytesDone: number;
}

/** What registerNodeMetrics reads at scrape time. */
export interface NodeMetricsSource {
  /** Every partition this node holds. */
  partitions(): PartitionFigures[];
  /** fdatasync calls this process made (allocator/device-io.ts syncCount). */
  fsyncs(): number;
  /** Host reads and write-path writes this process made synchronously, and their back-offs to the thread pool (allocator/sync-io.ts syncIoFigures). */
  syncIo(): Record<'reads' | 'writes', { calls: number; backoffs: number }>;
  /** Open data-path connections: accepted from initiators and peers (`in`), held to peers (`out`). */
  connections(): { in: number; out: number };
  /** Map epoch this node holds. */
  epoch(): number;
  /** Nodes of that map: how many up, down, in and out. */
  nodes(): { up: number; down: number; in: number; out: number };
  /** Recovery progress per kind (current pass). */
  recovery(): RecoveryFigures[];
  /** Extents this node holds but does not serve until it pulls them (stale). */
  staleExtents(): number;
  /** Extents with writes an absent member missed, recorded here for its resync (degraded). */
  degradedExtents(): number;
  /** Host I/O per volume id served here: reads served, writes applied as primary (src/node/server.ts VolumeIoTotals). */
  volumeIo?(): Array<{ volume: number; reads: number; writes: number; readBytes: number; writeBytes: number }>;
}

/** Families a node updates on the data path (the rest is read at scrape time). */
export interface NodeMetrics {
  /**
   * Records one data-path request: wire opcode and status names (src/wire/protocol.ts Op,
   * Status), and its duration in seconds.
   */
  request(op: string, status: string, seconds: number): void;
  /** Records `bytes` of host write applied as the extent's primary (first member) or as a replica. */
  hostWrite(role: 'primary' | 'replica', bytes: number): void;
}

/** Registers a node's families on `registry`; see the module comment. */
export function registerNodeMetrics(registry: Registry, src: NodeMetricsSource): NodeMetrics {
  // Data-path figures as plain numbers, mirrored at scrape (src/metrics/tally.ts).
  const byOp = new Map<string, { statuses: Map<string, number>; duration: HistogramCells }>();
  const writeBytes = { primary: 0, replica: 0 };
  mirroredCounter(registry, 'cairn_node_requests_total', 'Data-path requests answered, by wire opcode and status.', ['op', 'status'], () =>
    [...byOp].flatMap(([op, t]) => [...t.statuses].map(([status, value]) => ({ labels: { op, status }, value }))));
  mirroredHistogram(registry, 'cairn_node_request_duration_seconds', 'Data-path request time on the node, from decode to reply.', ['op'], NODE_LATENCY_BUCKETS, () =>
    [...byOp].map(([op, t]) => ({ labels: { op }, cells: t.duration })));
  mirroredCounter(registry, 'cairn_node_host_write_bytes_total', 'Host write bytes applied here, as the extent\'s primary (first member) or as a replica copy.', ['role'], () =>
    (['primary', 'replica'] as const).filter((role) => writeBytes[role] > 0).map((role) => ({ labels: { role }, value: writeBytes[role] })));
  const part = <K extends keyof PartitionFigures>(k: K) => (): Array<Sample<'partition'>> => src.partitions().map((p) => ({ labels: { partition: p.leaf }, value: p[k] as number }));
  mirroredCounter(registry, 'cairn_partition_host_bytes_written_total', 'Page bytes the hosts (and recovery) wrote to the partition.', ['partition'], part('hostBytesWritten'));
  mirroredCounter(registry, 'cairn_partition_appended_bytes_total', 'Bytes appended to the partition\'s log: host pages, cleaner and read-relocation copies, and record headers.', ['partition'], part('deviceBytesWritten'));
  mirroredCounter(registry, 'cairn_partition_metadata_bytes_written_total', 'Record headers and checkpoint bytes written.', ['partition'], part('metadataBytesWritten'));
  mirroredCounter(registry, 'cairn_partition_cleaner_moved_bytes_total', 'Live page bytes the cleaner copied.', ['partition'], part('cleanerBytesMoved'));
  mirroredCounter(registry, 'cairn_partition_read_relocated_bytes_total', 'Page bytes rewritten side by side because a read found them scattered over the log.', ['partition'], part('readRelocatedBytes'));
  mirroredCounter(registry, 'cairn_partition_cleaner_segments_total', 'Segments the cleaner emptied.', ['partition'], part('segmentsCleaned'));
  mirroredGauge(registry, 'cairn_partition_write_amplification_ratio', 'Appended bytes over host bytes since the partition opened (1 when nothing was written).', ['partition'], part('writeAmplification'));
  mirroredGauge(registry, 'cairn_partition_capacity_bytes', 'Page bytes the partition can hold.', ['partition'], part('capacityBytes'));
  mirroredGauge(registry, 'cairn_partition_live_bytes', 'Bytes of mapped pages.', ['partition'], part('liveBytes'));
  mirroredGauge(registry, 'cairn_partition_free_bytes', 'Room for new pages: capacity minus live and snapshot-retained bytes.', ['partition'], part('freeBytes'));
  mirroredGauge(registry, 'cairn_partition_retained_bytes', 'Old page versions kept for snapshot pins.', ['partition'], part('retainedBytes'));
  mirroredCounter(registry, 'cairn_node_fsyncs_total', 'fdatasync calls on the node\'s devices.', [], () => [{ labels: {}, value: src.fsyncs() }]);
  const syncIo = (k: 'calls' | 'backoffs') => () => {
    const f = src.syncIo();
    return [{ labels: { op: 'read' }, value: f.reads[k] }, { labels: { op: 'write' }, value: f.writes[k] }];
  };
  mirroredCounter(registry, 'cairn_node_sync_io_total', 'Host reads and write-path writes made synchronously on the event loop (no thread-pool hand-off).', ['op'], syncIo('calls'));
  mirroredCounter(registry, 'cairn_node_sync_io_backoffs_total', 'Times synchronous host I/O turned slow (device, not page cache) and went back to the thread pool for 100 ms.', ['op'], syncIo('backoffs'));
  mirroredGauge(registry, 'cairn_node_connections', 'Open data-path connections: in (from initiators and peers), out (to peers).', ['direction'], () => {
    const c = src.connections();
    return [{ labels: { direction: 'in' }, value: c.in }, { labels: { direction: 'out' }, value: c.out }];
  });
  mirroredGauge(registry, 'cairn_map_epoch', 'Epoch of the cluster map this process holds.', [], () => [{ labels: {}, value: src.epoch() }]);
  mirroredGauge(registry, 'cairn_map_nodes', 'Storage nodes of the map by state (up, down, in, out).', ['state'], () => Object.entries(src.nodes()).map(([state, value]) => ({ labels: { state }, value })));
  mirroredGauge(registry, 'cairn_recovery_extents_remaining', 'Extents this node still has to pull (or scrub) in the current pass, by kind.', ['kind'], () => src.recovery().map((r) => ({ labels: { kind: r.kind }, value: Math.max(0, r.extentsTotal - r.extentsDone) })));
  mirroredGauge(registry, 'cairn_recovery_bytes_remaining', 'Bytes this node still has to pull (or scrub) in the current pass, by kind.', ['kind'], () => src.recovery().map((r) => ({ labels: { kind: r.kind }, value: Math.max(0, r.bytesTotal - r.bytesDone) })));
  mirroredGauge(registry, 'cairn_stale_extents', 'Extents this node holds but does not serve until it has pulled what it missed.', [], () => [{ labels: {}, value: src.staleExtents() }]);
  mirroredGauge(registry, 'cairn_degraded_extents', 'Extents with writes a down member missed, recorded on this node for that member\'s resync.', [], () => [{ labels: {}, value: src.degradedExtents() }]);
  const vio = (pick: (v: { reads: number; writes: number; readBytes: number; writeBytes: number }, op: 'read' | 'write') => number) => (): Array<Sample<'volume' | 'op'>> =>
    (src.volumeIo?.() ?? []).flatMap((v) => (['read', 'write'] as const).map((op) => ({ labels: { volume: v.volume, op }, value: pick(v, op) })));
  mirroredCounter(registry, 'cairn_node_volume_requests_total', 'Host requests per volume id counted once cluster-wide: reads this node served, writes it applied as the extent\'s primary.', ['volume', 'op'], vio((v, op) => (op === 'read' ? v.reads : v.writes)));
  mirroredCounter(registry, 'cairn_node_volume_bytes_total', 'Bytes of those requests per volume id.', ['volume', 'op'], vio((v, op) => (op === 'read' ? v.readBytes : v.writeBytes)));
  return {
    request(op, status, seconds) {
      let t = byOp.get(op);
      if (!t) byOp.set(op, (t = { statuses: new Map(), duration: new HistogramCells(NODE_LATENCY_BUCKETS) }));
      t.statuses.set(status, (t.statuses.get(status) ?? 0) + 1);
      t.duration.observe(seconds);
    },
    hostWrite(role, bytes) {
      writeBytes[role] += bytes;
    },
  };
}
