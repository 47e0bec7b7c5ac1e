/**
 * `cairn recovery status`: cluster-wide progress of resync, backfill, rebalance and scrub
 * (from GET /v1/status, which gathers every up node's recovery report), the nodes' rate
 * limits, recovery traffic and misplaced copies; with --watch, redrawn until all is idle.
 */
import { Command, Flags } from '@oclif/core';
import type { ClusterStatus, ProgressSummary } from '../../../src/api/status.ts';
import { formatBytes, formatSeconds, formatMisplaced, formatProgress, formatRate, plural } from '../../../src/api/format.ts';
import { apiFlags, clusterApi, type ClusterApi } from '../../lib/api.ts';
import { parseDuration } from '../../lib/duration.ts';

/** The reply of GET /v1/status. */
type StatusReply = ClusterStatus & { servedBy: number };

/** What `cairn recovery status --json` prints (one object; with --watch, one compact object per line). */
export interface RecoveryStatusJson {
  /** Map epoch the status was computed with. */
  epoch: number;
  /** Node whose API computed it. */
  servedBy: number;
  /** Cluster-wide progress per kind, in RECOVERY_KINDS order. */
  progress: ProgressSummary[];
  /** Sums of the nodes' recovery traffic since each started (bytes). */
  traffic: ClusterStatus['traffic'];
  /** Copies awaiting trimming. */
  misplaced: ClusterStatus['misplaced'];
  /** Per reporting node, ascending: its rate limit (bytes/s; 0: unlimited) and traffic. */
  nodes: Array<{ node: number; rateLimit: number; traffic: ClusterStatus['traffic'] }>;
  /** Up nodes whose report could not be had: the sums leave them out. */
  unreachable: ClusterStatus['unreachable'];
}

/**
 * Parses the --interval flag with the CLI's duration syntax (cli/lib/duration.ts: "1s",
 * "500ms", "2m"; a plain number is milliseconds).
 * @returns milliseconds.
 * @throws Error with a one-line message on a malformed duration or one below 100 ms.
 */
export function parseInterval(text: string): number {
  const ms = parseDuration(text);
  if (ms < 100) throw new Error(`interval '${text}' is below 100ms`);
  return ms;
}

/** The --json view of a status. */
export function recoveryJson(s: StatusReply): RecoveryStatusJson {
  return {
    epoch: s.epoch,
    servedBy: s.servedBy,
    progress: s.progress,
    traffic: s.traffic,
    misplaced: s.misplaced,
    nodes: s.recovery.map((r) => ({ node: r.node, rateLimit: r.rateLimit, traffic: r.traffic })),
    unreachable: s.unreachable,
  };
}

/** The nodes' rate limits in one phrase: "unlimited on every node", "100.0 MiB/s on every node", or per node. */
function rateLimits(s: StatusReply): string {
  const limit = (b: number): string => (b > 0 ? formatRate(b) : 'unlimited');
  if (!s.recovery.length) return 'unknown (no node reported)';
  const all = new Set(s.recovery.map((r) => r.rateLimit));
  if (all.size === 1) return `${limit(s.recovery[0].rateLimit)} on every node`;
  return s.recovery.map((r) => `node ${r.node}: ${limit(r.rateLimit)}`).join(', ');
}

/**
 * Renders the recovery status as `cairn recovery status` prints it: one line per kind
 * (extents and bytes done/total, rate, ETA and the active nodes, or "idle"), the rate limit,
 * traffic totals, misplaced copies, and unreachable nodes when there are any.
 */
export function renderRecovery(s: StatusReply): string {
  const width = Math.max(...s.progress.map((p) => p.kind.length));
  const lines = [`recovery at map epoch ${s.epoch} (${plural(s.recovery.length, 'node')} reporting):`];
  for (const p of s.progress) {
    const nodes = p.active && p.nodes.length ? ` (${p.nodes.length === 1 ? 'node' : 'nodes'} ${p.nodes.join(', ')})` : '';
    lines.push(`  ${p.kind.padEnd(width)}  ${formatProgress(p, { bytes: true })}${nodes}`);
  }
  const t = s.traffic;
  lines.push(`  rate limit:  ${rateLimits(s)}`);
  lines.push(`  traffic:     ${formatBytes(t.bytesIn)} in, ${formatBytes(t.bytesOut)} out; ${plural(t.trimmedExtents, 'extent')} trimmed (${formatBytes(t.trimmedBytes)}) since the nodes started`);
  lines.push(`  misplaced:   ${formatMisplaced(s.misplaced)}`);
  for (const u of s.unreachable) lines.push(`  unreachable: node ${u.node} (${u.error}); the figures above leave it out`);
  return lines.join('\n');
}

/** Percent done of an active kind: by bytes when their total is known, else by extents (0–100, rounded down). */
function percent(p: ProgressSummary): number {
  const [done, total] = p.bytesTotal > 0 ? [p.bytesDone, p.bytesTotal] : [p.extentsDone, p.extentsTotal];
  return total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : 0;
}

/** "120/300 extents 45.0 MiB/s ETA 12 s" of an active kind. */
function figures(p: ProgressSummary): string {
  return `${p.extentsDone}/${p.extentsTotal} extents ${formatRate(p.rate)} ETA ${p.etaSeconds === null ? 'unknown' : formatSeconds(p.etaSeconds)}`;
}

/** A text progress bar of `width` cells for `pct` percent: "[#########.........]". */
export function progressBar(pct: number, width = 20): string {
  const full = Math.max(0, Math.min(width, Math.round((pct / 100) * width)));
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}]`;
}

/** The --watch frame on a terminal: a header, one bar per active kind, the idle kinds, misplaced copies. */
function watchFrame(s: StatusReply): string[] {
  const width = Math.max(...s.progress.map((p) => p.kind.length));
  const lines = [`recovery at map epoch ${s.epoch}, ${new Date().toLocaleTimeString()} (Ctrl-C to stop watching)`];
  for (const p of s.progress.filter((x) => x.active)) lines.push(`  ${p.kind.padEnd(width)} ${progressBar(percent(p))} ${String(percent(p)).padStart(3)}% ${figures(p)}`);
  const idle = s.progress.filter((x) => !x.active).map((x) => x.kind);
  if (idle.length) lines.push(`  idle: ${idle.join(', ')}`);
  if (s.misplaced.copies) lines.push(`  misplaced: ${formatMisplaced(s.misplaced)}`);
  for (const u of s.unreachable) lines.push(`  unreachable: node ${u.node} (${u.error})`);
  return lines;
}

/** The --watch line when stdout is not a terminal: time, then each active kind's percent and figures. */
function watchLine(s: StatusReply): string {
  const active = s.progress.filter((p) => p.active).map((p) => `${p.kind} ${percent(p)}% ${figures(p)}`);
  const unreachable = s.unreachable.length ? `; unreachable: ${s.unreachable.map((u) => u.node).join(', ')}` : '';
  return `${new Date().toISOString()} epoch ${s.epoch}: ${active.length ? active.join('; ') : 'idle'}${unreachable}`;
}

/** True when every kind is idle and every up node reported (nothing hidden by an unreachable node). */
function allIdle(s: StatusReply): boolean {
  return s.progress.every((p) => !p.active) && s.unreachable.length === 0;
}

/** Consecutive failed polls after which --watch gives up. */
const WATCH_MAX_FAILURES = 5;

/** `cairn recovery status`: progress of background data movement across the cluster. */
export default class RecoveryStatus extends Command {
  static override summary = 'Show the progress of resync, backfill, rebalance and scrub across the cluster, with rates, ETAs, rate limits, traffic and misplaced copies.';
  static override description = 'Sums every up node\'s recovery report. With --watch, redraws every --interval (one line per interval when stdout is not a terminal) until every kind is idle on every node, then prints the summary and exits 0. Exits 1 when no management API answers.';
  static override examples = [
    '<%= config.bin %> recovery status',
    '<%= config.bin %> recovery status --json',
    '<%= config.bin %> recovery status --watch --interval 2s',
  ];
  static override flags = {
    ...apiFlags,
    watch: Flags.boolean({ summary: 'Redraw until every kind is idle (or Ctrl-C).', default: false }),
    interval: Flags.custom<number>({ parse: async (input) => parseInterval(input), helpValue: '<duration>' })({
      summary: 'How often --watch polls, e.g. 1s, 500ms, 2m.',
      default: 1000,
      defaultHelp: async () => '1s',
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(RecoveryStatus);
    let api: ClusterApi;
    try {
      api = await clusterApi(flags);
    } catch (e) {
      this.error((e as Error).message, { exit: 1 });
    }
    const get = async (): Promise<StatusReply> => {
      const s = await api.call<StatusReply>('GET', '/v1/status');
      if (!Array.isArray(s.progress)) throw new Error(`node ${s.servedBy}'s management API does not report recovery progress (an older version?)`);
      return s;
    };
    const print = (s: StatusReply): void => this.log(flags.json ? JSON.stringify(recoveryJson(s), null, 2) : renderRecovery(s));

    if (!flags.watch) {
      let s: StatusReply;
      try {
        s = await get();
      } catch (e) {
        this.error((e as Error).message, { exit: 1 });
      }
      print(s);
      return;
    }

    const tty = Boolean(process.stdout.isTTY) && !flags.json;
    let drawn = 0; // lines of the last frame on the terminal
    const draw = (lines: string[]): void => {
      const cols = process.stdout.columns || 200;
      const fit = lines.map((l) => (l.length > cols - 1 ? `${l.slice(0, cols - 2)}…` : l));
      process.stdout.write(`${drawn ? `\x1b[${drawn}F\x1b[J` : ''}${fit.join('\n')}\n`);
      drawn = fit.length;
    };
    let failures = 0;
    for (;;) {
      let s: StatusReply | null = null;
      try {
        s = await get();
        failures = 0;
      } catch (e) {
        if (++failures >= WATCH_MAX_FAILURES) this.error(`${(e as Error).message} (${WATCH_MAX_FAILURES} polls in a row failed)`, { exit: 1 });
        const line = `${new Date().toISOString()} no status: ${(e as Error).message}; retrying`;
        if (tty) draw([line]);
        else this.logToStderr(line);
      }
      if (s) {
        if (allIdle(s)) {
          if (tty && drawn) process.stdout.write(`\x1b[${drawn}F\x1b[J`);
          if (flags.json) this.log(JSON.stringify(recoveryJson(s)));
          else print(s);
          return;
        }
        if (flags.json) this.log(JSON.stringify(recoveryJson(s)));
        else if (tty) draw(watchFrame(s));
        else this.log(watchLine(s));
      }
      await new Promise((r) => setTimeout(r, flags.interval));
    }
  }
}
