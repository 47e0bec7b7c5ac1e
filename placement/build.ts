/**
 * Generates a topology map root -> host -> device -> partition from a description of
 * hosts and their devices. Leaf weight = partition capacity in TiB.
 */
import type { Bucket, Leaf, TopologyMap } from './map.ts';

/** One device of a host: its capacity in bytes, split into `partitions` equal partitions. */
export interface DeviceSpec {
  capacityBytes: number;
  partitions: number;
}

/** One host (a storage node) and its devices. `id` must be unique and in [0, 65535]. */
export interface HostSpec {
  id: number;
  name?: string;
  devices: DeviceSpec[];
}

const TIB = 2 ** 40;

/**
 * Stable leaf id for (host, device index, partition index): host*65536 + device*256 + part.
 * Limits: host < 32768, device < 256, partition < 256.
 */
export function partitionLeafId(host: number, device: number, partition: number): number {
  return host * 65536 + device * 256 + partition;
}

/** Inverse of partitionLeafId. */
export function decodePartitionLeafId(id: number): { host: number; device: number; partition: number } {
  return { host: Math.floor(id / 65536), device: (id >>> 8) & 0xff, partition: id & 0xff };
}

/**
 * Builds a map with bucket types root, host, device and partition leaves, at `epoch`.
 * @throws RangeError on ids or counts outside the limits of partitionLeafId.
 */
export function buildMap(hosts: HostSpec[], epoch = 1): TopologyMap {
  const buckets: Bucket[] = [];
  const leaves: Leaf[] = [];
  let nextBucket = -2;
  const root: Bucket = { id: -1, name: 'root', type: 'root', children: [] };
  buckets.push(root);
  for (const h of hosts) {
    if (!Number.isInteger(h.id) || h.id < 0 || h.id >= 32768) throw new RangeError(`host id ${h.id} out of range [0, 32767]`);
    if (h.devices.length > 256) throw new RangeError(`host ${h.id}: at most 256 devices`);
    const hb: Bucket = { id: nextBucket--, name: h.name ?? `host${h.id}`, type: 'host', children: [] };
    buckets.push(hb);
    root.children.push(hb.id);
    h.devices.forEach((d, di) => {
      if (d.partitions < 1 || d.partitions > 256) throw new RangeError(`host ${h.id} device ${di}: partitions must be 1..256`);
      const db: Bucket = { id: nextBucket--, name: `${hb.name}.dev${di}`, type: 'device', children: [] };
      buckets.push(db);
      hb.children.push(db.id);
      for (let p = 0; p < d.partitions; p++) {
        const id = partitionLeafId(h.id, di, p);
        leaves.push({ id, name: `${db.name}.p${p}`, weight: d.capacityBytes / d.partitions / TIB, up: true, in: true });
        db.children.push(id);
      }
    });
  }
  return { epoch, root: root.id, buckets, leaves };
}
