import { Command } from '@oclif/core';
import { formatBytes, plural } from '../../../src/api/format.ts';
import type { ScrubNodeResult, ScrubReply } from '../../../src/api/scrub.ts';
import { apiFlags, clusterApi, table } from '../../lib/api.ts';

/** A time (ms since 1970) as "2024-05-01 12:00:00" (UTC), or "never". */
function when(t: number | null): string {
  return t === null ? 'never' : `${new Date(t).toISOString().slice(0, 19).replace('T', ' ')}`;
}

/**
 * Renders a ScrubReply as `cairn scrub status` prints it: one row per node (running or
 * idle, deep or shallow pass, extents done/total, inconsistent extents, bad pages, repaired,
 * unrepaired, last shallow and deep scrub, UTC), the nodes that did not answer with why, and
 * a totals line.
 */
export function renderScrub(r: ScrubReply): string {
  const ok = r.nodes.filter((n): n is Exclude<ScrubNodeResult, { error: string }> => !('error' in n));
  const lines = [table(['NODE', 'STATE', 'PASS', 'EXTENTS', 'BYTES', 'INCONSISTENT', 'BAD PAGES', 'REPAIRED', 'UNREPAIRED', 'LAST SHALLOW (UTC)', 'LAST DEEP (UTC)'], ok.map((n) => [
    String(n.node), n.running ? 'running' : 'idle', n.startedAt === null ? '-' : n.deep ? 'deep' : 'shallow', `${n.extentsDone}/${n.extentsTotal}`, formatBytes(n.bytesDone),
    String(n.inconsistent), String(n.badPages), String(n.repaired), String(n.unrepaired), when(n.lastShallowAt), when(n.lastDeepAt),
  ]))];
  for (const n of r.nodes) if ('error' in n) lines.push(`node ${n.node}: no scrub status: ${n.error}`);
  const t = r.totals;
  lines.push(`total: ${t.running} of ${plural(t.nodes, 'node')} scrubbing; ${t.extentsDone}/${t.extentsTotal} extents (${formatBytes(t.bytesDone)}); ${t.inconsistent} inconsistent, ${plural(t.badPages, 'bad page')}, ${t.repaired} repaired, ${t.unrepaired} unrepaired${t.skipped ? `, ${t.skipped} skipped (recovering)` : ''}${t.errors ? `, ${plural(t.errors, 'error')}` : ''}`);
  return lines.join('\n');
}

/** `cairn scrub status`: every node's scrub: running or idle, progress, findings, last passes. */
export default class ScrubStatus extends Command {
  static override summary = 'Show every node\'s scrub: running or idle, deep or shallow, extents done, inconsistencies and bad pages found and repaired, last scrub times.';
  static override description = 'Counts are those of each node\'s current (or last) pass. Exits 0 whatever they say; non-zero only when no management API answers.';
  static override examples = ['<%= config.bin %> scrub status', '<%= config.bin %> scrub status --json'];
  static override flags = apiFlags;

  async run(): Promise<void> {
    const { flags } = await this.parse(ScrubStatus);
    let r: ScrubReply;
    try {
      r = await (await clusterApi(flags)).call('GET', '/v1/scrub');
    } catch (e) {
      this.error((e as Error).message, { exit: 1 });
    }
    this.log(flags.json ? JSON.stringify(r, null, 2) : renderScrub(r));
  }
}
