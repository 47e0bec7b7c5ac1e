/**
 * Adding a storage node to a running cluster: choosing its id, ports and devices, creating
 * its device files, submitting the `add-node` map change through the management API (the
 * authority orders it as a new epoch; the node enters the map down and in) and waiting until
 * the map marks it up (the authority does so at its first heartbeat). Shared by
 * LocalCluster.addNode and `cairn node add`. cluster.json is never changed: the creation map
 * derives from its node list.
 */
import { mkdir, open, readdir, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ApiClient, ApiError } from '../api/client.ts';
import type { SubmitResult } from '../authority/index.ts';
import type { MapNode, OperatorChange } from '../clustermap/index.ts';
import { freePorts } from '../net/index.ts';

/** The node record of an `add-node` change (sizes in bytes, paths relative to the node's data directory). */
export type NewNode = Extract<OperatorChange, { type: 'add-node' }>['node'];

/** What the helpers need of a management API client (ApiClient and the CLI's ClusterApi fit). */
export interface ApiCaller {
  /** @throws ApiError (status 0 when unreachable). */
  call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T>;
}

/** The part of `GET /v1/map`'s reply these helpers read. */
export interface MapReply {
  epoch: number;
  /** Id of the node whose API answered. */
  servedBy?: number;
  nodes: MapNode[];
}

/** Choices for a new node; every one has a default. */
export interface NewNodeOptions {
  /** Devices (default: as many as node 0 has, or the lowest node id when 0 is gone). */
  devices?: number;
  /** Bytes per device (default: node 0's first device's). */
  deviceBytes?: number;
  /** Partitions per device (default: node 0's first device's). */
  partitions?: number;
  /** Address it listens on and the others reach it at (default: node 0's host). */
  host?: string;
  /** Data-path, gossip and API TCP ports (default: free ports on `host`, checked by binding them). */
  port?: number;
  gossipPort?: number;
  apiPort?: number;
}

/** Options of addNodeToMap. */
export interface AddNodeToMapOptions extends NewNodeOptions {
  /**
   * Data directory to create the node's device files in (sparse, `node<ID>/dev<D>.img`) before
   * the change is submitted; a `cairn up` running on that directory then starts the node.
   * Absent: no files are made (the node is started elsewhere, e.g. `cairn node start`).
   */
  dataDir?: string;
  /** Node ids not to take besides those in the map (e.g. ones the caller is starting). */
  reservedIds?: Iterable<number>;
  /** Called with the planned node right before its change is submitted. */
  beforeSubmit?: (node: NewNode) => void;
  /** Called when the submission of `node` failed (its files are removed again). */
  onRejected?: (node: NewNode) => void;
}

/** A new node could not be planned (bad sizes, no free id or ports). */
export class AddNodeError extends Error {
  override name = 'AddNodeError';
}

/** Smallest partition (bytes), as for a new cluster (createClusterConfig). */
const MIN_PARTITION_BYTES = 64 * 4096;
/** Attempts when another add took the chosen id meanwhile. */
const ID_ATTEMPTS = 8;

/** The node whose devices a new node copies by default: node 0, else the lowest id. */
function templateNode(nodes: MapNode[]): MapNode | undefined {
  return nodes.find((n) => n.id === 0) ?? [...nodes].sort((a, b) => a.id - b.id)[0];
}

/**
 * Plans the devices of a new node `id`: count, size and partitions from `opts` over node 0's.
 * @throws AddNodeError on out-of-range values.
 */
export function planDevices(id: number, nodes: MapNode[], opts: NewNodeOptions): NewNode['devices'] {
  const t = templateNode(nodes);
  const count = opts.devices ?? t?.devices.length ?? 1;
  const sizeBytes = opts.deviceBytes ?? t?.devices[0]?.sizeBytes;
  const partitions = opts.partitions ?? t?.devices[0]?.partitions ?? 1;
  if (!Number.isInteger(count) || count < 1 || count > 256) throw new AddNodeError(`devices per node must be 1..256, got ${count}`);
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > 256) throw new AddNodeError(`partitions per device must be 1..256, got ${partitions}`);
  if (sizeBytes === undefined) throw new AddNodeError('no device size given and the map has no device to copy it from');
  if (!Number.isInteger(sizeBytes) || sizeBytes / partitions < MIN_PARTITION_BYTES) {
    throw new AddNodeError(`device too small: ${sizeBytes} bytes in ${partitions} partitions (each needs at least 256 KiB)`);
  }
  return Array.from({ length: count }, (_, d) => ({ path: `node${id}/dev${d}.img`, sizeBytes, partitions }));
}

/** The lowest id above every id in the map and `reserved`, skipping `skip` and ids whose `node<ID>` folder exists in `dataDir`. */
async function nextNodeId(nodes: MapNode[], reserved: number[], skip: Set<number>, dataDir?: string): Promise<number> {
  const taken = new Set(dataDir ? (await readdir(dataDir).catch(() => [] as string[])).map((f) => /^node(\d+)$/.exec(f)?.[1]).filter((x) => x !== undefined).map(Number) : []);
  let id = Math.max(-1, ...nodes.map((n) => n.id), ...reserved) + 1;
  while (taken.has(id) || skip.has(id)) id++;
  if (id > 32767) throw new AddNodeError('no free node id (ids go up to 32767)');
  return id;
}

/** Three ports on `host` that are free now and that no node in the map uses on that host. */
async function pickPorts(host: string, nodes: MapNode[], opts: NewNodeOptions): Promise<[number, number, number]> {
  const used = new Set(nodes.filter((n) => n.host === host).flatMap((n) => [n.port, n.gossipPort, n.apiPort]));
  for (let attempt = 0; attempt < 5; attempt++) {
    let free: number[];
    try {
      free = await freePorts(3, host);
    } catch (e) {
      throw new AddNodeError(`cannot pick free ports on ${host} (${(e as Error).message}): is it an address of this machine? Otherwise give the ports explicitly`);
    }
    if (free.some((p) => used.has(p))) continue;
    return [opts.port ?? free[0], opts.gossipPort ?? free[1], opts.apiPort ?? free[2]];
  }
  throw new AddNodeError(`cannot pick free ports on ${host}`);
}

/**
 * Creates the device files of `node` under `dataDir`, sparse, each exactly its size. Never
 * touches an existing file.
 * @throws Error (EEXIST) when a file already exists, or from the file system.
 */
export async function createDeviceFiles(dataDir: string, node: Pick<NewNode, 'devices'>): Promise<void> {
  for (const d of node.devices) {
    const path = resolve(dataDir, d.path);
    await mkdir(dirname(path), { recursive: true });
    const fh = await open(path, 'wx');
    try {
      await fh.truncate(d.sizeBytes);
    } finally {
      await fh.close();
    }
  }
}

/**
 * Plans a new node (next free id, free ports, node 0's device layout unless told otherwise),
 * optionally creates its device files, and submits `{type: 'add-node'}` through `api`. When
 * another submission took the id meanwhile (409), it retries with the next id.
 * @returns the node as submitted and the map epoch that added it.
 * @throws ApiError when the API is unreachable (status 0) or refuses the change,
 *         AddNodeError when no node can be planned, or a file-system Error.
 */
export async function addNodeToMap(api: ApiCaller, opts: AddNodeToMapOptions = {}): Promise<{ node: NewNode; epoch: number }> {
  let map = await api.call<MapReply>('GET', '/v1/map');
  const reserved = [...(opts.reservedIds ?? [])];
  const skip = new Set<number>();
  for (let attempt = 0; ; attempt++) {
    const id = await nextNodeId(map.nodes, reserved, skip, opts.dataDir);
    const host = opts.host ?? templateNode(map.nodes)?.host ?? '127.0.0.1';
    const devices = planDevices(id, map.nodes, opts);
    const [port, gossipPort, apiPort] = opts.port !== undefined && opts.gossipPort !== undefined && opts.apiPort !== undefined
      ? [opts.port, opts.gossipPort, opts.apiPort]
      : await pickPorts(host, map.nodes, opts);
    const node: NewNode = { id, host, port, gossipPort, apiPort, devices };
    const dir = opts.dataDir ? join(opts.dataDir, `node${id}`) : null;
    if (opts.dataDir) await createDeviceFiles(opts.dataDir, node);
    opts.beforeSubmit?.(node);
    try {
      const r = await api.call<SubmitResult>('POST', '/v1/map/changes', { type: 'add-node', node } satisfies OperatorChange);
      return { node, epoch: r.epoch };
    } catch (e) {
      opts.onRejected?.(node);
      if (dir) await rm(dir, { recursive: true, force: true });
      if (!(e instanceof ApiError && e.status === 409 && /already in the map/.test(e.message)) || attempt + 1 >= ID_ATTEMPTS) throw e;
      skip.add(id);
      map = await api.call<MapReply>('GET', '/v1/map');
    }
  }
}

/** Options of waitNodeUp. */
export interface WaitNodeUpOptions {
  /** Milliseconds between polls (default 250). */
  intervalMs?: number;
  /**
   * Cluster token: when given, the node must also answer on its own management API (it does
   * once it serves; the map marks a node up at its first heartbeat, which comes earlier).
   */
  token?: string;
}

/**
 * Polls `GET /v1/map` through `api` until node `id` is in it and up (and, with `token`, its
 * own API answers). API errors meanwhile (a node restarting) are tolerated.
 * @returns the epoch and the node's entry, or null after `timeoutMs` ms.
 */
export async function waitNodeUp(api: ApiCaller, id: number, timeoutMs: number, opts: WaitNodeUpOptions = {}): Promise<{ epoch: number; node: MapNode } | null> {
  const end = Date.now() + timeoutMs;
  const interval = opts.intervalMs ?? 250;
  for (;;) {
    const m = await api.call<MapReply>('GET', '/v1/map').catch(() => null);
    const n = m?.nodes.find((x) => x.id === id);
    if (m && n?.up) {
      const serves = opts.token === undefined
        || await new ApiClient(`http://${n.host}:${n.apiPort}`, opts.token, 2000).call('GET', '/v1/map').then(() => true, () => false);
      if (serves) return { epoch: m.epoch, node: n };
    }
    if (Date.now() + interval > end) return null;
    await new Promise((r) => setTimeout(r, interval));
  }
}
