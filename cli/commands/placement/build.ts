import { writeFileSync } from 'node:fs';
import { Flags } from '@oclif/core';
import {
  addHosts,
  compactMap,
  encodeMap,
  generateMap,
  mapChecksum,
  parseWeightSpec,
  removeHost,
  setLeafState,
  setLeafWeight,
  type TopologyMap,
} from '../../../placement/index.ts';
import { jsonFlag, loadMap, PlacementCommand } from '../../lib/placement-files.ts';

const TIB = 2 ** 40;

/**
 * `cairn placement build`: generates a topology map (hosts x devices x partitions, optional
 * racks and per-host weights), or edits one (--from) by adding or removing hosts, setting
 * leaf weights and states, or compacting. Writes the canonical encoding to --out or stdout.
 */
export default class PlacementBuild extends PlacementCommand {
  static override summary = 'Generate or edit a topology map (canonical JSON with checksum).';
  static override examples = [
    '<%= config.bin %> placement build --hosts 10 --devices 1 --partitions 4 --out map40.json',
    '<%= config.bin %> placement build --hosts 10 --partitions 4 --weights 1x5,2x5 --out mixed.json',
    '<%= config.bin %> placement build --from map40.json --add-hosts 1 --out map44.json',
  ];
  static override flags = {
    hosts: Flags.integer({ summary: 'Hosts to generate (1..32768).', min: 1, max: 32768 }),
    devices: Flags.integer({ summary: 'Devices per host (1..256).', default: 1, min: 1, max: 256 }),
    partitions: Flags.integer({ summary: 'Partitions per device (1..256).', default: 1, min: 1, max: 256 }),
    racks: Flags.integer({ summary: 'Racks to spread hosts over (0: none).', default: 0, min: 0 }),
    weights: Flags.string({ summary: 'Per-host capacity multipliers, cycled: "1,2" or "1x5,2x5".' }),
    'device-bytes': Flags.integer({ summary: 'Capacity of each device in bytes (default 1 TiB).', min: 0 }),
    epoch: Flags.integer({ summary: 'Epoch of a generated map.', default: 1, min: 0 }),
    from: Flags.string({ summary: 'Edit this map file instead of generating one (the result has the next epoch).' }),
    'add-hosts': Flags.integer({ summary: 'With --from: add this many hosts like the existing ones.', min: 1 }),
    'remove-host': Flags.integer({ summary: 'With --from: retire this host number (weight 0, out).', multiple: true }),
    'set-weight': Flags.string({ summary: 'With --from: LEAF=WEIGHT, set a leaf weight.', multiple: true }),
    'mark-out': Flags.integer({ summary: 'With --from: mark a leaf out.', multiple: true }),
    'mark-down': Flags.integer({ summary: 'With --from: mark a leaf down.', multiple: true }),
    compact: Flags.boolean({ summary: 'With --from: compact (fold grafts, draw weights := weights).', default: false }),
    out: Flags.string({ char: 'o', summary: 'Write the map here instead of stdout.' }),
    json: jsonFlag,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(PlacementBuild);
    let map: TopologyMap;
    if (flags.from) {
      if (flags.hosts !== undefined) this.error('--hosts generates a map; with --from use --add-hosts');
      map = loadMap(flags.from);
      const base = map.epoch;
      if (flags['add-hosts']) {
        const hostIds = map.buckets.filter((b) => b.type === 'host').map((b) => -b.id - 4098);
        const template = map.buckets.find((b) => b.type === 'host');
        if (!template) this.error(`${flags.from}: no host to copy the device layout from`);
        const devices = template.children.map((d) => {
          const dev = map.buckets.find((b) => b.id === d)!;
          const leaves = dev.children.map((id) => map.leaves.find((l) => l.id === id)!);
          return { capacityBytes: leaves.reduce((s, l) => s + l.capacityBytes, 0), partitions: leaves.length };
        });
        const racks = map.buckets.filter((b) => b.type === 'rack').map((b) => -b.id - 2);
        let next = Math.max(-1, ...hostIds) + 1;
        const hosts = Array.from({ length: flags['add-hosts'] }, (_, i) => ({ id: next++, rack: racks.length > 0 ? racks[i % racks.length] : undefined, devices }));
        map = addHosts(map, hosts);
      }
      for (const h of flags['remove-host'] ?? []) map = removeHost(map, h);
      for (const spec of flags['set-weight'] ?? []) {
        const m = /^(\d+)=([0-9.eE+-]+)$/.exec(spec);
        if (!m) this.error(`--set-weight ${spec}: expected LEAF=WEIGHT`);
        map = setLeafWeight(map, Number(m[1]), Number(m[2]));
      }
      for (const l of flags['mark-out'] ?? []) map = setLeafState(map, l, { in: false });
      for (const l of flags['mark-down'] ?? []) map = setLeafState(map, l, { up: false });
      if (flags.compact) map = compactMap(map);
      if (map.epoch === base) map = { ...map, epoch: base + 1 };
    } else {
      if (flags.hosts === undefined) this.error('give --hosts (and --devices, --partitions) to generate a map, or --from to edit one');
      map = generateMap({
        hosts: flags.hosts,
        devices: flags.devices,
        partitions: flags.partitions,
        racks: flags.racks,
        deviceBytes: flags['device-bytes'] ?? TIB,
        weights: flags.weights ? parseWeightSpec(flags.weights) : undefined,
        epoch: flags.epoch,
      });
    }
    const text = encodeMap(map);
    const summary = {
      epoch: map.epoch,
      leaves: map.leaves.length,
      hosts: map.buckets.filter((b) => b.type === 'host').length,
      racks: map.buckets.filter((b) => b.type === 'rack').length,
      grafts: map.grafts.length,
      weight: map.leaves.reduce((s, l) => s + l.weight, 0),
      checksum: mapChecksum(map),
      out: flags.out ?? null,
    };
    if (flags.out) {
      writeFileSync(flags.out, `${text}\n`);
      if (flags.json) this.printJson(summary);
      else this.log(`wrote ${flags.out}: epoch ${summary.epoch}, ${summary.leaves} leaves, ${summary.hosts} hosts, ${summary.racks} racks, ${summary.grafts} grafts, checksum ${summary.checksum}`);
    } else {
      process.stdout.write(`${text}\n`);
    }
  }
}
