/**
 * Map changes: what an operator (or the authority's membership monitor) asks for, and the
 * pure function that turns the map at epoch E into the map at E + 1.
 */
import bytes from 'bytes-iec';
import { z } from 'zod';
import { buildTopology } from './topology.ts';
import { DEFAULT_SETTINGS, MapSettingsSchema, type ClusterMap, type MapNode, type MapSettings } from './types.ts';

const nodeId = z.number().int().min(0).max(32767);
const deviceId = z.number().int().min(0).max(255);
const NewDeviceSchema = z.object({
  path: z.string().min(1),
  sizeBytes: z.number().int().positive(),
  partitions: z.number().int().min(1).max(256),
});

/**
 * The settings of a 'settings' change: one or more keys of MapSettingsSchema (unknown keys
 * are rejected, not dropped, so a misspelt key is not silently a no-op).
 */
const SettingsChangeSchema = MapSettingsSchema.partial().strict().refine(
  (s) => Object.values(s).some((v) => v !== undefined),
  { message: `a settings change names at least one setting (${Object.keys(MapSettingsSchema.shape).join(', ')})` },
);

/**
 * Changes an operator may submit (management API, CLI). `{type: 'settings', settings}`
 * changes cluster-wide settings (MapSettingsSchema): the keys given replace the map's, the
 * others stay; giving a key its default value restores the default (`cairn unset`).
 */
export const OperatorChangeSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('out'), node: nodeId, device: deviceId.optional() }),
  z.object({ type: z.literal('in'), node: nodeId, device: deviceId.optional() }),
  z.object({ type: z.literal('reweight'), node: nodeId, device: deviceId.optional(), weight: z.number().min(0).max(1) }),
  z.object({
    type: z.literal('add-node'),
    node: z.object({
      id: nodeId,
      host: z.string().min(1),
      port: z.number().int().min(1).max(65535),
      gossipPort: z.number().int().min(1).max(65535),
      apiPort: z.number().int().min(1).max(65535),
      devices: z.array(NewDeviceSchema).min(1).max(256),
    }),
  }),
  z.object({ type: z.literal('remove-node'), node: nodeId }),
  z.object({ type: z.literal('add-device'), node: nodeId, device: NewDeviceSchema }),
  z.object({ type: z.literal('remove-device'), node: nodeId, device: deviceId }),
  z.object({ type: z.literal('settings'), settings: SettingsChangeSchema }),
]);

/** A change an operator may submit. */
export type OperatorChange = z.infer<typeof OperatorChangeSchema>;

/**
 * Every change: the operator's, plus the membership monitor's (down, up, auto-out), which
 * name several nodes so that one failure detection round makes one epoch.
 */
export type MapChange =
  | OperatorChange
  | { type: 'down'; nodes: number[]; /** The nodes announced a graceful stop (not silence). */ leaving?: boolean }
  | { type: 'up'; nodes: number[] }
  | { type: 'auto-out'; nodes: number[] };

/** A change that cannot apply to the map (unknown node, duplicate id, ...). */
export class ChangeError extends Error {
  override name = 'ChangeError';
}

/** Milliseconds in the largest unit that divides them exactly: 7d, 12h, 10m, 30s, 250ms. */
function formatMs(ms: number): string {
  for (const [unit, size] of [['d', 86400000], ['h', 3600000], ['m', 60000], ['s', 1000]] as const) {
    if (ms > 0 && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** A rate in bytes/s, binary units ("32 MiB/s"), with the exact count when rounding hides it. */
function formatRate(n: number): string {
  const f = bytes.format(n, { mode: 'binary', unitSeparator: ' ' }) ?? `${n} B`;
  return bytes.parse(f) === n ? `${f}/s` : `${f}/s (${n} B/s)`;
}

/** "set noout", "set recovery rate to 32 MiB/s", ... for each key of a settings change. */
function describeSettings(s: Partial<MapSettings>): string {
  const dflt = (k: keyof MapSettings): string => (s[k] === DEFAULT_SETTINGS[k] ? ' (the default)' : '');
  const parts: string[] = [];
  if (s.noout !== undefined) parts.push(s.noout ? 'set noout' : 'unset noout');
  if (s.recoveryBytesPerSec !== undefined) {
    parts.push(`set recovery rate to ${s.recoveryBytesPerSec === 0 ? 'unlimited' : formatRate(s.recoveryBytesPerSec)}${dflt('recoveryBytesPerSec')}`);
  }
  if (s.scrubIntervalMs !== undefined) {
    parts.push(s.scrubIntervalMs === 0 ? 'turn scheduled scrub off' : `set scrub interval to ${formatMs(s.scrubIntervalMs)}${dflt('scrubIntervalMs')}`);
  }
  if (s.deepScrubIntervalMs !== undefined) {
    parts.push(s.deepScrubIntervalMs === 0 ? 'turn scheduled deep scrub off' : `set deep scrub interval to ${formatMs(s.deepScrubIntervalMs)}${dflt('deepScrubIntervalMs')}`);
  }
  return parts.join(', ');
}

/**
 * The settings a map stores after `change` is merged into `current`: only the keys that
 * differ from DEFAULT_SETTINGS, or undefined when none does — so restoring a default
 * removes the key, and a change that leaves the settings in force as they were compares
 * equal (no new epoch).
 */
function mergeSettings(current: Partial<MapSettings> | undefined, change: Partial<MapSettings>): Partial<MapSettings> | undefined {
  const merged: Record<string, unknown> = {};
  for (const [k, v] of Object.entries({ ...current, ...change })) {
    if (v !== undefined && v !== DEFAULT_SETTINGS[k as keyof MapSettings]) merged[k] = v;
  }
  return Object.keys(merged).length ? (merged as Partial<MapSettings>) : undefined;
}

/** True when two stored settings objects hold the same keys with the same values (key order aside). */
function sameSettings(a: Partial<MapSettings> | undefined, b: Partial<MapSettings> | undefined): boolean {
  const keys = new Set([...Object.keys(a ?? {}), ...Object.keys(b ?? {})]) as Set<keyof MapSettings>;
  return [...keys].every((k) => a?.[k] === b?.[k]);
}

/** One-line description of a change, for the map's `change` field and history. */
export function describeChange(c: MapChange): string {
  const dev = (d: number | undefined): string => (d === undefined ? '' : ` device ${d}`);
  switch (c.type) {
    case 'out': return `mark node ${c.node}${dev(c.device)} out`;
    case 'in': return `mark node ${c.node}${dev(c.device)} in`;
    case 'reweight': return `reweight node ${c.node}${dev(c.device)} to ${c.weight}`;
    case 'add-node': return `add node ${c.node.id} (${c.node.host}:${c.node.port}, ${c.node.devices.length} devices)`;
    case 'remove-node': return `remove node ${c.node}`;
    case 'add-device': return `add a device to node ${c.node}`;
    case 'remove-device': return `remove device ${c.device} of node ${c.node}`;
    case 'settings': return describeSettings(c.settings);
    case 'down': return `mark node${c.nodes.length > 1 ? 's' : ''} ${c.nodes.join(', ')} down (${c.leaving ? 'stopping' : 'no heartbeat'})`;
    case 'up': return `mark node${c.nodes.length > 1 ? 's' : ''} ${c.nodes.join(', ')} up (heartbeat back)`;
    case 'auto-out': return `mark node${c.nodes.length > 1 ? 's' : ''} ${c.nodes.join(', ')} out (down past the grace period)`;
  }
}

function findNode(nodes: MapNode[], id: number): MapNode {
  const n = nodes.find((x) => x.id === id);
  if (!n) throw new ChangeError(`node ${id} is not in the map`);
  return n;
}

/**
 * Applies `change` to `map` and returns the map of the next epoch, or null when the change
 * would not alter anything (e.g. marking an out node out).
 * @throws ChangeError when the change names a missing node or device or reuses an id.
 */
export function applyChange(map: ClusterMap, change: MapChange, now: number): ClusterMap | null {
  const nodes: MapNode[] = structuredClone(map.nodes);
  let settings = map.settings;
  const setDevices = (n: MapNode, device: number | undefined, f: (d: MapNode['devices'][number]) => void): void => {
    if (device === undefined) return;
    const d = n.devices.find((x) => x.id === device);
    if (!d) throw new ChangeError(`node ${n.id} has no device ${device}`);
    f(d);
  };
  switch (change.type) {
    case 'out':
    case 'in': {
      const n = findNode(nodes, change.node);
      const value = change.type === 'in';
      // Back in after out: the node must catch up with every extent placed on it (inEpoch).
      if (change.device === undefined) {
        if (value && !n.in) n.inEpoch = map.epoch + 1;
        n.in = value;
        n.autoOut = false;
      } else setDevices(n, change.device, (d) => {
        if (value && !d.in) n.inEpoch = map.epoch + 1;
        d.in = value;
      });
      break;
    }
    case 'reweight': {
      const n = findNode(nodes, change.node);
      if (change.device === undefined) n.reweight = change.weight;
      else setDevices(n, change.device, (d) => (d.reweight = change.weight));
      break;
    }
    case 'add-node': {
      if (nodes.some((x) => x.id === change.node.id)) throw new ChangeError(`node ${change.node.id} is already in the map`);
      nodes.push({
        ...change.node,
        devices: change.node.devices.map((d, i) => ({ ...d, id: i, in: true, reweight: 1 })),
        up: false,
        in: true,
        reweight: 1,
        downSince: now,
        autoOut: false,
      });
      break;
    }
    case 'remove-node': {
      findNode(nodes, change.node);
      if (nodes.length === 1) throw new ChangeError('cannot remove the last node');
      nodes.splice(nodes.findIndex((x) => x.id === change.node), 1);
      break;
    }
    case 'add-device': {
      const n = findNode(nodes, change.node);
      const used = new Set(n.devices.map((d) => d.id));
      let id = 0;
      while (used.has(id)) id++;
      if (id > 255) throw new ChangeError(`node ${n.id} has no free device id`);
      n.devices.push({ ...change.device, id, in: true, reweight: 1 });
      break;
    }
    case 'remove-device': {
      const n = findNode(nodes, change.node);
      const i = n.devices.findIndex((d) => d.id === change.device);
      if (i < 0) throw new ChangeError(`node ${n.id} has no device ${change.device}`);
      n.devices.splice(i, 1);
      break;
    }
    case 'down':
      for (const id of change.nodes) {
        const n = findNode(nodes, id);
        if (n.up) {
          n.up = false;
          n.downSince = now;
        }
      }
      break;
    case 'up':
      for (const id of change.nodes) {
        const n = findNode(nodes, id);
        if (!n.up) n.upEpoch = map.epoch + 1;
        n.up = true;
        n.downSince = null;
        if (n.autoOut) {
          n.in = true;
          n.inEpoch = map.epoch + 1;
          n.autoOut = false;
        }
      }
      break;
    case 'auto-out':
      for (const id of change.nodes) {
        const n = findNode(nodes, id);
        if (n.in) {
          n.in = false;
          n.autoOut = true;
        }
      }
      break;
    case 'settings':
      settings = mergeSettings(map.settings, change.settings);
      break;
  }
  if (JSON.stringify(nodes) === JSON.stringify(map.nodes) && sameSettings(settings, map.settings)) return null;
  const epoch = map.epoch + 1;
  const next: ClusterMap = { ...map, epoch, createdAt: now, change: describeChange(change), nodes, topology: buildTopology(nodes, epoch, map.topology) };
  // Absent rather than undefined: the canonical encoding of a map without settings is unchanged.
  if (settings) next.settings = settings;
  else delete next.settings;
  return next;
}
