/**
 * A local etcd cluster for `cairn up --etcd` and the tests: N real etcd member processes
 * (Debian's etcd-server) on one host, state under one directory. The ports chosen on the
 * first start are kept in `<dir>/etcd.json`, so a later start of the same directory serves
 * the same endpoints (which cluster.json names). Tuned for loopback: heartbeat 100 ms,
 * election timeout 1000 ms. Each member logs to `<dir>/member<i>.log`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync, closeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { freePorts } from '../net/index.ts';
import { join } from 'node:path';

/** One member of a LocalEtcd. */
export interface LocalEtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  /** Process id while it runs, else null. */
  pid: number | null;
}

/** Options of LocalEtcd.start. */
export interface LocalEtcdOptions {
  /** Directory of the members' state (created when missing). */
  dir: string;
  /** Members (default 3; ignored when `dir` already holds a cluster). */
  members?: number;
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  onProgress?: (line: string) => void;
  /** etcd binary (default: `etcd` on PATH, else /usr/bin/etcd). */
  binary?: string;
  /** Milliseconds to wait for every member to report healthy (default 30000). */
  startTimeoutMs?: number;
}

/** What `<dir>/etcd.json` keeps. */
interface Layout {
  token: string;
  host: string;
  members: Array<{ name: string; clientPort: number; peerPort: number }>;
}

/** The etcd binary to run. @throws Error when none is installed. */
function findBinary(given?: string): string {
  if (given) {
    if (!existsSync(given)) throw new Error(`etcd not found at ${given}: install Debian's etcd-server (apt-get install -y etcd-server)`);
    return given;
  }
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/bin', '/usr/local/bin']) {
    if (dir && existsSync(join(dir, 'etcd'))) return join(dir, 'etcd');
  }
  throw new Error("etcd not found: install Debian's etcd-server (apt-get install -y etcd-server)");
}

/** A running local etcd cluster; see the module comment. */
export class LocalEtcd {
  private readonly procs: Array<ChildProcess | null>;
  private stopped = false;
  private readonly onExit = (): void => {
    for (const p of this.procs) p?.kill('SIGKILL');
  };

  private constructor(private readonly opts: LocalEtcdOptions, private readonly binary: string, private readonly layout: Layout) {
    this.procs = layout.members.map(() => null);
    process.on('exit', this.onExit);
  }

  /**
   * Starts every member of the cluster under `opts.dir` (creating it the first time) and
   * waits until each answers healthy.
   * @throws Error when etcd is not installed, or a member is not healthy in time (with the
   *         tail of its log).
   */
  static async start(opts: LocalEtcdOptions): Promise<LocalEtcd> {
    const binary = findBinary(opts.binary);
    mkdirSync(opts.dir, { recursive: true });
    const file = join(opts.dir, 'etcd.json');
    let layout: Layout;
    if (existsSync(file)) layout = JSON.parse(readFileSync(file, 'utf8')) as Layout;
    else {
      const host = opts.host ?? '127.0.0.1';
      const members: Layout['members'] = [];
      for (let i = 0; i < (opts.members ?? 3); i++) {
        const [clientPort, peerPort] = await freePorts(2, host);
        members.push({ name: `m${i}`, clientPort, peerPort });
      }
      layout = { token: `cairn-${randomBytes(6).toString('hex')}`, host, members };
      writeFileSync(file, JSON.stringify(layout, null, 2));
    }
    const e = new LocalEtcd(opts, binary, layout);
    try {
      await Promise.all(layout.members.map((_, i) => e.restart(i)));
    } catch (err) {
      await e.stop();
      throw err;
    }
    opts.onProgress?.(`etcd: ${layout.members.length} members healthy at ${e.endpoints.join(', ')} (state in ${opts.dir})`);
    return e;
  }

  /** Client URLs of the members. */
  get endpoints(): string[] {
    return this.layout.members.map((m) => `http://${this.layout.host}:${m.clientPort}`);
  }

  /** The members and their processes. */
  members(): LocalEtcdMember[] {
    return this.layout.members.map((m, i) => ({
      name: m.name,
      clientUrl: `http://${this.layout.host}:${m.clientPort}`,
      peerUrl: `http://${this.layout.host}:${m.peerPort}`,
      dataDir: join(this.opts.dir, `member${i}`),
      pid: this.procs[i]?.pid ?? null,
    }));
  }

  /**
   * Starts member `i` (again), with its existing state, and waits until it answers healthy.
   * @throws Error when it is not healthy within startTimeoutMs.
   */
  async restart(i: number): Promise<void> {
    if (this.procs[i]) return;
    const l = this.layout;
    const m = l.members[i];
    const dataDir = join(this.opts.dir, `member${i}`);
    const peers = l.members.map((x) => `${x.name}=http://${l.host}:${x.peerPort}`).join(',');
    const logPath = join(this.opts.dir, `member${i}.log`);
    const fd = openSync(logPath, 'a');
    const child = spawn(this.binary, [
      '--name', m.name, '--data-dir', dataDir,
      '--listen-client-urls', `http://${l.host}:${m.clientPort}`, '--advertise-client-urls', `http://${l.host}:${m.clientPort}`,
      '--listen-peer-urls', `http://${l.host}:${m.peerPort}`, '--initial-advertise-peer-urls', `http://${l.host}:${m.peerPort}`,
      '--initial-cluster', peers, '--initial-cluster-token', l.token, '--initial-cluster-state', 'new',
      '--heartbeat-interval', '100', '--election-timeout', '1000',
    ], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.procs[i] = child;
    child.on('exit', () => {
      if (this.procs[i] === child) this.procs[i] = null;
    });
    child.on('error', () => undefined);
    const url = `http://${l.host}:${m.clientPort}/health`;
    const end = Date.now() + (this.opts.startTimeoutMs ?? 30000);
    while (Date.now() < end) {
      if (this.procs[i] !== child) break;
      try {
        const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
        if (r.ok && ((await r.json()) as { health?: string }).health === 'true') return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const tail = existsSync(logPath) ? readFileSync(logPath, 'utf8').trim().split('\n').slice(-5).join('\n') : '';
    throw new Error(`etcd member ${m.name} (${url}) not healthy${this.procs[i] === child ? ' in time' : ': it exited'}; log tail:\n${tail}`);
  }

  /** Sends `signal` to member `i` and waits for it to exit (no-op when not running). */
  async kill(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.procs[i];
    if (!p) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill(signal);
    await gone;
  }

  /** SIGSTOP of member `i` (a stalled member). */
  pause(i: number): void {
    this.procs[i]?.kill('SIGSTOP');
  }

  /** SIGCONT of member `i`. */
  resume(i: number): void {
    this.procs[i]?.kill('SIGCONT');
  }

  /** Stops every member: SIGTERM, then SIGKILL after 5 s; waits for them. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all(this.procs.map(async (p, i) => {
      if (!p) return;
      p.kill('SIGCONT');
      const t = setTimeout(() => p.kill('SIGKILL'), 5000);
      await this.kill(i, 'SIGTERM');
      clearTimeout(t);
    }));
    process.off('exit', this.onExit);
  }
}
