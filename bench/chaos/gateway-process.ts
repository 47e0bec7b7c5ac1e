/**
 * The suite's handle on its gateway child (gateway.ts): start it and wait until it serves
 * NBD, kill it -9 and start the next one on the same port, ask it to flush, stop it. Every
 * start is a new *incarnation* (a new lease generation); the workload uses the incarnation
 * number to tell an fio failure caused by a gateway kill from a real I/O error.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const CHILD = join(import.meta.dirname, 'gateway.ts');

/** Options of a GatewayProcess. */
export interface GatewayOptions {
  dataDir: string;
  /** Directory for the gateways' logs and persisted maps (one subdirectory per incarnation). */
  stateDir: string;
  host: string;
  /** NBD port every incarnation listens on. */
  port: number;
  volume: string;
  /** Milliseconds a start may take (default 120000). */
  startTimeoutMs?: number;
}

/** One running gateway child. */
interface Incarnation {
  child: ChildProcess;
  exited: Promise<void>;
  generation: number;
  /** The last lines of its stderr, for error messages. */
  stderr: string;
}

/** The gateway child of a chaos run; at most one incarnation runs at a time. */
export class GatewayProcess {
  private current: Incarnation | null = null;
  private starting: Promise<void> | null = null;
  /** Incremented by every start (1 for the first gateway). */
  incarnation = 0;
  private nextFlush = 1;

  /** A handle; nothing runs until start(). */
  constructor(private readonly opts: GatewayOptions) {}

  /** The NBD URI of the volume (valid across incarnations). */
  get uri(): string {
    return `nbd://${this.opts.host}:${this.opts.port}/${this.opts.volume}`;
  }

  /** Lease generation of the running incarnation (0 when none runs). */
  get generation(): number {
    return this.current?.generation ?? 0;
  }

  /** Process id of the running incarnation, if any. */
  get pid(): number | undefined {
    return this.current?.child.pid;
  }

  /** The file where incarnation `n` records every write it acknowledged ("<ms> <offset> <length>" lines). */
  ackLog(n: number): string {
    return join(this.opts.stateDir, `gateway-${n}`, 'acks.log');
  }

  /** True while an incarnation serves NBD. */
  get up(): boolean {
    return this.current !== null && this.starting === null;
  }

  /**
   * Starts a new incarnation and resolves once it serves NBD.
   * @throws Error with its output when it exits or does not report ready in time.
   */
  start(): Promise<void> {
    const n = ++this.incarnation;
    const p = this.spawnOne(n).finally(() => {
      if (this.starting === p) this.starting = null;
    });
    this.starting = p;
    return p;
  }

  /** Resolves when an incarnation serves NBD (at once when one does); rejects if the pending start fails. */
  async whenUp(): Promise<void> {
    while (this.starting) await this.starting;
    if (!this.current) throw new Error('no gateway is running');
  }

  private async spawnOne(n: number): Promise<void> {
    const o = this.opts;
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, '--data-dir', o.dataDir, '--state-dir', join(o.stateDir, `gateway-${n}`),
      '--port', String(o.port), '--host', o.host, '--volume', o.volume], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    const inc: Incarnation = { child, generation: 0, stderr: '', exited: new Promise((r) => child.once('exit', () => r())) };
    child.stderr!.on('data', (d: Buffer) => (inc.stderr = (inc.stderr + d.toString()).slice(-3000)));
    void inc.exited.then(() => {
      if (this.current === inc) this.current = null;
    });
    const timeoutMs = o.startTimeoutMs ?? 120000;
    const ready = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      createInterface({ input: child.stdout! }).on('line', (line) => {
        try {
          const m = JSON.parse(line) as { event?: string; generation?: number };
          if (m.event === 'ready') {
            inc.generation = m.generation ?? 0;
            clearTimeout(t);
            resolve(true);
          }
        } catch {
          // not a JSON line
        }
      });
      void inc.exited.then(() => {
        clearTimeout(t);
        resolve(false);
      });
    });
    if (!ready) {
      child.kill('SIGKILL');
      await inc.exited;
      throw new Error(`gateway ${n} did not start: ${inc.stderr.trim() || `no ready line within ${timeoutMs} ms`}`);
    }
    this.current = inc;
  }

  /** Kills the running incarnation with SIGKILL and resolves once it is gone. */
  async kill9(): Promise<void> {
    const inc = this.current;
    if (!inc) return;
    this.current = null;
    inc.child.kill('SIGKILL');
    await inc.exited;
  }

  /**
   * Flushes the running incarnation's volume (what an NBD flush does).
   * @throws Error when no gateway runs, it fails the flush, or it does not answer in `timeoutMs`.
   */
  async flush(timeoutMs = 60000): Promise<void> {
    const inc = this.current;
    if (!inc) throw new Error('no gateway is running');
    const id = this.nextFlush++;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => done(new Error(`gateway flush did not answer within ${timeoutMs} ms`)), timeoutMs);
      const onMsg = (m: { event?: string; id?: number; error?: string }): void => {
        if (m?.event === 'flushed' && m.id === id) done(m.error ? new Error(`gateway flush failed: ${m.error}`) : null);
      };
      const onExit = (): void => done(new Error('gateway exited during a flush'));
      const done = (e: Error | null): void => {
        clearTimeout(t);
        inc.child.off('message', onMsg);
        inc.child.off('exit', onExit);
        if (e) reject(e);
        else resolve();
      };
      inc.child.on('message', onMsg);
      inc.child.once('exit', onExit);
      inc.child.send({ cmd: 'flush', id });
    });
  }

  /** Stops the running incarnation gracefully (SIGTERM; SIGKILL after `graceMs`). */
  async stop(graceMs = 20000): Promise<void> {
    if (this.starting) await this.starting.catch(() => undefined);
    const inc = this.current;
    if (!inc) return;
    this.current = null;
    inc.child.kill('SIGTERM');
    const t = setTimeout(() => inc.child.kill('SIGKILL'), graceMs);
    await inc.exited;
    clearTimeout(t);
  }
}
