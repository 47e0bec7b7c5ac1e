import { Command } from '@oclif/core';
import { DEFAULT_SETTINGS, type ClusterMap, type MapSettings } from '../../../src/clustermap/index.ts';
import { apiFlags, clusterApi } from '../../lib/api.ts';
import { formatSize } from '../../lib/size.ts';
import { SETTING_KEYS, formatSetting } from '../set.ts';

/** `cairn map show`: the current topology map as a tree with weights and states, and the settings in force. */
export default class MapShow extends Command {
  static override summary = 'Show the current cluster map: epoch, the cluster-wide settings in force, and the tree of nodes, devices and partitions with weights and states.';
  static override examples = ['<%= config.bin %> map show', '<%= config.bin %> map show --json'];
  static override flags = apiFlags;

  async run(): Promise<void> {
    const { flags } = await this.parse(MapShow);
    // `settings`: every setting in force (GET /v1/map fills in defaults); absent from older servers.
    let m: Omit<ClusterMap, 'settings'> & { checksum: number; authority: number; authorityKind?: string; servedBy: number; settings?: MapSettings };
    try {
      m = await (await clusterApi(flags)).call('GET', '/v1/map');
    } catch (e) {
      this.error((e as Error).message, { exit: 1 });
    }
    if (flags.json) {
      this.log(JSON.stringify(m, null, 2));
      return;
    }
    const leaves = new Map(m.topology.leaves.map((l) => [l.id, l]));
    const weightOf = (id: number): number => {
      if (id >= 0) return leaves.get(id)?.weight ?? 0;
      const b = m.topology.buckets.find((x) => x.id === id);
      return b ? b.children.reduce((s, c) => s + weightOf(c), 0) : 0;
    };
    const w = (x: number): string => x.toFixed(5);
    this.log(`epoch ${m.epoch}  checksum ${m.checksum.toString(16).padStart(8, '0')}  ${m.authorityKind === 'etcd' ? `authority etcd, membership leader node ${m.authority}` : `authority node ${m.authority}`}  (served by node ${m.servedBy})`);
    this.log(`last change: ${m.change}${m.createdAt ? ` at ${new Date(m.createdAt).toISOString()}` : ''}`);
    const settings = { ...DEFAULT_SETTINGS, ...m.settings };
    this.log(`settings: ${SETTING_KEYS.map((k) => `${k.key} ${formatSetting(k, settings[k.field])}${k.kind === 'flag' || settings[k.field] === DEFAULT_SETTINGS[k.field] ? '' : ' (set)'}`).join(', ')}`);
    this.log(`root  weight ${w(weightOf(m.topology.root))}`);
    for (const n of m.nodes) {
      const hb = m.topology.buckets.find((b) => b.name === `node${n.id}`);
      const state = `${n.up ? 'up' : 'down'} ${n.in ? 'in' : 'out'}${n.reweight !== 1 ? ` reweight ${n.reweight}` : ''}`;
      this.log(`  host node${n.id}  ${n.host}:${n.port}  weight ${w(hb ? weightOf(hb.id) : 0)}  ${state}`);
      for (const d of n.devices) {
        const db = m.topology.buckets.find((b) => b.name === `node${n.id}.dev${d.id}`);
        const first = db ? leaves.get(db.children[0]) : undefined;
        this.log(`    device dev${d.id}  ${formatSize(d.sizeBytes)}  weight ${w(db ? weightOf(db.id) : 0)}  ${d.in ? 'in' : 'out'}${d.reweight !== 1 ? ` reweight ${d.reweight}` : ''}`);
        this.log(`      ${d.partitions} partitions × weight ${w(first?.weight ?? 0)}  ${first ? `${first.up ? 'up' : 'down'} ${first.in ? 'in' : 'out'}` : ''}`);
      }
    }
  }
}
