/**
 * Adaptive busy-polling of the event loop after a socket write, for low queue depths.
 *
 * At queue depth 1 a request crosses four loopback hops (host → gateway → node → gateway →
 * host), and each hop wakes a process that was blocked in epoll_wait. On this project's VMs
 * that wake-up, not the work, is most of a hop: a 4 KiB ping-pong between two Node
 * processes takes ~76 µs per round trip over TCP loopback when both sides block, and ~28 µs
 * when the waiting side keeps its loop turning instead (setImmediate, so epoll_wait is
 * called with a zero timeout). That is the idea of the kernel's hybrid polling for NVMe
 * completions and of SPDK's pollers, applied to sockets.
 *
 * After each write (a request sent to a node, a reply sent to a host), `expect()` keeps
 * the loop turning for `windowUs`: the answer, or the host's next request, is then read
 * without a wake-up. The window restarts with every write and ends on its own when
 * nothing is written, so an idle process sleeps again within windowUs. Only the lowest
 * depth polls (the `gate`: for a gateway, at most POLL_MAX_INFLIGHT request in flight to
 * nodes). Polling costs CPU: up to one core per polling process while a low-depth stream
 * runs. It is off unless a process turns it on: gateways with CAIRN_POLL_US, storage nodes
 * with CAIRN_NODE_POLL_US and a gate of their own (NodeServer.pollGate: a lone read); a
 * node's default is on only from NODE_POLL_MIN_CPUS CPUs (defaultNodePollUs).
 */
import { availableParallelism } from 'node:os';

/** Default polling window after a write, µs (gateways: CAIRN_POLL_US). */
export const DEFAULT_POLL_US = 200;

/**
 * Polling window of a storage node after the reply to a lone read, µs (CAIRN_NODE_POLL_US),
 * on a machine with NODE_POLL_MIN_CPUS or more. Longer than the gateway's: the node's next
 * request comes after a whole turn through the gateway and the host, and a window that ends
 * just before it lets the vCPU halt, so the next request pays the wake-up after all.
 */
export const DEFAULT_NODE_POLL_US = 1000;

/**
 * CPUs a machine needs for its storage nodes to poll by default. A QD1 read stream keeps the
 * gateway's poller, the node's poller and the host's process runnable at once; with fewer
 * CPUs than that the host's wake-up preempts a poller on nearly every request. Measured on a
 * 2-vCPU VM (`cairn up` + fio nbd, randread 4k QD1, 6 alternating pairs): node polling off
 * gave a mean of 98–120 µs in 5 pairs against 110–224 µs with it on, and a p99 of
 * 199–692 µs against 460–1,483 µs; QD32 reads were 4–10 % faster without it.
 */
export const NODE_POLL_MIN_CPUS = 3;

/** A storage node's default polling window for a machine of `cpus` CPUs: DEFAULT_NODE_POLL_US from NODE_POLL_MIN_CPUS on, else 0 (off). */
export function defaultNodePollUs(cpus: number = availableParallelism()): number {
  return cpus >= NODE_POLL_MIN_CPUS ? DEFAULT_NODE_POLL_US : 0;
}

/**
 * Polling stops while more requests than this are in flight to the nodes. With one, a single
 * node works for this process and the polling core would otherwise idle. With several (a
 * replicated write goes to three members; any deeper queue), those nodes need the CPU a
 * polling process would take from them on a small machine, and at depth the loop has events
 * to run anyway, so wake-ups are shared by many requests.
 */
export const POLL_MAX_INFLIGHT = 1;

/**
 * The poller of one process. `windowUs` 0 turns it off: expect() is then one comparison.
 */
export class LoopPoller {
  private windowMs = 0;
  private until = 0;
  private spinning = false;
  /** Loop turns made by polling (setImmediate callbacks run); the tests read it. */
  turns = 0;
  /** Requests this process has in flight to storage nodes (kept by WireClient). */
  inflight = 0;
  /**
   * Whether polling may start, or go on, now; checked at every write and every turn. The
   * default lets a gateway poll while at most POLL_MAX_INFLIGHT requests are in flight to
   * nodes; a storage node replaces it (NodeServer.pollGate).
   */
  gate: () => boolean = () => this.inflight <= POLL_MAX_INFLIGHT;

  /** True while the loop is being kept turning. */
  get active(): boolean {
    return this.spinning;
  }

  /** Polling window after each write, µs (0: off). */
  get windowUs(): number {
    return this.windowMs * 1000;
  }

  /**
   * Sets the polling window in µs (0 turns polling off).
   * @throws RangeError unless 0 ≤ us ≤ 10,000.
   */
  configure(us: number): void {
    if (!Number.isFinite(us) || us < 0 || us > 10_000) throw new RangeError(`the polling window must be 0 to 10000 µs (got ${us})`);
    this.windowMs = us / 1000;
    if (us === 0) this.until = 0;
  }

  /** A socket write just happened: keep the loop turning for the window (see the module comment). */
  expect(): void {
    if (this.windowMs === 0 || !this.gate()) return;
    this.until = performance.now() + this.windowMs;
    if (!this.spinning) {
      this.spinning = true;
      setImmediate(this.tick);
    }
  }

  private readonly tick = (): void => {
    this.turns++;
    if (performance.now() < this.until && this.gate()) setImmediate(this.tick);
    else this.spinning = false;
  };
}

/** This process's poller (off until configured; see LoopPoller). */
export const loopPoll = new LoopPoller();

/**
 * Turns this process's polling on with the window in the environment variable `name` (µs;
 * `0` turns it off; unset or empty: `fallback`). Gateways call it at start with
 * CAIRN_POLL_US, storage nodes with CAIRN_NODE_POLL_US and DEFAULT_NODE_POLL_US. Returns
 * the window in µs.
 * @throws Error naming the variable when its value is not an integer 0–10000.
 */
export function pollFromEnv(env: NodeJS.ProcessEnv = process.env, name = 'CAIRN_POLL_US', fallback = DEFAULT_POLL_US): number {
  const raw = env[name];
  const us = raw === undefined || raw === '' ? fallback : /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isInteger(us) || us > 10_000) throw new Error(`${name} must be a number of microseconds from 0 to 10000 (got "${raw}")`);
  loopPoll.configure(us);
  return us;
}
