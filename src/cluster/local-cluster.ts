/**
 * A local cluster: storage nodes as child processes on this machine, with file-backed
 * devices under one data directory. Used by `cairn up` and by the tests. Reopening a data
 * directory serves the same data (the layout comes from its cluster.json).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { loadConfig, saveConfig, type ClusterConfig } from '../config/index.ts';
import { ClusterView, Volume } from '../initiator/index.ts';
import { NODE_MAIN } from '../node/index.ts';
import { ConnectionPool } from '../wire/index.ts';
import { createClusterConfig, DEFAULT_LAYOUT, type ClusterLayout } from './create.ts';

/** Options of LocalCluster.start. */
export interface LocalClusterOptions {
  dataDir: string;
  /** Layout for a new data directory (ignored, except for checks, when one exists). */
  layout?: Partial<ClusterLayout>;
  /** Milliseconds to wait for each node to report ready (default 30000). */
  startTimeoutMs?: number;
  /** Progress lines ("node 1 ready on ..."). */
  onProgress?: (line: string) => void;
}

/** Thrown when a node process fails to start; carries its stderr. */
export class NodeStartError extends Error {
  override name = 'NodeStartError';
}

interface NodeProc {
  child: ChildProcess;
  exited: Promise<number | null>;
  stderr: string;
}

/** A running local cluster. */
export class LocalCluster {
  private readonly procs = new Map<number, NodeProc>();
  private readonly connections: ConnectionPool;
  readonly view: ClusterView;
  private stopped = false;

  private constructor(
    readonly dataDir: string,
    readonly config: ClusterConfig,
    /** True when this start created the data directory's configuration. */
    readonly created: boolean,
    private readonly opts: LocalClusterOptions,
  ) {
    this.view = new ClusterView(config);
    this.connections = new ConnectionPool({ token: config.token, address: (id) => this.view.address(id) });
  }

  /**
   * Opens (or creates) the cluster in `opts.dataDir` and starts every node.
   * @throws ConfigError on an invalid existing configuration, LayoutError on a bad layout,
   *         NodeStartError when a node does not come up (the others are stopped again).
   */
  static async start(opts: LocalClusterOptions): Promise<LocalCluster> {
    const dataDir = resolve(opts.dataDir);
    await mkdir(dataDir, { recursive: true });
    let config = await loadConfig(dataDir);
    let created = false;
    if (!config) {
      config = await createClusterConfig({ ...DEFAULT_LAYOUT, ...opts.layout });
      await saveConfig(dataDir, config);
      created = true;
    }
    const cluster = new LocalCluster(dataDir, config, created, opts);
    try {
      await Promise.all(config.nodes.map((n) => cluster.startNode(n.id)));
    } catch (e) {
      await cluster.stop();
      throw e;
    }
    return cluster;
  }

  /**
   * Starts node `id`'s process and waits until it serves.
   * @throws NodeStartError when it exits or times out first.
   */
  async startNode(id: number): Promise<void> {
    if (this.procs.has(id)) throw new NodeStartError(`node ${id} is already running`);
    const node = this.config.nodes.find((n) => n.id === id);
    if (!node) throw new NodeStartError(`node ${id} is not in the cluster`);
    const child = fork(NODE_MAIN, ['--data-dir', this.dataDir, '--node', String(id)], {
      // CAIRN_NODE_EXEC_ARGV adds Node flags to node processes, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
      execArgv: ['--import', 'tsx', ...(process.env.CAIRN_NODE_EXEC_ARGV?.split(/\s+/).filter(Boolean) ?? [])],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      // Own process group: a terminal's Ctrl-C reaches only the parent, which drains
      // clients before stopping nodes. Nodes still stop when the parent's IPC link drops.
      detached: true,
    });
    const proc: NodeProc = {
      child,
      stderr: '',
      exited: new Promise((r) => child.once('exit', (code) => r(code))),
    };
    child.stderr!.on('data', (d: Buffer) => {
      proc.stderr = (proc.stderr + d.toString()).slice(-4000);
    });
    this.procs.set(id, proc);
    void proc.exited.then(() => {
      if (this.procs.get(id) === proc) this.procs.delete(id);
    });
    const timeout = this.opts.startTimeoutMs ?? 30000;
    const ready = await new Promise<boolean>((resolveReady) => {
      const t = setTimeout(() => resolveReady(false), timeout);
      child.on('message', (m: { type?: string }) => {
        if (m?.type === 'ready') {
          clearTimeout(t);
          resolveReady(true);
        }
      });
      void proc.exited.then(() => {
        clearTimeout(t);
        resolveReady(false);
      });
    });
    if (!ready) {
      child.kill('SIGKILL');
      await proc.exited;
      throw new NodeStartError(`node ${id} did not start: ${proc.stderr.trim() || `no ready report within ${timeout} ms`}`);
    }
    this.connections.forgive(id);
    this.opts.onProgress?.(`node ${id} ready on ${node.host}:${node.port}`);
  }

  /**
   * Stops node `id`: SIGTERM (graceful: flushes and exits) or SIGKILL (a crash).
   * Resolves when the process has exited.
   */
  async stopNode(id: number, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const p = this.procs.get(id);
    if (!p) return;
    p.child.kill(signal);
    await p.exited;
    if (p.child.connected) p.child.disconnect();
  }

  /** Ids of nodes whose process is running. */
  runningNodes(): number[] {
    return [...this.procs.keys()].sort((a, b) => a - b);
  }

  /** Process id of node `id`, if running. */
  pidOf(id: number): number | undefined {
    return this.procs.get(id)?.child.pid;
  }

  /**
   * Attaches volume `name` for I/O: takes the next write-lease generation (persisted, so
   * any earlier attachment is fenced) and returns a Volume on this cluster.
   * @throws Error when no such volume exists.
   */
  async attach(name: string): Promise<Volume> {
    const record = this.config.volumes.find((v) => v.name === name);
    if (!record) throw new Error(`no volume named '${name}' (have: ${this.config.volumes.map((v) => v.name).join(', ') || 'none'})`);
    record.lease += 1;
    await saveConfig(this.dataDir, this.config);
    return new Volume({ view: this.view, connections: this.connections, record, lease: record.lease });
  }

  /** Stops every node gracefully (SIGTERM; SIGKILL after `graceMs`, default 20000). */
  async stop(graceMs = 20000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.connections.close();
    await Promise.all([...this.procs.entries()].map(async ([, p]) => {
      p.child.kill('SIGTERM');
      const t = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
      await p.exited;
      clearTimeout(t);
    }));
  }
}
