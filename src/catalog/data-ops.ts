/**
 * What the catalog does to a volume's data, through the data path like any initiator:
 * find the extents held anywhere (Op.Held), trim them under a lease of its own (delete),
 * and take a snapshot — a writer change by a writer that writes nothing (fence the attached
 * writer, make the members agree on every unsettled extent, pin the version below the new
 * generation on every node).
 */
import pMap from 'p-map';
import type { VolumeConfig } from '../config/index.ts';
import { SnapshotView, Volume, extentVersions, heldExtents, pinSnapshot, unpinSnapshot, type ViewSource } from '../initiator/index.ts';
import { isAllZero } from '../volume/index.ts';
import { VERSION_SEQ_SPAN, type ConnectionPool } from '../wire/index.ts';
import type { LeaseCoordinator } from './lease-coordinator.ts';
import type { JobProgress } from './jobs.ts';
import type { SnapshotRecord, VolumeRecord } from './records.ts';

/** Options of VolumeDataOps. */
export interface VolumeDataOpsOptions {
  views: ViewSource;
  connections: ConnectionPool;
  leases: LeaseCoordinator;
  /** Bound on I/O waiting for members, ms (default 30000). */
  ioTimeoutMs?: number;
  /** Where the phases of snapshots are logged. */
  log?: { info(o: object, m: string): void };
}

/** The VolumeConfig shape the initiator's Volume takes, from a catalog record. */
export function volumeConfigOf(r: VolumeRecord): VolumeConfig {
  return { id: r.id, name: r.name, sizeBytes: r.sizeBytes, pool: r.pool, extentBytes: r.extentBytes, thin: r.thin, lease: 0 };
}

/** See the module comment. */
export class VolumeDataOps {
  constructor(private readonly opts: VolumeDataOpsOptions) {}

  /** Extent indexes of volume `id` any up node holds mapped pages of. @throws Error when an up node does not answer. */
  heldExtents(id: number): Promise<number[]> {
    return heldExtents(this.opts.views, this.opts.connections, id);
  }

  /**
   * The shape of every catalog job on a volume's data: under a write lease of the catalog's
   * (fencing any attachment first, so nothing it writes is overwritten), lists the extents
   * to work on, runs `each` on them `concurrency` at a time reporting progress in extents,
   * and flushes.
   * @throws whatever the listing, `each` or the flush throws.
   */
  private async extentJob(record: VolumeRecord, progress: JobProgress, list: () => Promise<number[]>, each: (vol: Volume, extent: number) => Promise<void>, concurrency: number): Promise<void> {
    await this.opts.leases.withLease(record.id, async (gen) => {
      const vol = this.volume(record);
      try {
        await vol.adoptLease(gen);
        const extents = await list();
        progress(0, extents.length);
        let done = 0;
        await pMap(extents, async (x) => {
          await each(vol, x);
          progress(++done, extents.length);
        }, { concurrency });
        await vol.flush();
      } finally {
        vol.close();
      }
    });
  }

  /**
   * Trims every held extent of `record` under a write lease of the catalog's (fencing any
   * attachment), so every member frees the space. Progress is in extents.
   * @throws BlockDeviceError / Error when a trim or the extent listing fails.
   */
  trimAll(record: VolumeRecord, progress: JobProgress): Promise<void> {
    return this.extentJob(record, progress, () => this.heldExtents(record.id), async (vol, x) => {
      const start = x * record.extentBytes;
      if (start < record.sizeBytes) await vol.trim(start, Math.min(record.extentBytes, record.sizeBytes - start));
    }, 16);
  }

  /**
   * Takes a crash-consistent snapshot of `record`: fences the attached writer with a new
   * generation g, reconciles its unsettled extents (so every member holds the same
   * versions), and pins version g × 2^32 (every write of an older generation) on every up
   * node. Returns the pinned version. The writer resumes under a newer generation after
   * this resolves (LeaseCoordinator.resume).
   * @throws Error when the pin failed on a node holding the volume (the pins that were made
   *         are released again).
   */
  snapshot(record: VolumeRecord): Promise<{ version: number; pinned: number[] }> {
    const t0 = performance.now();
    return this.opts.leases.withLease(record.id, async (gen) => {
      const t1 = performance.now();
      const vol = this.volume(record);
      try {
        await vol.adoptLease(gen);
      } finally {
        vol.close();
      }
      const t2 = performance.now();
      const version = gen * VERSION_SEQ_SPAN;
      const r = await pinSnapshot(this.opts.views, this.opts.connections, record.id, version);
      this.opts.log?.info({ volume: record.name, leaseMs: round(t1 - t0), peeringMs: round(t2 - t1), pinMs: round(performance.now() - t2), reconciled: vol.counters.reconciled }, 'snapshot taken');
      if (r.failed.length > 0) {
        await unpinSnapshot(this.opts.views, this.opts.connections, record.id, version).catch(() => undefined);
        throw new Error(`snapshot pin failed on ${r.failed.map((f: { node: number; error: string }) => `node ${f.node} (${f.error})`).join(', ')}`);
      }
      return { version, pinned: r.pinned };
    });
  }

  /**
   * Copies into clone `record` every extent it has not written yet, from its parent
   * snapshot, under a lease of the catalog's (the clone's writer waits meanwhile).
   * Progress is in extents. Extents the parent reads as zeros are skipped.
   * @throws Error when `record` has no parent; BlockDeviceError from the copy.
   */
  async flatten(record: VolumeRecord, progress: JobProgress): Promise<void> {
    const parent = record.parent;
    if (!parent) throw new Error(`volume ${record.name} is not a clone`);
    const view = this.snapshotView({ ...record, id: parent.volumeId, name: parent.volume, sizeBytes: parent.sizeBytes }, parent.version);
    const limit = Math.min(record.sizeBytes, parent.sizeBytes);
    const notHeld = async (): Promise<number[]> => {
      const own = new Set(await this.heldExtents(record.id));
      const todo: number[] = [];
      for (let x = 0; x * record.extentBytes < limit; x++) if (!own.has(x)) todo.push(x);
      return todo;
    };
    await this.extentJob(record, progress, notHeld, async (vol, x) => {
      // Trimmed whole by the clone: it holds versions but no mapped page — still its own.
      const mine = await extentVersions(this.opts.views, this.opts.connections, record.id, record.pool, x, record.extentBytes / 4096);
      if (mine.length > 0) return;
      const start = x * record.extentBytes;
      const data = await view.read(start, Math.min(record.extentBytes, limit - start));
      if (!isAllZero(data)) await vol.write(start, data);
    }, 8);
  }

  /**
   * Rewrites volume `record` with the content of its snapshot `snap`, under a lease of the
   * catalog's: every extent inside the snapshot is read from the snapshot view and written
   * (or, where the snapshot reads zeros, trimmed if the volume holds it); extents the volume
   * holds past the snapshot's end are trimmed. An extent the volume trimmed whole after the
   * snapshot holds no mapped page, so the snapshot's whole range is walked, not only what the
   * volume holds. Progress is in extents.
   * @throws BlockDeviceError from the copy.
   */
  rollback(record: VolumeRecord, snap: SnapshotRecord, progress: JobProgress): Promise<void> {
    const view = this.snapshotView({ ...record, sizeBytes: snap.sizeBytes }, snap.version);
    const E = record.extentBytes;
    const inSnap = Math.ceil(Math.min(record.sizeBytes, snap.sizeBytes) / E);
    let held = new Set<number>();
    const list = async (): Promise<number[]> => {
      held = new Set(await this.heldExtents(record.id));
      const all = new Set(held);
      for (let x = 0; x < inSnap; x++) all.add(x);
      return [...all].sort((a, b) => a - b);
    };
    return this.extentJob(record, progress, list, async (vol, x) => {
      const start = x * E;
      if (start >= record.sizeBytes) return;
      const len = Math.min(E, record.sizeBytes - start);
      const fromSnap = Math.max(0, Math.min(len, snap.sizeBytes - start));
      const data = fromSnap > 0 ? await view.read(start, fromSnap) : Buffer.alloc(0);
      if (data.length > 0 && !isAllZero(data)) await vol.write(start, data);
      else if (data.length > 0 && held.has(x)) await vol.trim(start, data.length);
      if (len > fromSnap && held.has(x)) await vol.trim(start + fromSnap, len - fromSnap);
    }, 8);
  }

  /** A read-only view of `record` as of pinned `version`. */
  snapshotView(record: VolumeRecord, version: number): SnapshotView {
    return new SnapshotView({ views: this.opts.views, connections: this.opts.connections, record: volumeConfigOf(record), version, name: `${record.name}@${version}` });
  }

  /** Releases snapshot `version` of volume `id` on every up node (best effort; returns failures). */
  async unpin(id: number, version: number): Promise<Array<{ node: number; error: string }>> {
    const r = await unpinSnapshot(this.opts.views, this.opts.connections, id, version);
    return r.failed;
  }

  /** A Volume of `record` under generation 0 (adoptLease sets the real one). */
  volume(record: VolumeRecord): Volume {
    return new Volume({ views: this.opts.views, connections: this.opts.connections, record: volumeConfigOf(record), lease: 0, ioTimeoutMs: this.opts.ioTimeoutMs ?? 30000 });
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
