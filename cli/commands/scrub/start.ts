import { Command, Flags } from '@oclif/core';
import type { ScrubReply } from '../../../src/api/scrub.ts';
import { apiFlags, clusterApi } from '../../lib/api.ts';
import { renderScrub } from './status.ts';

/** Poll period of --wait, ms. */
const POLL_MS = 500;

/** `cairn scrub start`: starts a scrub pass on every up node now. */
export default class ScrubStart extends Command {
  static override summary = 'Start a scrub pass on every up node now: shallow (compare the copies\' digests, reconcile those that differ) or --deep (also read every page and rewrite those that fail their checksum).';
  static override description = [
    'A node already scrubbing goes on with its pass. With --wait, waits until the pass of every node that was reached has ended (a progress line on stderr), then prints the scrub status.',
    'Exit status: 0; 1 when no management API answers or --wait timed out; 3 when, after --wait, some copies could not be repaired (see the nodes\' logs).',
  ].join('\n');
  static override examples = ['<%= config.bin %> scrub start', '<%= config.bin %> scrub start --deep --wait'];
  static override flags = {
    ...apiFlags,
    deep: Flags.boolean({ summary: 'Deep scrub: read every page of every copy (checks the data on the devices).', default: false }),
    wait: Flags.boolean({ summary: 'Wait until every node\'s pass has ended, then print the status.', default: false }),
    timeout: Flags.integer({ summary: 'With --wait: give up after this many seconds.', default: 3600, min: 1 }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(ScrubStart);
    let r: ScrubReply;
    const api = await clusterApi(flags).catch((e: Error) => this.error(e.message, { exit: 1 }));
    try {
      r = await api.call('POST', '/v1/scrub', { deep: flags.deep });
    } catch (e) {
      this.error((e as Error).message, { exit: 1 });
    }
    if (!flags.wait) {
      if (flags.json) this.log(JSON.stringify(r, null, 2));
      else {
        for (const n of r.nodes) {
          if ('error' in n) this.log(`node ${n.node}: not started: ${n.error}`);
          else this.log(`node ${n.node}: ${n.started ? `${n.deep ? 'deep' : 'shallow'} scrub started` : `already scrubbing (${n.deep ? 'deep' : 'shallow'}, ${n.extentsDone}/${n.extentsTotal} extents)${n.deepQueued ? '; a deep pass follows' : ''}`}`);
        }
      }
      return;
    }
    // Each reached node's pass is over once it is idle, or a newer pass started there; a node
    // with a deep pass queued behind a shallow one is waited for until it is idle.
    const passes = new Map(r.nodes.flatMap((n) => ('error' in n ? [] : [[n.node, n.deepQueued ? undefined : n.startedAt] as const])));
    for (const n of r.nodes) if ('error' in n) process.stderr.write(`node ${n.node}: not started: ${n.error}\n`);
    const end = Date.now() + flags.timeout * 1000;
    const tty = process.stderr.isTTY;
    let shown = '';
    let shownAt = 0;
    for (;;) {
      try {
        r = await api.call<ScrubReply>('GET', '/v1/scrub');
      } catch (e) {
        if (Date.now() > end) this.error((e as Error).message, { exit: 1 });
      }
      const pending = [...passes].filter(([node, startedAt]) => {
        const n = r.nodes.find((x) => x.node === node);
        return !n || 'error' in n || n.deepQueued || (n.running && (startedAt === undefined || n.startedAt === startedAt));
      });
      if (pending.length === 0) break;
      const t = r.totals;
      const line = `scrubbing: ${pending.length} of ${passes.size} nodes running, ${t.extentsDone}/${t.extentsTotal} extents, ${t.inconsistent} inconsistent, ${t.badPages} bad pages, ${t.repaired} repaired`;
      if (tty) process.stderr.write(`\r${line}\x1b[K`);
      else if (line !== shown && Date.now() - shownAt >= 2000) {
        process.stderr.write(`${line}\n`);
        shownAt = Date.now();
      }
      shown = line;
      if (Date.now() > end) {
        if (tty) process.stderr.write('\n');
        this.error(`scrub still running after ${flags.timeout} s on nodes ${pending.map(([n]) => n).join(', ')}`, { exit: 1 });
      }
      await new Promise((res) => setTimeout(res, POLL_MS));
    }
    if (tty && shown) process.stderr.write('\r\x1b[K');
    this.log(flags.json ? JSON.stringify(r, null, 2) : renderScrub(r));
    if (r.totals.unrepaired > 0) this.exit(3);
  }
}
