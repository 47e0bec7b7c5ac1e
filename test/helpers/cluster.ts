/**
 * Helpers for control-plane tests: tracking which map each node process reports, and
 * checking that nothing of a torn-down cluster is left (processes, listening ports, handles).
 */
import { connect } from 'node:net';
import type { LocalCluster, NodeMapEvent } from '../../src/cluster/index.ts';

/** Latest map report per node of a LocalCluster (from its 'map' events). */
export class NodeMaps {
  readonly latest = new Map<number, NodeMapEvent>();
  /** Every report, in arrival order. */
  readonly all: NodeMapEvent[] = [];

  constructor(cluster: LocalCluster) {
    cluster.events.on('map', (e: NodeMapEvent) => {
      this.all.push(e);
      const cur = this.latest.get(e.node);
      if (!cur || e.epoch >= cur.epoch) this.latest.set(e.node, e);
    });
  }

  /** When node `node` accepted `epoch` (ms since 1970), if it reported it. */
  at(node: number, epoch: number): number | undefined {
    return this.all.find((e) => e.node === node && e.epoch === epoch)?.at;
  }
}

/**
 * Polls the (possibly async) `cond` every `everyMs` until it holds (resolves true) or
 * `timeoutMs` passes (false); a `cond` that throws or rejects counts as not holding yet.
 */
export async function eventually(cond: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await Promise.resolve().then(cond).catch(() => false)) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Polls `cond` every 20 ms until true (resolves true) or `timeoutMs` passes (false). */
export async function until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

/** True when process `pid` no longer exists. */
export function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Resolves true when nothing accepts connections on 127.0.0.1:`port`. */
export function portClosed(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

/** Counts of this process's active resources by kind (sockets, servers, timers, child processes). */
export function resourceCounts(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) out[r] = (out[r] ?? 0) + 1;
  return out;
}

/** Kinds whose count grew from `before` to `after`. */
export function leaked(before: Record<string, number>, after: Record<string, number>): string[] {
  return Object.keys(after).filter((k) => ['TCPSocketWrap', 'TCPServerWrap', 'Timeout', 'ProcessWrap', 'PipeWrap'].includes(k) && after[k] > (before[k] ?? 0))
    .map((k) => `${k}: ${before[k] ?? 0} -> ${after[k]}`);
}
