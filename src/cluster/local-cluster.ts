/**
 * A local cluster: storage nodes as child processes on this machine, with file-backed
 * devices under one data directory, and an initiator in this process that follows the
 * gossiped map (MapFollower). Used by `cairn up` and by the tests. Reopening a data
 * directory serves the same data (the layout comes from its cluster.json).
 *
 * The node set grows while it runs: addNode() adds a node to the map and starts it, and the
 * cluster watches the map it follows (each epoch a node process reports) for nodes added by
 * others (`cairn node add` from another process) whose device files live under its data
 * directory, and starts (and supervises) those too. Added nodes are not written to cluster.json
 * (its node list derives the creation map, which must not change); a restart learns them from
 * the newest signed map stored under the data directory.
 *
 * Volumes live in the catalog, not in cluster.json: start() creates a new data directory's
 * layout volume there, and moves the volumes an older cluster.json lists out of the file once
 * the authority has migrated them (see settleVolumes). `config.volumes` is kept in memory only,
 * filled from the catalog at start, for attach() and the tests.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { fileLogger, silentLogger, type FileLog } from '../logging/index.ts';
import { ApiClient } from '../api/client.ts';
import { initialMap } from '../clustermap/index.ts';
import { CONFIG_FILE, loadConfig, saveConfig, secureConfigFile, type ClusterConfig } from '../config/index.ts';
import { ensureBundle } from '../gossip/index.ts';
import { MapFollower, Volume, grantLease, takeWriteLease, type ClusterView, type ReadPolicy } from '../initiator/index.ts';
import { ApiPool, VolumeSet, type VolumeSetOptions } from '../gateway/index.ts';
import { NODE_MAIN } from '../node/index.ts';
import { ConnectionPool } from '../wire/index.ts';
import { addNodeToMap, waitNodeUp } from './add-node.ts';
import { createClusterConfig, provisionControlPlane, DEFAULT_LAYOUT, type ClusterLayout } from './create.ts';
import { devicesPresent, newestStoredMap, runningNodePid, seedNodeMap } from './node-set.ts';
import { catalogVolume, oneLine, settleVolumes } from './catalog-volumes.ts';
import { ensureNodeKey, useEtcdAuthority, type LocalEtcdAuthority } from './etcd-mode.ts';
import { RestartSupervisor } from './supervisor.ts';
import { withMallocEnv } from './malloc-env.ts';
import { childExecArgv } from '../runtime/index.ts';

/** Options of LocalCluster.start. */
export interface LocalClusterOptions {
  dataDir: string;
  /** Layout for a new data directory (ignored, except for checks, when one exists). */
  layout?: Partial<ClusterLayout>;
  /** Milliseconds to wait for each node to report ready (default 30000). */
  startTimeoutMs?: number;
  /** Progress lines ("node 1 ready on ..."). */
  onProgress?: (line: string) => void;
  /** Run the in-process initiator's map follower (default true). */
  initiator?: boolean;
  /**
   * Restart node processes that exit on their own (default false). A node that exits while
   * the cluster is not stopping, and was not stopped through stopNode(), is started again
   * after a backoff: 500 ms, doubling per consecutive restart up to 30 s; the backoff starts
   * over once a node has stayed up 60 s. A restart that fails is retried with the next backoff.
   */
  supervise?: boolean;
  /** One line per supervisor action ("node 2 exited (signal SIGKILL); restarting in 0.5 s (restart 1)", ...). */
  onSupervisor?: (line: string) => void;
  /**
   * Receives a readable line for every warning or error this process logs (its JSON log is
   * `logs/initiator.log`, at CAIRN_LOG_LEVEL): `cairn up` prints them.
   */
  logSummary?: (line: string) => void;
  /** Extra environment of node `id`'s process, over this process's (tests: e.g. CAIRN_CLOCK_SKEW_MS). */
  nodeEnv?: (id: number) => Record<string, string>;
  /**
   * Start nodes that join the map while the cluster runs (added by `cairn node add` from
   * another process) when all their device files exist under the data directory and no
   * other process runs them (default true). Such nodes are supervised like the others.
   */
  adoptNodes?: boolean;
  /**
   * The map authority of a NEW data directory is this etcd cluster (issue 14) instead of an
   * embedded one. For an existing directory it must match what cluster.json says (an
   * embedded one needs `cairn authority migrate`).
   */
  etcd?: LocalEtcdAuthority;
}

/** Options of LocalCluster.addNode (defaults: node 0's device count, device size and partitions). */
export interface AddNodeOptions {
  /** Devices (files) of the new node. */
  devices?: number;
  /** Bytes per device (sparse file). */
  deviceBytes?: number;
  /** Partitions per device. */
  partitions?: number;
}

/** The supervisor restarted a node process (`restarts`: its successful restarts so far). */
export interface NodeRestartEvent {
  node: number;
  restarts: number;
}


/** A node process reported accepting a map epoch (`at`: ms since 1970, sub-ms precision). */
export interface NodeMapEvent {
  node: number;
  epoch: number;
  /** The map's checksum (two maps of one epoch with different checksums would be a split brain). */
  checksum: number;
  at: number;
  /** Ids of the nodes that map marks down. */
  down: number[];
}

/** Thrown when a node process fails to start; carries its stderr. */
export class NodeStartError extends Error {
  override name = 'NodeStartError';
}

interface NodeProc {
  child: ChildProcess;
  exited: Promise<number | null>;
  stderr: string;
  /** Signal that ended the process, once it has exited. */
  signal: NodeJS.Signals | null;
  /** When it reported ready (ms since 1970); 0 until then. */
  readyAt: number;
  /** Stopped through stopNode() or stop(): the supervisor leaves it down. */
  stopRequested: boolean;
}

/**
 * A running local cluster. `events` emits 'map' (NodeMapEvent) when a node process accepts
 * a map epoch, and 'restart' (NodeRestartEvent) when the supervisor (option `supervise`)
 * has restarted a node process.
 */
export class LocalCluster {
  private readonly procs = new Map<number, NodeProc>();
  private readonly supervisor = new RestartSupervisor({
    start: (id) => this.startNode(id),
    running: (id) => this.procs.has(id),
    stopped: () => this.stopped,
    line: (text) => this.supervisorLine(text),
    restarted: (id, restarts) => this.events.emit('restart', { node: id, restarts } satisfies NodeRestartEvent),
  });
  private readonly connections: ConnectionPool;
  /** The in-process initiator's map follower (null when started with initiator: false). */
  follower: MapFollower | null = null;
  private log: Logger | null = null;
  private logFile: FileLog | null = null;
  private followerStarting: Promise<MapFollower> | null = null;
  /** Nodes that completed a peering round since they were started: id → upEpoch. */
  readonly peered = new Map<number, number>();
  /** Node-process events ('map', 'restart', 'peered' {node, upEpoch, staleExtents}). */
  readonly events = new EventEmitter();
  /** Highest epoch any node reported at start. */
  private startEpoch = 1;
  /** The nodes' management APIs (the follower's map, else the creation map). */
  private catalogApi(): ApiPool {
    return new ApiPool(() => this.follower?.current.map ?? initialMap(this.config), this.config.token, 10000);
  }

  private stopped = false;
  /** Every node this cluster runs (cluster.json's and added ones): id -> addresses. */
  private readonly nodes = new Map<number, { host: string; port: number }>();
  /** Map nodes found running outside this cluster (their pid file is live): left alone. */
  private readonly foreign = new Set<number>();
  /** Highest epoch whose map was scanned for nodes to adopt. */
  private scannedEpoch = 0;
  /** The scan in progress (scans run one at a time). */
  private scanning: Promise<void> = Promise.resolve();

  private constructor(
    readonly dataDir: string,
    readonly config: ClusterConfig,
    /** True when this start created the data directory's configuration. */
    readonly created: boolean,
    private readonly opts: LocalClusterOptions,
  ) {
    this.connections = new ConnectionPool({ token: config.token, address: (id) => this.view.address(id) });
    for (const n of config.nodes) this.nodes.set(n.id, { host: n.host, port: n.port });
    if (opts.adoptNodes !== false) this.events.on('map', (e: NodeMapEvent) => this.onNodeMap(e.epoch));
  }

  /** This process's logger (`logs/initiator.log`); silent before the initiator started or without it. */
  get logger(): Logger {
    return this.log ?? silentLogger();
  }

  /** The initiator's current cluster view (newest map it holds). */
  get view(): ClusterView {
    if (!this.follower) throw new Error('this LocalCluster runs no initiator');
    return this.follower.current;
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
    // cluster.json holds the cluster token: an existing copy readable by others is tightened.
    if (config && (await secureConfigFile(dataDir))) opts.onProgress?.(`${CONFIG_FILE} was readable by others; changed its mode to 0600`);
    let created = false;
    const layout: ClusterLayout = { ...DEFAULT_LAYOUT, ...opts.layout };
    if (!config) {
      config = await createClusterConfig(layout);
      created = true;
    }
    if (!created && opts.etcd && config.authority?.kind !== 'etcd') {
      throw new Error(`${dataDir} has an embedded map authority; move it to etcd with \`cairn authority migrate --etcd URL --data-dir ${dataDir}\` (cluster stopped)`);
    }
    const provisioned = await provisionControlPlane(dataDir, config);
    if (created && opts.etcd) useEtcdAuthority(dataDir, config, opts.etcd);
    if (provisioned || created) await saveConfig(dataDir, config);
    const cluster = new LocalCluster(dataDir, config, created, opts);
    // Build the libp2p bundle once here rather than in every node process at once.
    await ensureBundle().catch(() => undefined);
    try {
      // The initiator's peer starts alongside the nodes; it dials them again once they are up.
      if (opts.initiator !== false) {
        cluster.followerStarting = cluster.startFollower();
        cluster.followerStarting.catch(() => undefined); // awaited below; no unhandled rejection meanwhile
      }
      // Nodes added after creation live in the map only: learn them from the newest stored one.
      if (!created && opts.adoptNodes !== false) await cluster.learnAddedNodes();
      const ids = cluster.nodeIds();
      await Promise.all(ids.map((id) => cluster.startNode(id)));
      // A node serves reads once it has asked every up node what it missed (peering).
      if (!(await cluster.waitPeered(ids, opts.startTimeoutMs ?? 30000))) {
        opts.onProgress?.(`nodes ${ids.filter((id) => !cluster.peered.has(id)).join(', ')} still peering; reads go to the other members meanwhile`);
      }
      if (cluster.followerStarting) {
        cluster.follower = await cluster.followerStarting;
        cluster.follower.control.redial();
        // Catch up with what the nodes hold before the first I/O (gossip would within a digest period).
        await cluster.follower.refresh(cluster.startEpoch);
      }
      await settleVolumes({
        api: cluster.catalogApi(), config: cluster.config, dataDir: cluster.dataDir, layout: created ? layout : null,
        layoutName: opts.layout?.volumeName ?? DEFAULT_LAYOUT.volumeName, stopped: () => cluster.stopped, progress: (line) => opts.onProgress?.(line),
      });
    } catch (e) {
      await cluster.stop();
      throw e;
    }
    return cluster;
  }

  private async startFollower(): Promise<MapFollower> {
    await mkdir(join(this.dataDir, 'logs'), { recursive: true });
    this.logFile = fileLogger(join(this.dataDir, 'logs', 'initiator.log'), { base: { initiator: process.pid }, summary: this.opts.logSummary });
    this.log = this.logFile.log;
    const f = await MapFollower.start({
      config: this.config,
      host: this.config.nodes[0].host,
      log: this.log,
      persistPath: join(this.dataDir, 'initiator', 'map.current'),
    });
    this.follower = f;
    return f;
  }

  /**
   * Starts node `id`'s process and waits until it serves.
   * @throws NodeStartError when it exits or times out first.
   */
  async startNode(id: number): Promise<void> {
    if (this.procs.has(id)) throw new NodeStartError(`node ${id} is already running`);
    const node = this.nodes.get(id);
    if (!node) throw new NodeStartError(`node ${id} is not in the cluster`);
    this.peered.delete(id);
    // Started by hand while a supervisor restart was pending: that restart is moot.
    this.supervisor.cancel(id, false);
    ensureNodeKey(this.dataDir, this.config, id);
    const args = ['--data-dir', this.dataDir, '--node', String(id)];
    // A node added after creation is not in cluster.json: it finds itself in its seeded
    // map.current, else in the map the authority's API serves.
    if (!this.config.nodes.some((n) => n.id === id)) args.push('--join', this.authorityUrl());
    const child = fork(NODE_MAIN, args, {
      // CAIRN_NODE_EXEC_ARGV adds Node flags to node processes, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
      execArgv: [...childExecArgv(), ...(process.env.CAIRN_NODE_EXEC_ARGV?.split(/\s+/).filter(Boolean) ?? [])],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: withMallocEnv(this.opts.nodeEnv ? { ...process.env, ...this.opts.nodeEnv(id) } : process.env),
      // Own process group: a terminal's Ctrl-C reaches only the parent, which drains
      // clients before stopping nodes. Nodes still stop when the parent's IPC link drops.
      detached: true,
    });
    const proc: NodeProc = {
      child,
      stderr: '',
      signal: null,
      readyAt: 0,
      stopRequested: false,
      exited: new Promise((r) => child.once('exit', (code, signal) => {
        proc.signal = signal;
        r(code);
      })),
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
      child.on('message', (m: { type?: string; epoch?: number; checksum?: number; at?: number; down?: number[] }) => {
        if (m?.type === 'ready') {
          clearTimeout(t);
          this.startEpoch = Math.max(this.startEpoch, m.epoch ?? 1);
          resolveReady(true);
        } else if (m?.type === 'peered') {
          this.peered.set(id, (m as { upEpoch?: number }).upEpoch ?? 1);
          this.events.emit('peered', { node: id, upEpoch: (m as { upEpoch?: number }).upEpoch ?? 1, staleExtents: (m as { staleExtents?: number }).staleExtents ?? 0 });
        } else if (m?.type === 'map') {
          this.events.emit('map', { node: id, epoch: m.epoch ?? 0, checksum: m.checksum ?? 0, at: m.at ?? Date.now(), down: m.down ?? [] } satisfies NodeMapEvent);
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
    proc.readyAt = Date.now();
    // Runs after the handler above has removed the entry from `procs`.
    void proc.exited.then((code) => this.onNodeExit(id, proc, code));
    this.connections.forgive(id);
    this.opts.onProgress?.(`node ${id} ready on ${node.host}:${node.port}`);
  }

  /** Successful supervisor restarts of node `id` since this LocalCluster started (0 without `supervise`). */
  restarts(id: number): number {
    return this.supervisor.restarts(id);
  }

  /** A node process that had reported ready exited. */
  private onNodeExit(id: number, proc: NodeProc, code: number | null): void {
    if (!this.opts.supervise || this.stopped || proc.stopRequested) return;
    this.supervisor.exited(id, proc.readyAt, proc.signal ? `signal ${proc.signal}` : `code ${code}`);
  }

  /** Hands `line` to onSupervisor; a throwing callback must not break supervision. */
  private supervisorLine(line: string): void {
    try {
      this.opts.onSupervisor?.(line);
    } catch {
      // the line is lost; the restart goes on
    }
  }

  /**
   * Stops node `id`: SIGTERM (graceful: the map marks it down first, then it flushes and
   * exits) or SIGKILL (a crash: marked down after membership's downAfterMs).
   * An operator's stop: the supervisor does not restart it, and a pending restart is dropped.
   * Resolves when the process has exited.
   */
  async stopNode(id: number, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    this.supervisor.cancel(id, true);
    const p = this.procs.get(id);
    if (!p) return;
    p.stopRequested = true;
    p.child.kill(signal);
    await p.exited;
    if (p.child.connected) p.child.disconnect();
  }

  /**
   * Resolves true once every node in `ids` has reported a completed peering round since it
   * was (re)started, false after `timeoutMs`.
   */
  async waitPeered(ids: number[], timeoutMs: number): Promise<boolean> {
    const done = (): boolean => ids.every((id) => this.peered.has(id));
    if (done()) return true;
    return new Promise((resolveDone) => {
      const t = setTimeout(() => {
        this.events.off('peered', on);
        resolveDone(false);
      }, timeoutMs);
      const on = (): void => {
        if (!done()) return;
        clearTimeout(t);
        this.events.off('peered', on);
        resolveDone(true);
      };
      this.events.on('peered', on);
    });
  }

  /** Ids of every node this cluster runs (cluster.json's and added ones), running or not. */
  nodeIds(): number[] {
    return [...this.nodes.keys()].sort((a, b) => a - b);
  }

  /** Base URL of the map authority's management API. */
  private authorityUrl(): string {
    // With etcd any node acts for the authority: ask one that runs.
    const running = this.config.authority?.kind === 'etcd' ? this.config.nodes.find((n) => this.procs.has(n.id)) : undefined;
    const a = running ?? this.config.nodes.find((n) => n.id === this.config.authority?.node) ?? this.config.nodes[0];
    return `http://${a.host}:${a.apiPort}`;
  }

  /**
   * Adds a storage node: picks the next free node id and free ports, creates its device
   * files (sparse) under the data directory, submits the `add-node` change to the authority
   * through its management API, starts the node's process (supervised when `supervise` is on),
   * and waits until it is ready and the map marks it up (and the initiator holds that map).
   * The node then holds no data: placement moves extents onto it (rebalance).
   * @returns the new node's id.
   * @throws AddNodeError on bad options; ApiError when the authority refuses the change or is
   *         unreachable; NodeStartError when the node does not start or is not marked up within
   *         `startTimeoutMs` (it stays in the map, down).
   */
  async addNode(opts: AddNodeOptions = {}): Promise<number> {
    if (this.stopped) throw new Error('this LocalCluster is stopped');
    const api = new ApiClient(this.authorityUrl(), this.config.token);
    const { node } = await addNodeToMap(api, {
      devices: opts.devices,
      deviceBytes: opts.deviceBytes,
      partitions: opts.partitions,
      host: this.config.nodes[0].host,
      dataDir: this.dataDir,
      reservedIds: this.nodes.keys(),
      // Known before its epoch is out: the map watcher must not start it as well.
      beforeSubmit: (n) => this.nodes.set(n.id, { host: n.host, port: n.port }),
      onRejected: (n) => this.nodes.delete(n.id),
    });
    const newest = await newestStoredMap(this.dataDir, this.config);
    if (newest?.map.nodes.some((n) => n.id === node.id)) await seedNodeMap(this.dataDir, node.id, newest);
    await this.startNode(node.id);
    const timeout = this.opts.startTimeoutMs ?? 30000;
    const up = await waitNodeUp(api, node.id, timeout);
    if (!up) throw new NodeStartError(`node ${node.id} started but the map did not mark it up within ${timeout} ms`);
    if (this.follower) await this.follower.refresh(up.epoch);
    this.opts.onProgress?.(`node ${node.id} added (map epoch ${up.epoch})`);
    return node.id;
  }

  /**
   * Adds to the node set every node of the newest stored map that lives here (its device
   * files exist under the data directory) and that no other process runs, seeding its
   * map.current with that map.
   * @returns the ids added.
   */
  private async learnAddedNodes(): Promise<number[]> {
    const newest = await newestStoredMap(this.dataDir, this.config);
    if (!newest) return [];
    this.scannedEpoch = Math.max(this.scannedEpoch, newest.epoch);
    const added: number[] = [];
    for (const n of newest.map.nodes) {
      if (this.nodes.has(n.id) || this.foreign.has(n.id) || this.stopped) continue;
      if (!(await devicesPresent(this.dataDir, n))) continue;
      const pid = await runningNodePid(this.dataDir, n.id);
      if (pid !== null) {
        this.foreign.add(n.id);
        this.opts.onProgress?.(`node ${n.id} runs in another process (pid ${pid}); leaving it to that process`);
        continue;
      }
      if (this.nodes.has(n.id) || this.stopped) continue;
      await seedNodeMap(this.dataDir, n.id, newest);
      this.nodes.set(n.id, { host: n.host, port: n.port });
      added.push(n.id);
    }
    return added;
  }

  /** A node process accepted map `epoch`: look for nodes added to the map that live here. */
  private onNodeMap(epoch: number): void {
    if (this.stopped || epoch <= this.scannedEpoch) return;
    this.scannedEpoch = epoch;
    this.scanning = this.scanning.then(async () => {
      if (this.stopped) return;
      const added = await this.learnAddedNodes().catch((e: Error) => {
        this.supervisorLine(`could not read the map for added nodes: ${oneLine(e.message)}`);
        return [];
      });
      for (const id of added) {
        if (this.stopped) return;
        this.opts.onProgress?.(`node ${id} joined the map: starting it`);
        this.startNode(id).catch((e: Error) => {
          if (this.stopped || this.procs.has(id)) return;
          if (this.opts.supervise) this.supervisor.failedToStart(id, oneLine(e.message));
          else this.opts.onProgress?.(`node ${id} did not start: ${oneLine(e.message)}`);
        });
      }
    });
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
   * Attaches volume `name` for I/O: takes its write lease (the authority grants the next
   * generation, every node is told, any earlier attachment is fenced) and returns a Volume.
   * `ioTimeoutMs` bounds how long its I/O waits for enough members (default 30 s).
   * The volume comes from config.volumes, else from the catalog.
   * @throws Error when no such volume exists (or it is a clone: use volumeSet()); ApiError when
   *         the catalog cannot be asked; LeaseError / BlockDeviceError when the lease cannot be taken.
   */
  async attach(name: string, opts: { ioTimeoutMs?: number; readPolicy?: ReadPolicy } = {}): Promise<Volume> {
    if (!this.follower) throw new Error('this LocalCluster runs no initiator');
    const record = this.config.volumes.find((v) => v.name === name) ?? (await catalogVolume(this.catalogApi(), name, this.config.volumes));
    const follower = this.follower;
    const volume = new Volume({
      views: follower,
      connections: this.connections,
      record,
      lease: 0,
      log: this.log ?? undefined,
      ioTimeoutMs: opts.ioTimeoutMs,
      readPolicy: opts.readPolicy,
      renewLease: () => grantLease(follower.current, this.config.token, record.id),
    });
    await takeWriteLease(volume, record.id, follower.current, this.config.token);
    return volume;
  }

  /**
   * The catalog's volumes for serving, attached through this cluster's initiator (its map
   * follower and connections); see src/gateway VolumeSet.
   * @throws Error when this LocalCluster runs no initiator.
   */
  volumeSet(opts: Pick<VolumeSetOptions, 'ioTimeoutMs' | 'onResize' | 'onList'> = {}): VolumeSet {
    if (!this.follower) throw new Error('this LocalCluster runs no initiator');
    const follower = this.follower;
    return new VolumeSet({ views: follower, map: () => follower.current.map, connections: this.connections, token: this.config.token, log: this.log ?? undefined, ...opts });
  }

  /**
   * Stops every node gracefully (the IPC message {type: 'stop'}, or SIGTERM when a node's
   * IPC link is gone; SIGKILL after `graceMs` ms, default 20000) and drops pending
   * supervisor restarts. Unlike stopNode's SIGTERM, no node first waits for the map to
   * mark it down.
   */
  async stop(graceMs = 20000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.supervisor.cancelAll();
    await this.scanning;
    this.connections.close();
    await this.followerStarting?.catch(() => undefined);
    await this.follower?.stop();
    this.logFile?.close();
    await Promise.all([...this.procs.entries()].map(async ([, p]) => {
      p.stopRequested = true;
      // Every node stops: none asks the map to mark it down first (SIGTERM would), which
      // would only wait on an authority that is stopping too.
      try {
        if (p.child.connected) p.child.send({ type: 'stop' });
        else p.child.kill('SIGTERM');
      } catch {
        p.child.kill('SIGTERM');
      }
      const t = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
      await p.exited;
      clearTimeout(t);
    }));
  }
}
