/**
 * The recovery bench's cluster: a LocalCluster of N node processes (fast down detection)
 * with vol0 attached in this process and served over NBD for fio, plus what the bench asks
 * of it — map changes through the authority's management API, every node's recovery report
 * (GET /v1/recovery), waiting until data movement has settled, and reducing the reports of
 * one movement (a pass of resync, backfill or rebalance per receiving node) to bytes and
 * wall time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '../../src/api/index.ts';
import { LocalCluster } from '../../src/cluster/index.ts';
import type { Volume } from '../../src/initiator/index.ts';
import { NbdServer } from '../../src/nbd/index.ts';
import type { NodeRecoveryReport, RecoveryKind } from '../../src/recovery/index.ts';
import { fio } from '../lib/fio.ts';

/** Fast failure detection, as the e2e tests use, so a stopped node is marked down in ~1–2 s. */
export const MEMBERSHIP = { heartbeatMs: 250, downAfterMs: 1200, digestMs: 250 };

/** Options of BenchCluster.start. */
export interface BenchClusterOptions {
  nodes: number;
  /** Size of vol0 (3 replicas, 1 MiB extents). */
  volumeBytes: number;
  /** Bytes per device file (sparse; 2 devices per node). */
  deviceBytes: number;
  /** Progress lines. */
  log: (line: string) => void;
}

/** The figures of one data movement, reduced from the receivers' recovery reports. */
export interface Movement {
  /** The kind the change is expected to cause. */
  kind: RecoveryKind;
  /** Nodes whose pass (of any moving kind) started after the change and moved data. */
  receivers: number[];
  /** Sum of the receivers' progress bytesDone for the pass. */
  bytes: number;
  /** Sum of the receivers' progress extentsDone. */
  extents: number;
  /** The same per kind that ran (the change's own kind, and others it caused). */
  byKind: Partial<Record<RecoveryKind, { receivers: number[]; bytes: number; extents: number }>>;
  /** Growth of every node's traffic.bytesIn over the movement (all kinds). */
  trafficBytesIn: number;
  /** Change (ms since 1970) → first pass start, in seconds (map propagation and peering). */
  startDelaySeconds: number;
  /** First pass start → last pass end across the receivers, in seconds. */
  seconds: number;
  /** Change → last pass end, in seconds (the data is where placement wants it). */
  changeToDoneSeconds: number;
  /** Change → settled as polled (every node at the epoch, nothing stale, misplaced copies trimmed), in seconds. */
  changeToSettledSeconds: number;
}

/** Bench clusters started and not yet stopped. */
const live = new Set<BenchCluster>();

/** Continues (SIGCONT) every node a running bench cluster froze; synchronous, for exit paths. */
export function thawAll(): void {
  for (const c of live) for (const id of c.frozenNodes()) c.thaw(id);
}

/** Stops every bench cluster still running (signal paths). */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((c) => c.stop().catch(() => undefined)));
}

/** A running bench cluster; stop() ends every process it started and removes its data directory. */
export class BenchCluster {
  private stopped = false;
  /** Nodes this bench stopped with SIGSTOP and has not continued. */
  private readonly frozen = new Set<number>();

  private constructor(
    readonly cluster: LocalCluster,
    readonly dir: string,
    private readonly volume: Volume,
    private readonly nbd: NbdServer,
    /** NBD URI of vol0 for fio. */
    readonly uri: string,
    readonly volumeBytes: number,
    private readonly log: (line: string) => void,
  ) {
    live.add(this);
  }

  /** Nodes currently stopped with SIGSTOP by freeze(). */
  frozenNodes(): number[] {
    return [...this.frozen];
  }

  /** Starts the cluster in a fresh temporary directory and exports vol0 over NBD on loopback. */
  static async start(opts: BenchClusterOptions): Promise<BenchCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-recovery-'));
    let cluster: LocalCluster | null = null;
    try {
      cluster = await LocalCluster.start({
        dataDir: dir,
        layout: { nodes: opts.nodes, replicas: 3, deviceBytes: opts.deviceBytes, volumeBytes: opts.volumeBytes, membership: MEMBERSHIP },
        startTimeoutMs: 60000,
      });
      const volume = await cluster.attach('vol0');
      const nbd = new NbdServer({});
      nbd.addExport('vol0', volume);
      const port = await nbd.listen(0, '127.0.0.1');
      return new BenchCluster(cluster, dir, volume, nbd, `nbd://127.0.0.1:${port}/vol0`, opts.volumeBytes, opts.log);
    } catch (e) {
      await cluster?.stop().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** The management API of node 0 (which runs the map authority). */
  api(timeoutMs = 10000): ApiClient {
    const n = this.cluster.config.nodes[0];
    return new ApiClient(`http://${n.host}:${n.apiPort}`, this.cluster.config.token, timeoutMs);
  }

  /** Submits an operator change (out, in, settings, ...). @returns the epoch of the new map. */
  async change(body: object): Promise<number> {
    const r = await this.api().call<{ epoch: number }>('POST', '/v1/map/changes', body);
    return r.epoch;
  }

  /** Sets the per-node recovery rate limit (bytes/s; 0 = unlimited) and waits until every node applies it. */
  async setRate(bytesPerSec: number): Promise<void> {
    await this.change({ type: 'settings', settings: { recoveryBytesPerSec: bytesPerSec } });
    const end = Date.now() + 30000;
    while (Date.now() < end) {
      const rs = await this.reports();
      if (rs.every((r) => r && r.rateLimit === bytesPerSec)) return;
      await sleep(100);
    }
    throw new Error(`not every node took the recovery rate ${bytesPerSec} within 30 s`);
  }

  /** Writes `bytes` bytes from `offset` (default: the whole volume) sequentially in 1 MiB blocks (fio, QD8). @returns MB/s. */
  async fill(offset = 0, bytes = this.volumeBytes - offset): Promise<number> {
    const f = await fio(['--name=fill', '--ioengine=nbd', `--uri=${this.uri}`, '--rw=write', '--bs=1m', '--iodepth=8', `--offset=${offset}`, `--size=${bytes}`], 'write');
    return f.mbps;
  }

  /** Recovery report of node `id`, or null when it does not answer within 3 s. */
  async report(id: number): Promise<NodeRecoveryReport | null> {
    const n = this.cluster.config.nodes.find((x) => x.id === id)!;
    try {
      return await new ApiClient(`http://${n.host}:${n.apiPort}`, this.cluster.config.token, 3000).call<NodeRecoveryReport>('GET', '/v1/recovery');
    } catch {
      return null;
    }
  }

  /** Reports of every node this cluster runs (null for those that do not answer). */
  async reports(): Promise<Array<NodeRecoveryReport | null>> {
    return Promise.all(this.cluster.nodeIds().filter((id) => !this.frozen.has(id)).map((id) => this.report(id)));
  }

  /** Stops node `id`'s process with SIGSTOP and waits until the map marks it down. @returns ms to down. */
  async freeze(id: number): Promise<number> {
    const pid = this.cluster.pidOf(id);
    if (!pid) throw new Error(`node ${id} is not running`);
    const t0 = Date.now();
    process.kill(pid, 'SIGSTOP');
    this.frozen.add(id);
    await this.waitNode(id, (n) => !n.up, 60000, 'marked down');
    this.log(`node ${id} stopped (SIGSTOP) and marked down after ${Date.now() - t0} ms`);
    return Date.now() - t0;
  }

  /** Continues node `id` (SIGCONT). @returns when (ms since 1970). */
  thaw(id: number): number {
    const pid = this.cluster.pidOf(id);
    if (pid) process.kill(pid, 'SIGCONT');
    this.frozen.delete(id);
    return Date.now();
  }

  /**
   * Waits until the authority's map shows node `id` matching `pred`.
   * @returns that map's epoch. @throws Error after `timeoutMs`.
   */
  async waitNode(id: number, pred: (n: { up: boolean; in: boolean }) => boolean, timeoutMs: number, what: string): Promise<number> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const m = await this.api(3000).call<{ epoch: number; nodes: Array<{ id: number; up: boolean; in: boolean }> }>('GET', '/v1/map').catch(() => null);
      const n = m?.nodes.find((x) => x.id === id);
      if (m && n && pred(n)) return m.epoch;
      await sleep(100);
    }
    throw new Error(`node ${id} was not ${what} within ${timeoutMs / 1000} s`);
  }

  /**
   * Waits until data movement is over at map `epoch`: every running node answers at that
   * epoch or later, is not peering, has nothing stale, no pass active but scrub, owes no
   * resync record, and holds no copy placement does not put there (trimmed).
   * @returns the last reports and when it settled (ms since 1970). @throws Error after `timeoutMs`.
   */
  async settled(epoch: number, timeoutMs: number): Promise<{ reports: NodeRecoveryReport[]; at: number }> {
    const end = Date.now() + timeoutMs;
    let why = '';
    while (Date.now() < end) {
      if (this.cluster.view.epoch < epoch) await this.cluster.follower!.refresh(epoch).catch(() => undefined);
      const rs = await this.reports();
      const at = Date.now();
      const ok = rs.filter((r): r is NodeRecoveryReport => r !== null);
      if (ok.length === rs.length) {
        const busy = ok.filter((r) => r.epoch < epoch || r.peering || r.stale.length > 0 || r.missed.length > 0 || r.progress.some((p) => p.active && p.kind !== 'scrub'));
        const extra = this.misplaced(ok);
        if (busy.length === 0 && extra === 0 && this.cluster.view.epoch >= epoch) return { reports: ok, at };
        why = busy.length
          ? `busy: ${busy.map((r) => `node ${r.node} (epoch ${r.epoch}, stale ${r.stale.length}, ${r.progress.filter((p) => p.active).map((p) => `${p.kind} ${p.extentsDone}/${p.extentsTotal}`).join(' ')})`).join('; ')}`
          : `${extra} misplaced copies not yet trimmed`;
      } else why = 'a node did not answer';
      await sleep(200);
    }
    throw new Error(`data movement did not settle within ${timeoutMs / 1000} s: ${why}`);
  }

  /** Copies held by a node that placement (the initiator's current map) does not put there. */
  private misplaced(rs: NodeRecoveryReport[]): number {
    const view = this.cluster.view;
    const pool = this.cluster.config.volumes[0].pool;
    let n = 0;
    for (const r of rs) {
      for (const [v, e] of r.held) if (!view.members(v, e, pool).some((m) => view.nodeOf(m) === r.node)) n++;
    }
    return n;
  }

  /**
   * Waits until some node runs a pass of `kind` started at or after `since` (ms since 1970).
   * @returns the reports then. @throws Error after `timeoutMs`.
   */
  async waitActive(kind: RecoveryKind, since: number, timeoutMs: number): Promise<NodeRecoveryReport[]> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const rs = (await this.reports()).filter((r): r is NodeRecoveryReport => r !== null);
      if (rs.some((r) => { const p = pass(r, kind); return p.active && (p.startedAt ?? 0) >= since - SLOP_MS; })) return rs;
      await sleep(50);
    }
    throw new Error(`no ${kind} pass started within ${timeoutMs / 1000} s`);
  }

  /**
   * Runs one movement: `trigger` makes the change (returns the epoch to settle at and when
   * the change was made), then waits until settled and reduces the reports.
   */
  async movement(kind: RecoveryKind, trigger: () => Promise<{ epoch: number; at: number }>, timeoutMs: number): Promise<Movement> {
    const before = (await this.reports()).filter((r): r is NodeRecoveryReport => r !== null);
    const { epoch, at } = await trigger();
    const s = await this.settled(epoch, timeoutMs);
    return reduceMovement(kind, at, s.at, before, s.reports);
  }

  /** Closes the export and the volume, continues frozen nodes, stops every node and removes the data directory. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    live.delete(this);
    for (const id of [...this.frozen]) this.thaw(id);
    await this.nbd.close().catch(() => undefined);
    this.volume.close();
    await this.cluster.stop(10000);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Pass starts this close before a change (ms) still count as after it (clock reads differ by a few ms). */
const SLOP_MS = 20;

/** Node report `r`'s progress entry of `kind`. */
export function pass(r: NodeRecoveryReport, kind: RecoveryKind) {
  return r.progress.find((p) => p.kind === kind)!;
}

/** Kinds that move data (scrub only compares). */
const MOVING: RecoveryKind[] = ['resync', 'backfill', 'rebalance'];

/**
 * Reduces the reports before and after a movement expected to be of `kind`, started by a
 * change at `changeAt` and polled settled at `settledAt` (ms since 1970). Every moving kind
 * whose pass started after the change counts (a node coming back `in` compares and pulls what
 * is placed on it as resync, for instance); `byKind` says which kinds ran.
 * @throws Error when no node ran a pass of a moving kind after the change.
 */
export function reduceMovement(kind: RecoveryKind, changeAt: number, settledAt: number, before: NodeRecoveryReport[], after: NodeRecoveryReport[]): Movement {
  const passes = after.flatMap((r) => MOVING.map((k) => ({ node: r.node, p: pass(r, k) })))
    .filter(({ p }) => p.startedAt !== null && p.startedAt >= changeAt - SLOP_MS && p.extentsTotal > 0);
  if (passes.length === 0) throw new Error(`no node ran a resync, backfill or rebalance pass after the ${kind} change`);
  const first = Math.min(...passes.map(({ p }) => p.startedAt!));
  const last = Math.max(...passes.map(({ p }) => p.finishedAt ?? settledAt));
  const inBefore = new Map(before.map((r) => [r.node, r.traffic.bytesIn]));
  const byKind: Movement['byKind'] = {};
  for (const { node, p } of passes) {
    const k = (byKind[p.kind] ??= { receivers: [], bytes: 0, extents: 0 });
    if (p.bytesDone > 0 && !k.receivers.includes(node)) k.receivers.push(node);
    k.bytes += p.bytesDone;
    k.extents += p.extentsDone;
  }
  return {
    kind,
    receivers: [...new Set(passes.filter(({ p }) => p.bytesDone > 0).map(({ node }) => node))].sort((a, b) => a - b),
    bytes: passes.reduce((a, { p }) => a + p.bytesDone, 0),
    extents: passes.reduce((a, { p }) => a + p.extentsDone, 0),
    byKind,
    trafficBytesIn: after.reduce((a, r) => a + r.traffic.bytesIn - (inBefore.get(r.node) ?? 0), 0),
    startDelaySeconds: (first - changeAt) / 1000,
    seconds: (last - first) / 1000,
    changeToDoneSeconds: (last - changeAt) / 1000,
    changeToSettledSeconds: (settledAt - changeAt) / 1000,
  };
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
