/**
 * A clone: a writable volume whose extents fall through to a parent snapshot until the
 * clone writes them (copy-on-write at extent granularity, as RBD's copy-up does for
 * objects). An extent belongs to the clone once it holds any page version there (written
 * or trimmed; Op.Versions), learned on first touch and then cached. The first write (or
 * trim) to a parent-backed extent copies the whole extent from the parent first — or trims
 * it whole when the parent reads zeros there — so the extent is the clone's from then on;
 * later writes go straight to the clone. Reads beyond the parent's size read zeros. A parent
 * read that fails makes it ask again whether the extent is the clone's: a flatten copies
 * extents in behind this attachment's back, after which the snapshot may be deleted.
 */
import { BlockDeviceError, isAllZero, type BlockDevice } from '../volume/index.ts';
import type { ConnectionPool } from '../wire/index.ts';
import type { ViewSource } from './cluster-view.ts';
import { extentVersions, heldExtents } from './extent-versions.ts';
import type { Volume } from './volume.ts';

/** The parent side of a clone: a read-only view of the snapshot and its size in bytes. */
export interface CloneParent {
  read(offset: number, length: number): Promise<Buffer>;
  readonly size: number;
}

/** Options of ClonedVolume.open. */
export interface ClonedVolumeOptions {
  /** The clone's own volume (attached: it holds the write lease). */
  volume: Volume;
  /** The snapshot it was cloned from. */
  parent: CloneParent;
  views: ViewSource;
  connections: ConnectionPool;
  volumeId: number;
  pool: number;
  /** Extent size, bytes. */
  extentBytes: number;
}

/** See the module comment. */
export class ClonedVolume implements BlockDevice {
  readonly blockSize = 4096;
  private readonly own = new Map<number, boolean>();
  private readonly copying = new Map<number, Promise<void>>();

  private constructor(private readonly o: ClonedVolumeOptions) {}

  /**
   * Opens a clone: learns which extents it holds mapped pages of (one Op.Held per node);
   * the rest are asked about on first touch.
   * @throws Error when an up node does not answer.
   */
  static async open(o: ClonedVolumeOptions): Promise<ClonedVolume> {
    const c = new ClonedVolume(o);
    for (const x of await heldExtents(o.views, o.connections, o.volumeId)) c.own.set(x, true);
    return c;
  }

  /** Size in bytes (the clone's own, which may have been resized). */
  get size(): number {
    return this.o.volume.size;
  }

  /** The attached Volume underneath (its lease, counters). */
  get volume(): Volume {
    return this.o.volume;
  }

  private async owns(x: number): Promise<boolean> {
    const known = this.own.get(x);
    if (known !== undefined) return known;
    if (x * this.o.extentBytes >= this.o.parent.size) {
      this.own.set(x, true);
      return true;
    }
    const v = await extentVersions(this.o.views, this.o.connections, this.o.volumeId, this.o.pool, x, this.o.extentBytes / 4096);
    const mine = v.length > 0;
    // A concurrent copy-up may have decided meanwhile; never turn true back to false.
    if (!this.own.get(x)) this.own.set(x, mine);
    return this.own.get(x)!;
  }

  /**
   * A parent read failed. "Not the clone's" was learned earlier and cached, but a flatten
   * (the catalog's job, under a lease of its own) may have copied the extent into the clone
   * since, and the snapshot may be deleted now — the gateway only hears of the flatten at
   * its next catalog poll. Asks the nodes again: true when the extent is the clone's.
   */
  private async recheck(x: number): Promise<boolean> {
    if (this.own.get(x) === false) this.own.delete(x);
    return this.owns(x);
  }

  private extentsOf(offset: number, length: number): number[] {
    const out: number[] = [];
    const E = this.o.extentBytes;
    for (let x = Math.floor(offset / E); x * E < offset + length; x++) out.push(x);
    return out;
  }

  /** Copies extent `x` from the parent into the clone once (concurrent callers share it). */
  private async copyUp(x: number): Promise<void> {
    if (await this.owns(x)) return;
    let p = this.copying.get(x);
    if (!p) {
      p = (async () => {
        const E = this.o.extentBytes;
        const start = x * E;
        const len = Math.min(E, this.size - start);
        const fromParent = Math.max(0, Math.min(len, this.o.parent.size - start));
        let data: Buffer;
        try {
          data = fromParent > 0 ? await this.o.parent.read(start, fromParent) : Buffer.alloc(0);
        } catch (e) {
          if (await this.recheck(x)) return; // flattened meanwhile: already the clone's
          throw e;
        }
        if (data.length > 0 && !isAllZero(data)) await this.o.volume.write(start, data);
        else if (data.length > 0) await this.o.volume.trim(start, data.length);
        if (len > fromParent) await this.o.volume.trim(start + fromParent, len - fromParent);
        this.own.set(x, true);
      })().finally(() => this.copying.delete(x));
      this.copying.set(x, p);
    }
    await p;
  }

  private check(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new BlockDeviceError('EINVAL', `range ${offset}+${length} is outside clone ${this.o.volume.name} (${this.size} bytes)`);
    }
  }

  /** Reads: the clone's own extents from it, the rest from the parent (zeros past its end). */
  async read(offset: number, length: number): Promise<Buffer> {
    this.check(offset, length);
    if (length === 0) return Buffer.alloc(0);
    const E = this.o.extentBytes;
    const xs = this.extentsOf(offset, length);
    const owned = await Promise.all(xs.map((x) => this.owns(x)));
    if (owned.every(Boolean)) return this.o.volume.read(offset, length);
    const out = Buffer.alloc(length);
    await Promise.all(xs.map(async (x, i) => {
      const a = Math.max(offset, x * E);
      const b = Math.min(offset + length, (x + 1) * E);
      let part: Buffer;
      if (owned[i] && !this.copying.has(x)) part = await this.o.volume.read(a, b - a);
      else if (a >= this.o.parent.size) return;
      else {
        try {
          part = await this.o.parent.read(a, Math.min(b, this.o.parent.size) - a);
        } catch (e) {
          if (!(await this.recheck(x))) throw e;
          part = await this.o.volume.read(a, b - a);
        }
      }
      part.copy(out, a - offset);
    }));
    return out;
  }

  /** Writes after copying up every parent-backed extent it touches. */
  async write(offset: number, data: Buffer, fua = false): Promise<void> {
    this.check(offset, data.length);
    await Promise.all(this.extentsOf(offset, data.length).map((x) => this.copyUp(x)));
    return this.o.volume.write(offset, data, fua);
  }

  /** Trims after copy-up (a trimmed page must read zeros, not the parent's data). */
  async trim(offset: number, length: number): Promise<void> {
    this.check(offset, length);
    await Promise.all(this.extentsOf(offset, length).map((x) => this.copyUp(x)));
    return this.o.volume.trim(offset, length);
  }

  /** Zeroes after copy-up. */
  async writeZeroes(offset: number, length: number, fua = false): Promise<void> {
    this.check(offset, length);
    await Promise.all(this.extentsOf(offset, length).map((x) => this.copyUp(x)));
    return this.o.volume.writeZeroes(offset, length, fua);
  }

  /** Flushes the clone's volume. */
  flush(): Promise<void> {
    return this.o.volume.flush();
  }

  /** After a flatten: every extent is the clone's, the parent is no longer read. */
  detachParent(): void {
    this.o.parent = { size: 0, read: async () => Buffer.alloc(0) };
    this.own.clear();
  }
}
