/**
 * Building maps: root -> (rack ->) host -> device -> partition, from a description of hosts
 * and their devices, with ids that depend only on (rack, host, device, partition) numbers so
 * that a map rebuilt or extended later keeps every existing id (placement hashes ids).
 *
 * Id scheme: root -1; rack k -> -(2 + k) (k < 4096); host h -> -(4098 + h) (h < 32768);
 * device d of host h -> -(65536 + 256·h + d) (d < 256); partition p -> partitionLeafId(h, d, p).
 * Leaf weight = partition capacity in TiB unless the device spec overrides it.
 */
import { MAP_FORMAT, type Bucket, type Leaf, type Rule, type TopologyMap } from './map.ts';

/** One device of a host: its capacity in bytes, split into `partitions` equal partitions. */
export interface DeviceSpec {
  /** Bytes (an integer >= 0). */
  capacityBytes: number;
  /** 1..256. */
  partitions: number;
  /** Relative weight of the whole device, overriding capacity in TiB (split evenly over partitions). */
  weight?: number;
}

/** One host (a storage node) and its devices. */
export interface HostSpec {
  /** Unique, in [0, 32767]. */
  id: number;
  name?: string;
  /** Rack number in [0, 4095]; hosts without one hang under the root. */
  rack?: number;
  /** At most 256. */
  devices: DeviceSpec[];
}

const TIB = 2 ** 40;

/** Stable bucket id of rack `k`. */
export function rackBucketId(k: number): number {
  return -(2 + k);
}

/** Stable bucket id of host `h`. */
export function hostBucketId(h: number): number {
  return -(4098 + h);
}

/** Stable bucket id of device `d` of host `h`. */
export function deviceBucketId(h: number, d: number): number {
  return -(65536 + h * 256 + d);
}

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

/** The bucket types every built map declares, top-down, and its leaf type. */
export const BUILT_TYPES = ['root', 'rack', 'host', 'device'];
/** The leaf type of every built map. */
export const BUILT_LEAF_TYPE = 'partition';

/**
 * The rules of a built map: 0 "replicated" (chooseleaf firstn, host failure domain) and 1
 * "erasure" (chooseleaf indep, host), both sized by the pool; with racks also 2
 * "replicated-rack" and 3 "erasure-rack" (rack failure domain).
 */
export function defaultRules(racks: boolean): Rule[] {
  const rule = (id: number, name: string, mode: 'firstn' | 'indep', type: string): Rule => ({
    id,
    name,
    steps: [{ op: 'take', bucket: 'root' }, { op: 'chooseleaf', mode, count: 0, type }, { op: 'emit' }],
  });
  const rules = [rule(0, 'replicated', 'firstn', 'host'), rule(1, 'erasure', 'indep', 'host')];
  if (racks) rules.push(rule(2, 'replicated-rack', 'firstn', 'rack'), rule(3, 'erasure-rack', 'indep', 'rack'));
  return rules;
}

/**
 * Buckets and leaves of one host (its host bucket first). The host bucket's parent is not
 * touched; the caller links it.
 * @throws RangeError on ids or counts outside the id scheme's limits.
 */
export function hostSubtree(h: HostSpec): { buckets: Bucket[]; leaves: Leaf[] } {
  if (!Number.isInteger(h.id) || h.id < 0 || h.id >= 32768) throw new RangeError(`host id ${h.id} out of range [0, 32767]`);
  if (h.devices.length > 256) throw new RangeError(`host ${h.id}: at most 256 devices`);
  const name = h.name ?? `host${h.id}`;
  const hb: Bucket = { id: hostBucketId(h.id), name, type: 'host', children: [] };
  const buckets: Bucket[] = [hb];
  const leaves: Leaf[] = [];
  h.devices.forEach((d, di) => {
    if (!Number.isInteger(d.partitions) || d.partitions < 1 || d.partitions > 256) throw new RangeError(`host ${h.id} device ${di}: partitions must be 1..256`);
    if (!Number.isSafeInteger(d.capacityBytes) || d.capacityBytes < 0) throw new RangeError(`host ${h.id} device ${di}: capacityBytes must be an integer >= 0`);
    if (d.weight !== undefined && !(Number.isFinite(d.weight) && d.weight >= 0)) throw new RangeError(`host ${h.id} device ${di}: weight must be finite and >= 0`);
    const db: Bucket = { id: deviceBucketId(h.id, di), name: `${name}.dev${di}`, type: 'device', children: [] };
    buckets.push(db);
    hb.children.push(db.id);
    const partBytes = Math.floor(d.capacityBytes / d.partitions);
    const w = d.weight !== undefined ? d.weight / d.partitions : partBytes / TIB;
    for (let p = 0; p < d.partitions; p++) {
      const id = partitionLeafId(h.id, di, p);
      leaves.push({ id, name: `${db.name}.p${p}`, capacityBytes: partBytes, weight: w, drawWeight: w, up: true, in: true });
      db.children.push(id);
    }
  });
  return { buckets, leaves };
}

/**
 * Builds a map with bucket types root, rack, host, device and partition leaves, at `epoch`,
 * with the default rules. Hosts with a `rack` go under that rack bucket.
 * @throws RangeError on ids or counts outside the limits of the id scheme, or a duplicate host id.
 */
export function buildMap(hosts: HostSpec[], epoch = 1): TopologyMap {
  const root: Bucket = { id: -1, name: 'root', type: 'root', children: [] };
  const buckets: Bucket[] = [root];
  const leaves: Leaf[] = [];
  const racks = new Map<number, Bucket>();
  const seen = new Set<number>();
  for (const h of hosts) {
    if (seen.has(h.id)) throw new RangeError(`host id ${h.id} given twice`);
    seen.add(h.id);
    const sub = hostSubtree(h);
    let parent = root;
    if (h.rack !== undefined) {
      if (!Number.isInteger(h.rack) || h.rack < 0 || h.rack >= 4096) throw new RangeError(`host ${h.id}: rack ${h.rack} out of range [0, 4095]`);
      let rb = racks.get(h.rack);
      if (!rb) {
        rb = { id: rackBucketId(h.rack), name: `rack${h.rack}`, type: 'rack', children: [] };
        racks.set(h.rack, rb);
        buckets.push(rb);
        root.children.push(rb.id);
      }
      parent = rb;
    }
    parent.children.push(sub.buckets[0].id);
    buckets.push(...sub.buckets);
    leaves.push(...sub.leaves);
  }
  return { format: MAP_FORMAT, epoch, types: [...BUILT_TYPES], leafType: BUILT_LEAF_TYPE, root: -1, buckets, leaves, rules: defaultRules(racks.size > 0), grafts: [] };
}

/** Parameters of a generated map (see generateMap). */
export interface GenerateSpec {
  hosts: number;
  devices: number;
  partitions: number;
  /** Racks to spread hosts over in contiguous blocks (0 or absent: no racks). */
  racks?: number;
  /** Bytes per device; default 1 TiB. */
  deviceBytes?: number;
  /** Per-host capacity multipliers, cycled over hosts in order (default all 1). */
  weights?: number[];
  epoch?: number;
}

/**
 * Parses a weight spec: comma-separated items `W` or `WxN` (W repeated N times), e.g.
 * "1,2" (alternate) or "1x5,2x5" (five hosts at 1, five at 2).
 * @throws RangeError on a malformed spec or a weight that is not a finite number > 0.
 */
export function parseWeightSpec(spec: string): number[] {
  const out: number[] = [];
  for (const part of spec.split(',')) {
    const m = /^\s*([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*(?:x\s*([0-9]+))?\s*$/i.exec(part);
    if (!m) throw new RangeError(`weight spec item "${part}" is not W or WxN`);
    const w = Number(m[1]);
    const times = m[2] === undefined ? 1 : Number(m[2]);
    if (!(Number.isFinite(w) && w > 0)) throw new RangeError(`weight ${m[1]} must be a number > 0`);
    if (!(times >= 1 && times <= 32768)) throw new RangeError(`repeat count ${m[2]} must be 1..32768`);
    for (let i = 0; i < times; i++) out.push(w);
  }
  return out;
}

/**
 * Generates a map of `hosts` hosts with `devices` devices of `partitions` partitions each,
 * optionally in `racks` racks (contiguous blocks of hosts) and with per-host capacity
 * multipliers. Leaves = hosts · devices · partitions.
 * @throws RangeError on out-of-range parameters.
 */
export function generateMap(spec: GenerateSpec): TopologyMap {
  const { hosts, devices, partitions } = spec;
  const racks = spec.racks ?? 0;
  if (!Number.isInteger(hosts) || hosts < 1 || hosts > 32768) throw new RangeError(`hosts ${hosts} must be 1..32768`);
  if (!Number.isInteger(devices) || devices < 1 || devices > 256) throw new RangeError(`devices ${devices} must be 1..256`);
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > 256) throw new RangeError(`partitions ${partitions} must be 1..256`);
  if (!Number.isInteger(racks) || racks < 0 || racks > Math.min(hosts, 4096)) throw new RangeError(`racks ${racks} must be 0..min(hosts, 4096)`);
  const bytes = spec.deviceBytes ?? TIB;
  const weights = spec.weights && spec.weights.length > 0 ? spec.weights : [1];
  const list: HostSpec[] = [];
  for (let h = 0; h < hosts; h++) {
    const mult = weights[h % weights.length];
    const cap = Math.round(bytes * mult);
    list.push({ id: h, rack: racks > 0 ? Math.floor((h * racks) / hosts) : undefined, devices: Array.from({ length: devices }, () => ({ capacityBytes: cap, partitions })) });
  }
  return buildMap(list, spec.epoch ?? 1);
}
