/**
 * An initiator control-plane peer as a child process (src/initiator/follower-main.ts): used
 * to run many initiators for real in tests and the gossip benchmark.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { FOLLOWER_MAIN } from '../initiator/index.ts';
import { childExecArgv } from '../runtime/index.ts';

/** A map epoch the follower accepted (`at`: ms since 1970; `down`: node ids marked down). */
export interface FollowerMapEvent {
  epoch: number;
  at: number;
  down: number[];
}

/** A running follower process. `events` emits 'map' (FollowerMapEvent). */
export class FollowerProcess {
  readonly events = new EventEmitter();
  /** Newest epoch reported. */
  epoch = 0;
  /** Nodes marked down in the newest map reported. */
  down: number[] = [];
  private readonly exited: Promise<number | null>;

  private constructor(readonly child: ChildProcess, readonly peerId: string, readonly port: number) {
    this.exited = new Promise((r) => {
      if (child.exitCode !== null || child.signalCode !== null) r(child.exitCode);
      else child.once('exit', (code) => r(code));
    });
    child.on('message', (m: { type?: string } & Partial<FollowerMapEvent>) => {
      if (m?.type === 'map' && typeof m.epoch === 'number') {
        if (m.epoch > this.epoch) {
          this.epoch = m.epoch;
          this.down = m.down ?? [];
        }
        this.events.emit('map', { epoch: m.epoch, at: m.at ?? Date.now(), down: m.down ?? [] } satisfies FollowerMapEvent);
      }
    });
  }

  /**
   * Starts a follower for the cluster in `dataDir` and waits until it reports ready.
   * @throws Error with its stderr when it exits or takes longer than `timeoutMs`.
   */
  static async spawn(dataDir: string, opts: { follow?: boolean; name?: string; timeoutMs?: number } = {}): Promise<FollowerProcess> {
    const args = ['--data-dir', dataDir, ...(opts.follow === false ? ['--no-follow'] : []), ...(opts.name ? ['--name', opts.name] : [])];
    const child = fork(FOLLOWER_MAIN, args, { execArgv: childExecArgv(), stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const ready = await new Promise<{ peerId: string; port: number; epoch: number } | null>((resolve) => {
      const t = setTimeout(() => resolve(null), opts.timeoutMs ?? 60000);
      child.on('message', (m: { type?: string; peerId?: string; port?: number; epoch?: number }) => {
        if (m?.type === 'ready') {
          clearTimeout(t);
          resolve({ peerId: m.peerId!, port: m.port!, epoch: m.epoch ?? 0 });
        }
      });
      child.once('exit', () => {
        clearTimeout(t);
        resolve(null);
      });
    });
    if (!ready) {
      child.kill('SIGKILL');
      throw new Error(`follower did not start: ${stderr.trim() || 'timeout'}`);
    }
    const f = new FollowerProcess(child, ready.peerId, ready.port);
    f.epoch = ready.epoch;
    return f;
  }

  /** Resolves when a map of epoch >= `epoch` (and matching `pred`, if given) has been reported; false on timeout. */
  waitFor(epoch: number, timeoutMs: number, pred: (e: FollowerMapEvent) => boolean = () => true): Promise<boolean> {
    return new Promise((resolve) => {
      const on = (e: FollowerMapEvent): void => {
        if (e.epoch >= epoch && pred(e)) done(true);
      };
      const t = setTimeout(() => done(false), timeoutMs);
      const done = (v: boolean): void => {
        clearTimeout(t);
        this.events.off('map', on);
        resolve(v);
      };
      this.events.on('map', on);
    });
  }

  /** Sends an IPC ping; resolves with the time (ms since 1970) the process received it. */
  ping(): Promise<number> {
    return new Promise((resolve) => {
      const on = (m: { type?: string; at?: number }): void => {
        if (m?.type === 'pong') {
          this.child.off('message', on);
          resolve(m.at ?? Date.now());
        }
      };
      this.child.on('message', on);
      this.child.send({ type: 'ping' });
    });
  }

  /** Process id. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Stops it (SIGTERM, SIGKILL after 5 s) and resolves when it has exited. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(t);
  }
}
