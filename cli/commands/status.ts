import { Command } from '@oclif/core';
import type { ClusterStatus } from '../../src/api/status.ts';
import { formatBytes, formatMisplaced, formatProgress, plural } from '../../src/api/format.ts';
import { apiFlags, clusterApi } from '../lib/api.ts';

/** The reply of GET /v1/status. */
type StatusReply = ClusterStatus & { servedBy: number };

/**
 * Renders a status the way `cairn status` prints it (ceph -s style): cluster, health with
 * one indented line per check, map, data, recovery (one line per active kind, or "idle"),
 * misplaced copies when there are any, and the recovered counters when any are non-zero.
 * A reply without `progress` (an older API) has no recovery or misplaced lines.
 */
export function renderStatus(s: StatusReply): string {
  const lines = [`  cluster: ${s.clusterId}`, `  health:  ${s.health}`];
  for (const c of s.checks) lines.push(`           ${c}`);
  lines.push(`  map:     epoch ${s.epoch}, ${plural(s.nodes.total, 'node')}: ${s.nodes.up} up, ${s.nodes.in} in`);
  const d = s.data;
  lines.push(`  data:    ${plural(s.volumes, 'volume')}, ${plural(d.extents, 'extent')} (${formatBytes(d.bytes)}); ${d.degraded} degraded, ${d.recovering} recovering, ${d.inactive} inactive`);
  if (Array.isArray(s.progress)) {
    const active = s.progress.filter((p) => p.active);
    if (!active.length) lines.push('  recovery: idle');
    active.forEach((p, i) => lines.push(`${i ? ' '.repeat(12) : '  recovery: '}${p.kind}: ${formatProgress(p)}`));
    if (s.misplaced?.copies) lines.push(`  misplaced: ${formatMisplaced(s.misplaced)}`);
  }
  const r = s.recovery.reduce((a, n) => ({ extents: a.extents + n.recovered.extents, pages: a.pages + n.recovered.pages, repairs: a.repairs + n.recovered.repairs }), { extents: 0, pages: 0, repairs: 0 });
  if (r.extents || r.pages || r.repairs) lines.push(`  recovered: ${plural(r.extents, 'extent')}, ${plural(r.pages, 'page')}, ${plural(r.repairs, 'repair')} (since the nodes started)`);
  return lines.join('\n');
}

/** `cairn status`: cluster health at a glance. */
export default class Status extends Command {
  static override summary = 'Show cluster health at a glance: health and its reasons, map, and degraded, recovering and inactive extents, and recovery in progress.';
  static override description = 'Exits 0 whatever the health (it is a report); non-zero only when no management API answers.';
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status --json'];
  static override flags = apiFlags;

  async run(): Promise<void> {
    const { flags } = await this.parse(Status);
    let s: StatusReply;
    try {
      s = await (await clusterApi(flags)).call('GET', '/v1/status');
    } catch (e) {
      this.error((e as Error).message, { exit: 1 });
    }
    this.log(flags.json ? JSON.stringify(s, null, 2) : renderStatus(s));
  }
}
