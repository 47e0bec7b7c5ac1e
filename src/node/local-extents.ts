/**
 * Walks over the extents a node's partitions hold: the Op.Held reply, the report's `held`
 * list, and the unsettled list rebuilt after a restart. Each is O(extents held).
 */
import type { UnsettledExtents } from '../recovery/index.ts';
import { extentOfKey, versionGeneration, volumeOfKey } from '../wire/index.ts';
import type { NodeStorage } from './storage.ts';

/** Op.Held: every extent `storage` holds pages of, as 16-byte (volume, extent, partition, mapped pages) entries. */
export function heldPayload(storage: NodeStorage): Buffer {
  const keys: Array<[number, number, number]> = [];
  for (const [leaf, a] of storage.partitions) for (const k of a.keys()) keys.push([k, leaf, a.mappedPages(k)]);
  const b = Buffer.allocUnsafe(keys.length * 16);
  keys.forEach(([k, leaf, pages], i) => {
    b.writeUInt32LE(volumeOfKey(k), i * 16);
    b.writeUInt32LE(extentOfKey(k), i * 16 + 4);
    b.writeUInt32LE(leaf, i * 16 + 8);
    b.writeUInt32LE(pages, i * 16 + 12);
  });
  return b;
}

/** Every extent `storage` holds, as [volume, extent, bytes mapped] (one entry per copy). */
export function heldList(storage: NodeStorage): Array<[number, number, number]> {
  const held: Array<[number, number, number]> = [];
  for (const a of storage.partitions.values()) {
    for (const k of a.keys()) held.push([volumeOfKey(k), extentOfKey(k), a.mappedPages(k) * 4096]);
  }
  return held;
}

/**
 * After a restart the unsettled list is gone: rebuilds it in `unsettled` as every extent
 * whose newest page was written by a generation at or above the volume's fence
 * (`fence(volume)`), so a new writer still reconciles what a crashed one may have left on
 * some members only. Returns how many extents it listed.
 */
export function rebuildUnsettled(storage: NodeStorage, unsettled: UnsettledExtents, fence: (volume: number) => number): number {
  let n = 0;
  for (const a of storage.partitions.values()) {
    for (const k of a.keys()) {
      const volume = volumeOfKey(k);
      let newest = 0;
      for (const p of a.pages(k)) if (p.version > newest) newest = p.version;
      if (versionGeneration(newest) >= fence(volume)) {
        unsettled.note(volume, extentOfKey(k), newest);
        n++;
      }
    }
  }
  return n;
}
