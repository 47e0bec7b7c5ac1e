/**
 * A node's local storage: its device files and one allocator per partition, found by
 * partition leaf id.
 */
import { open, mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Allocator, PAGE } from '../../allocator/index.ts';
import { partitionLeafId } from '../../placement/index.ts';
import { volumeOfKey } from '../wire/index.ts';

/** Byte size of each partition of a device: an equal share, rounded down to 4 KiB. */
export function partitionBytes(deviceBytes: number, partitions: number): number {
  return Math.floor(deviceBytes / partitions / PAGE) * PAGE;
}

/** Creates the device file (sparse) if missing, or grows it to `size` bytes. */
async function ensureDeviceFile(path: string, size: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const fh = await open(path, 'a+');
  try {
    const st = await fh.stat();
    if (st.size < size) await fh.truncate(size);
  } finally {
    await fh.close();
  }
}

/**
 * What NodeStorage.open needs of a node: its id and devices. A cluster.json node entry
 * (NodeConfig) fits; so does one taken from the cluster map, whose devices carry their map
 * `id` (stable across device removals, part of each partition's leaf id).
 */
export interface StorageNode {
  id: number;
  devices: ReadonlyArray<{
    /** Backing file, relative to the data directory (or absolute). */
    path: string;
    /** Bytes. */
    sizeBytes: number;
    partitions: number;
    /** Device id in the map (0..255); absent: its index in `devices`. */
    id?: number;
  }>;
}

/** The allocators of one node, keyed by partition leaf id. */
export class NodeStorage {
  private readonly dirty = new Set<Allocator>();

  private usage: { at: number; volumes: Array<{ volume: number; storedBytes: number }> } | null = null;

  private constructor(readonly partitions: Map<number, Allocator>) {}

  /**
   * Opens every partition of every device of `node` (device paths relative to `dataDir`),
   * creating device files (sparse) on first use and recovering each partition's log.
   * A device's partitions get leaf ids from its `id` when given, else from its index.
   * @throws Error from the file system or the allocator (every partition opened so far is closed again).
   */
  static async open(node: StorageNode, dataDir: string): Promise<NodeStorage> {
    const partitions = new Map<number, Allocator>();
    try {
      for (const [i, dev] of node.devices.entries()) {
        const d = dev.id ?? i;
        const path = resolve(dataDir, dev.path);
        await ensureDeviceFile(path, dev.sizeBytes);
        const size = partitionBytes(dev.sizeBytes, dev.partitions);
        const opened = await Promise.all(
          Array.from({ length: dev.partitions }, (_, p) => Allocator.open({ path, offset: p * size, size })),
        );
        opened.forEach((a, p) => partitions.set(partitionLeafId(node.id, d, p), a));
      }
    } catch (e) {
      await Promise.all([...partitions.values()].map((a) => a.close()));
      throw e;
    }
    return new NodeStorage(partitions);
  }

  /** The allocator of partition `leaf`, or undefined when this node does not hold it. */
  get(leaf: number): Allocator | undefined {
    return this.partitions.get(leaf);
  }

  /** Space of every partition (bytes), for heartbeats. */
  stats(): Array<{ leaf: number; capacityBytes: number; usedBytes: number; liveBytes: number }> {
    return [...this.partitions].map(([leaf, a]) => {
      const st = a.stats();
      return { leaf, capacityBytes: st.capacityBytes, usedBytes: st.usedBytes, liveBytes: st.liveBytes };
    });
  }

  /**
   * Bytes of mapped pages per volume over every partition of this node (each copy this node
   * holds counts once; allocator keys are extentKey(volume, extent)). Walking every key costs
   * O(keys), so the result is reused for `maxAgeMs` (default 5000 ms).
   */
  volumeUsage(maxAgeMs = 5000): Array<{ volume: number; storedBytes: number }> {
    const now = Date.now();
    if (this.usage && now - this.usage.at < maxAgeMs) return this.usage.volumes;
    const pages = new Map<number, number>();
    for (const a of this.partitions.values()) {
      for (const key of a.keys()) {
        const v = volumeOfKey(key);
        pages.set(v, (pages.get(v) ?? 0) + a.mappedPages(key));
      }
    }
    const volumes = [...pages].sort((x, y) => x[0] - y[0]).map(([volume, n]) => ({ volume, storedBytes: n * PAGE }));
    this.usage = { at: now, volumes };
    return volumes;
  }

  /** Records that `a` has writes not yet flushed. */
  markDirty(a: Allocator): void {
    this.dirty.add(a);
  }

  /** Flushes every partition written since the last flush (fdatasync each). */
  async flushDirty(): Promise<void> {
    const list = [...this.dirty];
    this.dirty.clear();
    try {
      await Promise.all(list.map((a) => a.flush()));
    } catch (e) {
      for (const a of list) this.dirty.add(a);
      throw e;
    }
  }

  /** Flushes and closes every partition. */
  async close(): Promise<void> {
    await Promise.all([...this.partitions.values()].map((a) => a.close()));
  }
}
