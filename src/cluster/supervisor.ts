/**
 * The restart supervisor of a LocalCluster (option `supervise`): a node process that exits on
 * its own is started again after a backoff — 500 ms, doubling per consecutive restart up to
 * 30 s, back to 500 ms once a node stayed up 60 s — and a restart that fails is retried with
 * the next backoff. An operator's stop (stopNode, stop) cancels pending and under-way restarts.
 */

/** First supervisor backoff (ms); it doubles per consecutive restart. */
const RESTART_FIRST_MS = 500;
/** Longest supervisor backoff (ms). */
const RESTART_MAX_MS = 30000;
/** A node up this long (ms) before it exits is restarted with the first backoff again. */
const RESTART_RESET_AFTER_MS = 60000;

/** Supervisor state of one node. */
interface Supervision {
  /** Successful restarts so far. */
  restarts: number;
  /** Consecutive restarts since the node last stayed up long enough: the backoff exponent. */
  backoffStep: number;
  /** Pending restart. */
  timer: NodeJS.Timeout | null;
  /** Bumped by an operator's stop: a restart cycle begun under an older value gives up. */
  generation: number;
}

/** What the supervisor acts on. */
export interface SupervisorHooks {
  /** Starts node `id`'s process (rejects when it does not start). */
  start(id: number): Promise<void>;
  /** True when node `id`'s process runs. */
  running(id: number): boolean;
  /** True once the cluster is stopping. */
  stopped(): boolean;
  /** One line per action ("node 2 exited (signal SIGKILL); restarting in 0.5 s (restart 1)"). */
  line(text: string): void;
  /** Node `id` was restarted (`restarts`: its successful restarts so far). */
  restarted(id: number, restarts: number): void;
}

/** Backoff restarts of node processes; see the module comment. */
export class RestartSupervisor {
  private readonly state = new Map<number, Supervision>();

  constructor(private readonly hooks: SupervisorHooks) {}

  /** Successful restarts of node `id` so far. */
  restarts(id: number): number {
    return this.state.get(id)?.restarts ?? 0;
  }

  /** Drops a pending restart of node `id`; `operator`: also abandon one under way. */
  cancel(id: number, operator: boolean): void {
    const s = this.state.get(id);
    if (!s) return;
    if (s.timer) clearTimeout(s.timer);
    s.timer = null;
    if (operator) s.generation++;
  }

  /** An operator's stop of every node: nothing is restarted any more. */
  cancelAll(): void {
    for (const id of this.state.keys()) this.cancel(id, true);
  }

  /** Node `id`, up since `readyAt` (ms), exited on its own (`how`: "signal SIGKILL", "code 1"). */
  exited(id: number, readyAt: number, how: string): void {
    const s = this.of(id);
    if (Date.now() - readyAt >= RESTART_RESET_AFTER_MS) s.backoffStep = 0;
    const delay = this.nextBackoff(s);
    this.hooks.line(`node ${id} exited (${how}); restarting in ${delay / 1000} s (restart ${s.restarts + 1})`);
    this.schedule(id, s, delay);
  }

  /** Node `id` failed to start (`why`, one line): retry after the next backoff. */
  failedToStart(id: number, why: string): void {
    const s = this.of(id);
    const delay = this.nextBackoff(s);
    this.hooks.line(`node ${id} did not start: ${why}; retrying in ${delay / 1000} s`);
    this.schedule(id, s, delay);
  }

  private of(id: number): Supervision {
    let s = this.state.get(id);
    if (!s) {
      s = { restarts: 0, backoffStep: 0, timer: null, generation: 0 };
      this.state.set(id, s);
    }
    return s;
  }

  private nextBackoff(s: Supervision): number {
    const delay = Math.min(RESTART_FIRST_MS * 2 ** s.backoffStep, RESTART_MAX_MS);
    if (delay < RESTART_MAX_MS) s.backoffStep++;
    return delay;
  }

  private schedule(id: number, s: Supervision, delay: number): void {
    if (s.timer) clearTimeout(s.timer);
    const generation = s.generation;
    const moot = (): boolean => this.hooks.stopped() || s.generation !== generation || this.hooks.running(id);
    s.timer = setTimeout(() => {
      s.timer = null;
      if (moot()) return;
      this.hooks.start(id).then(
        () => {
          s.restarts++;
          this.hooks.line(`node ${id} restarted (restart ${s.restarts})`);
          this.hooks.restarted(id, s.restarts);
        },
        (e: Error) => {
          // Stopped (cluster or node) while it was starting: leave it down.
          if (moot()) return;
          const next = this.nextBackoff(s);
          this.hooks.line(`node ${id} restart failed: ${e.message.replace(/\s+/g, ' ').trim()}; retrying in ${next / 1000} s`);
          this.schedule(id, s, next);
        },
      );
    }, delay);
  }
}
