/**
 * Storage node daemon entry: `node --import tsx src/node/main.ts --data-dir DIR --node ID`.
 * Opens the node's partitions, joins the control plane (libp2p gossip: maps, digests,
 * heartbeats; the map authority too when cluster.json names this node, or — etcd — in every
 * node, one of which leads membership decisions at a time), serves the data path
 * and the management API, and reports readiness to a parent (IPC message {type: 'ready',
 * port, gossipPort, apiPort}) and on stdout; each accepted map epoch is reported as
 * {type: 'map', node, epoch, checksum, at, down} (at: ms since 1970, sub-ms precision; down: node ids
 * marked down in that map); each completed peering round as {type: 'peered', node, upEpoch,
 * staleExtents}. SIGTERM/SIGINT stop it gracefully: it first has the map mark it down (a
 * heartbeat flagged `leaving`; at most LEAVE_TIMEOUT_MS), so I/O moves to the other copies
 * before its connections close; then in-flight requests finish and every partition is
 * flushed. The IPC message {type: 'stop'} (the whole local cluster stopping) and the
 * parent going away stop it the same way without that first step. While it runs,
 * `<data-dir>/run/node<ID>.pid` holds its process id.
 */
import '../gossip/polyfill.ts';
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileLogger } from '../logging/index.ts';
import { loadConfig, membershipOf } from '../config/index.ts';
import { ControlPlane, type Heartbeat } from '../gossip/index.ts';
import { EmbeddedAuthority, EtcdAuthority, type MapAuthority } from '../authority/index.ts';
import { mapNode, type SignedMap } from '../clustermap/index.ts';
import { NodeServer } from './server.ts';
import type { PeeringState } from './placement-state.ts';
import { loadRecovery, saveRecovery } from './recovery-store.ts';
import { writeJsonDurably } from './durable-file.ts';
import { LeaseTable } from './fencing.ts';
import { NodeStorage } from './storage.ts';
import { startNodeCatalog, type NodeCatalog } from '../catalog/node-catalog.ts';
import { CATALOG_VOLUME } from '../catalog/keys.ts';
import { MissedLog } from '../recovery/index.ts';
import { loadLibp2pStack } from '../gossip/libp2p-stack.ts';
import { createRegistry, registerMetricsRoute, registerNodeMetrics } from '../metrics/index.ts';
import { nodeMetricsSource } from './metrics.ts';
import { defaultNodePollUs, loopPoll, pollFromEnv } from '../net/index.ts';

// Test knob: CAIRN_CLOCK_SKEW_MS=<n> runs this node's wall clock (Date.now) n ms ahead (or
// behind, when negative), to show that nothing depends on the nodes' clocks agreeing
// (test/e2e/clock-skew.test.ts). Set before anything here reads the clock.
const clockSkewMs = Number(process.env.CAIRN_CLOCK_SKEW_MS ?? 0);
if (Number.isFinite(clockSkewMs) && clockSkewMs !== 0) {
  const realNow = Date.now.bind(Date);
  Date.now = () => realNow() + clockSkewMs;
}

// Start loading the libp2p stack now; it overlaps with opening the partitions.
void loadLibp2pStack();

// A node started by a launcher (IPC channel) stops with it. Until start-up is done there is
// nothing to drain: exit at once, so an orphan never keeps the partitions' locks (the
// launcher's next start would fail to open them). Afterwards, a graceful stop (below).
let onParentGone: (() => void) | null = null;
process.on('disconnect', () => (onParentGone ? onParentGone() : process.exit(1)));

const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    node: { type: 'string' },
    // Cluster API (http://host:port) to learn this node's entry from when neither cluster.json nor its stored map has it.
    join: { type: 'string' },
  },
});
const dataDir = values['data-dir'];
const nodeId = Number(values.node);
if (!dataDir || !Number.isInteger(nodeId)) {
  process.stderr.write('usage: main.ts --data-dir DIR --node ID [--join http://HOST:API-PORT]\n');
  process.exit(2);
}

mkdirSync(join(dataDir, 'logs'), { recursive: true });
// JSON lines at CAIRN_LOG_LEVEL (default info); subsystems log through children.
const { log } = fileLogger(join(dataDir, 'logs', `node${nodeId}.log`), { base: { node: nodeId } });

const fail = (msg: string): never => {
  log.fatal(msg);
  log.flush();
  process.stderr.write(`cairn-node ${nodeId}: ${msg}\n`);
  process.exit(1);
};

// Busy-polling after the reply to a lone host read, CAIRN_NODE_POLL_US µs (src/net/loop-poll.ts;
// NodeServer.pollGate says when).
try {
  pollFromEnv(process.env, 'CAIRN_NODE_POLL_US', defaultNodePollUs());
} catch (e) {
  fail((e as Error).message);
}
loopPoll.gate = () => false; // until the server exists (below)

const config = await loadConfig(dataDir).catch((e: Error) => fail(e.message));
if (!config) fail(`no cluster configuration in ${dataDir}`);
const me = config!.nodes.find((n) => n.id === nodeId) ?? (await nodeFromMap());

/**
 * This node's entry when cluster.json does not list it (a node added to a running cluster with
 * `cairn node add`): from the signed map in `<data-dir>/node<ID>/map.current` (verified with the
 * authority key in cluster.json), else from `GET /v1/map` of the cluster API named by --join
 * (authenticated with the cluster token). Device paths are relative to the data directory and
 * keep their map ids. Fails (exit 1) when neither has the node.
 */
async function nodeFromMap(): Promise<{ id: number; host: string; port: number; gossipPort: number; apiPort: number; devices: Array<{ id: number; path: string; sizeBytes: number; partitions: number }> }> {
  const { openSignedMap, parsePublicKey, MapNodeSchema } = await import('../clustermap/index.ts');
  let found: unknown;
  const wire = await readFile(join(dataDir!, `node${nodeId}`, 'map.current')).catch(() => null);
  if (wire && config!.authority) {
    try {
      found = openSignedMap(wire, parsePublicKey(config!.authority.publicKey), config!.clusterId).map.nodes.find((n) => n.id === nodeId);
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'stored map.current does not verify; ignoring it');
    }
  }
  if (!found && values.join) {
    const { ApiClient } = await import('../api/client.ts');
    const url = values.join.replace(/\/$/, '');
    const m = await new ApiClient(url, config!.token).call<{ epoch: number; nodes: Array<{ id: number }> }>('GET', '/v1/map')
      .catch((e: Error) => fail(`fetching the cluster map from ${url}: ${e.message}`));
    found = m.nodes.find((n) => n.id === nodeId) ?? fail(`node ${nodeId} is not in the cluster map (epoch ${m.epoch}) served by ${url}: add it first (cairn node add --no-start)`);
  }
  if (!found) fail(`node ${nodeId} is neither in cluster.json nor in its stored map (node${nodeId}/map.current): pass --join http://HOST:API-PORT of a running node of the cluster`);
  const parsed = MapNodeSchema.safeParse(found);
  if (!parsed.success) fail(`node ${nodeId}'s map entry is invalid: ${parsed.error.issues[0].path.join('.')}: ${parsed.error.issues[0].message}`);
  const n = parsed.data!;
  return {
    id: n.id, host: n.host, port: n.port, gossipPort: n.gossipPort, apiPort: n.apiPort,
    devices: [...n.devices].sort((a, b) => a.id - b.id).map((d) => ({ id: d.id, path: d.path, sizeBytes: d.sizeBytes, partitions: d.partitions })),
  };
}

if (!config!.authority || me.gossipPort === undefined || me.apiPort === undefined) {
  fail('cluster.json lacks the control plane (authority, gossip and API ports): open it with `cairn up` once to add them');
}
// Partitions, the gossip peer and the management API's code load side by side: start-up time
// is `cairn up`'s, and none of the three needs another to begin.
let opened: NodeStorage | null = null;
const phases: Record<string, number> = { config: Math.round(performance.now()) };
const timed = <T>(name: string, p: Promise<T>): Promise<T> => p.then((v) => {
  phases[name] = Math.round(performance.now());
  return v;
});
const [storage, control, { startManagementApi, ApiClient, registerVolumeRoutes }] = await Promise.all([
  timed('storage', NodeStorage.open(me, dataDir)).catch((e: Error) => fail(`opening storage: ${e.message}`)),
  timed('gossip', ControlPlane.start({
    config: config!,
    role: { kind: 'node', nodeId, stats: () => opened?.stats() ?? [], volumes: () => opened?.volumeUsage() ?? [] },
    host: me.host,
    port: me.gossipPort!,
    log,
    persistPath: join(dataDir, `node${nodeId}`, 'map.current'),
  })).catch((e: Error) => fail(`starting the gossip peer on ${me.host}:${me.gossipPort}: ${e.message}`)),
  timed('apiCode', import('../api/index.ts')),
]);
opened = storage;
const reportMap = (s: { epoch: number; checksum?: number; map: SignedMap['map'] }): void => {
  if (process.connected) process.send?.({ type: 'map', node: nodeId, epoch: s.epoch, checksum: s.checksum ?? control.keeper.signed?.checksum ?? 0, at: control.keeper.acceptedAt.get(s.epoch), down: s.map.nodes.filter((n) => !n.up).map((n) => n.id) });
};
control.on('map', reportMap);
// Maps the peer accepted while storage was still opening had no listener yet: report the
// newest of them now (one loaded from disk at start is not news and is not reported).
if (control.keeper.acceptedAt.has(control.keeper.epoch)) reportMap({ epoch: control.keeper.epoch, map: control.keeper.map });
// The map authority: embedded in the node cluster.json names, or (etcd) in every node, one
// of which leads membership decisions at a time. onLeader is bound once the catalog exists.
let onLeader: (leading: boolean) => void = () => undefined;
const etcd = config!.authority!.kind === 'etcd'
  ? await EtcdAuthority.open({
    config: config!, dataDir, selfNode: nodeId, publisher: control, log, knownEpoch: control.keeper.epoch,
    onLocalMap: (s) => control.keeper.offer(s.wire, 'authority'),
    onLeader: (leading) => onLeader(leading),
  }).catch((e: Error) => fail(`starting the map authority: ${e.message}`))
  : undefined;
let authority: MapAuthority | undefined = etcd;
if (!etcd && config!.authority!.node === nodeId) {
  authority = await EmbeddedAuthority.open({
    config: config!,
    dataDir,
    selfNode: nodeId,
    publisher: control,
    onLocalMap: (s) => control.keeper.offer(s.wire, 'authority'),
    log,
  }).catch((e: Error) => fail(`starting the map authority: ${e.message}`));
}
if (authority) {
  const a = authority;
  control.on('heartbeat', (hb: Heartbeat) => a.heartbeat(hb.node, Date.now(), hb.suspects, hb));
}
/** The node that leads membership and runs the catalog's changes (embedded: the authority node). */
const leaderNode = (): number => etcd?.leader() ?? config!.authority!.node;
/** Asks the authority's API for every granted lease generation, retrying until it answers. */
async function learnLeases(table: LeaseTable): Promise<void> {
  for (let attempt = 0; attempt < 60; attempt++) {
    const a = mapNode(control.keeper.map, leaderNode());
    if (a?.apiPort) {
      try {
        const r = await new ApiClient(`http://${a.host}:${a.apiPort}`, config!.token, 3000).call<{ leases: Record<number, number> }>('GET', '/v1/leases');
        table.merge(r.leases);
        log.info({ volumes: Object.keys(r.leases).length }, 'lease generations learned from the authority');
        return;
      } catch {
        // the authority may still be starting
      }
    }
    await new Promise((r) => setTimeout(r, 1000).unref());
  }
  log.warn('could not learn lease generations from the authority; fencing from the stored table and requests only');
}

// The fence table survives restarts; generations granted while this node was away come
// from the authority (waited for up to 5 s, then in the background: a node whose
// authority is down still serves).
const leases = new LeaseTable(join(dataDir, `node${nodeId}`, 'fences.json'));
await leases.load();
if (authority) leases.merge(authority.leases());
else {
  // Wait (a little) for the generations granted while this node was away before serving: a
  // writer fenced meanwhile must not land a write here that the other members refuse.
  const learning = learnLeases(leases);
  await Promise.race([learning, new Promise((r) => setTimeout(r, 5000).unref())]);
}
// What down members missed (log-guided resync) survives this node's restarts.
const missed = await MissedLog.open(join(dataDir, `node${nodeId}`, 'missed.log')).catch((e: Error) => fail(`opening the resync log: ${e.message}`));
// The inEpoch of this node's last full peering (src/node/recovery.ts), and whether the node
// last stopped cleanly. After a crash (power loss included) the node may lack writes it had
// acknowledged but not yet made durable, and nobody recorded them as missed: it compares
// every extent placed on it with the other members (a full peering) before serving them.
const peeringState = join(dataDir, `node${nodeId}`, 'peering.json');
const savePeering = (state: PeeringState & { clean: boolean }): Promise<void> => writeJsonDurably(peeringState, state);
const stored = await readFile(peeringState, 'utf8').then((t) => JSON.parse(t) as PeeringState & { clean?: boolean }, () => null);
const startState: PeeringState | null = stored === null ? null : { fullPeeredAt: stored.clean === false ? 0 : stored.fullPeeredAt, placement: stored.placement ?? 0 };
if (startState?.fullPeeredAt === 0) log.warn('the last run did not stop cleanly: comparing every extent placed on this node before serving it');
if (stored) await savePeering({ fullPeeredAt: stored.fullPeeredAt, placement: stored.placement ?? 0, clean: false });
// The recovery work list (extents still to pull) survives restarts: a node stopped in the
// middle of a backfill resumes it (src/node/recovery-store.ts).
const recoveryPath = join(dataDir, `node${nodeId}`, 'recovery.json');
const savedRecovery = await loadRecovery(recoveryPath);
// Prometheus metrics (GET /metrics on the API): read at scrape time, plus data-path counters
// (those are off with CAIRN_NO_METRICS=1, which `cairn up --no-metrics` sets: the bench's
// metrics-off reference).
const registry = createRegistry();
let serverRef: NodeServer | undefined;
const metrics = registerNodeMetrics(registry, nodeMetricsSource({ storage, server: () => serverRef, map: () => control.keeper.map, missed }));
const server = new NodeServer({
  metrics: process.env.CAIRN_NO_METRICS === '1' ? undefined : metrics,
  config: config!,
  nodeId,
  dataDir,
  storage,
  log,
  leases,
  missed,
  peeringState: startState,
  savePeeringState: (st) => savePeering({ ...st, clean: false }),
  savedRecovery,
  saveRecovery: (st) => saveRecovery(recoveryPath, st),
  onPeered: (upEpoch, staleExtents) => {
    if (process.connected) process.send?.({ type: 'peered', node: nodeId, upEpoch, staleExtents });
  },
  map: {
    epoch: () => control.keeper.epoch,
    ensure: (epoch) => control.fetchMap(epoch, 3000),
    address: (id) => mapNode(control.keeper.map, id),
    map: () => control.keeper.map,
  },
});
serverRef = server;
loopPoll.gate = () => server.pollGate();
control.on('map', () => server.onMap());
const port = await server.listen(me.host, me.port).catch((e: Error) => fail(`listening on ${me.host}:${me.port}: ${e.message}`));
// The volume catalog: records placed and replicated like data; changes run beside the authority.
const clusterSpace = (): { rawBytes: number; usedBytes: number } => {
  let rawBytes = 0;
  let usedBytes = 0;
  for (const n of control.keeper.map.nodes) {
    const parts = control.heartbeats.get(n.id)?.hb.partitions;
    if (parts?.length) for (const p of parts) {
      rawBytes += p.capacityBytes;
      usedBytes += p.usedBytes;
    }
    else for (const d of n.devices) rawBytes += d.sizeBytes;
  }
  return { rawBytes, usedBytes };
};
// The catalog's changes run on one node: the embedded authority's, or the membership leader
// (etcd), whose catalog is swapped for a mutator's when it starts leading and back after.
const catalogFor = (mutator: boolean, term?: number): NodeCatalog => startNodeCatalog({
  config: config!,
  map: () => control.keeper.map,
  fetchMap: (epoch) => control.fetchMap(epoch, 3000),
  authority: mutator ? authority : undefined,
  term,
  capacity: clusterSpace,
  log,
});
let nodeCatalog = catalogFor(!etcd && !!authority);
if (etcd) {
  // A new leader takes the catalog's next term (the etcd lease counter of volume 0) before
  // it writes a record: its writes then outrank, and fence, a deposed leader's.
  let turn = Promise.resolve();
  onLeader = (leading) => {
    turn = turn.then(async () => {
      if (leading !== etcd.isLeader() || leading === nodeCatalog.mutator) return;
      const term = leading ? await etcd.acquireLease(CATALOG_VOLUME).catch((e: Error) => {
        log.warn({ err: e.message }, 'could not take a catalog term; the catalog\'s changes stay forwarded');
        return null;
      }) : undefined;
      if (term === null) {
        setTimeout(() => onLeader(etcd.isLeader()), 1000).unref();
        return;
      }
      if (leading !== etcd.isLeader()) return;
      const old = nodeCatalog;
      nodeCatalog = catalogFor(leading, term);
      old.close();
      log.info({ mutator: leading, term }, leading ? 'this node now runs the catalog\'s changes' : 'catalog changes moved to the new membership leader');
    });
  };
  onLeader(etcd.isLeader());
}
const storedPerVolume = (): Map<number, number> => {
  const out = new Map<number, number>();
  for (const r of control.heartbeats.values()) for (const v of r.hb.volumes ?? []) out.set(v.volume, (out.get(v.volume) ?? 0) + v.storedBytes);
  return out;
};
const authorityApi = (): string | null => {
  const id = etcd ? etcd.leader() : config!.authority!.node;
  const a = id === null ? undefined : mapNode(control.keeper.map, id);
  return a?.apiPort ? `http://${a.host}:${a.apiPort}` : null;
};
// Lease grants through the API (attachments, takeovers) wait while the catalog holds a
// volume's lease for a snapshot or a job: no newer writer may write before the pin. With etcd
// the catalog's leases are held on the membership leader, so a node that does not lead asks
// it — one hop: a forwarded request is granted where it lands — and, with no leader
// reachable, grants here (etcd still keeps generations unique and increasing).
const grantLease = async (volume: number, forwarded: boolean): Promise<number> => {
  const base = etcd && !forwarded && !nodeCatalog.mutator ? authorityApi() : null;
  if (base) {
    try {
      return (await new ApiClient(base, config!.token, 15000).call<{ generation: number }>('POST', `/v1/volumes/${volume}/lease`, undefined, { 'x-cairn-forwarded': '1' })).generation;
    } catch (e) {
      log.warn({ volume, leader: base, err: (e as Error).message }, 'the membership leader did not grant the lease; granting it here');
    }
  }
  await nodeCatalog.leases?.idle(volume);
  return authority!.acquireLease(volume);
};
const api = await startManagementApi({
  host: me.host, port: me.apiPort!, token: config!.token, control, authority, grantLease: authority ? grantLease : undefined, nodeId, config: config!,
  get authorityNode() {
    return leaderNode();
  },
  recovery: () => server.recovery.report(), scrub: server.scrub, volumeIo: () => server.volumeIo(),
  // Getters: the catalog in use changes when the membership leader does (etcd).
  routes: [(app) => registerMetricsRoute(app, registry), (app) => registerVolumeRoutes(app, {
    get catalog() {
      return nodeCatalog.catalog;
    },
    get mutator() {
      return nodeCatalog.mutator;
    },
    get jobs() {
      return nodeCatalog.jobs;
    },
    get leases() {
      return nodeCatalog.leases;
    },
    mutatorUrl: authorityApi, token: config!.token, pools: () => config!.pools, storedBytes: storedPerVolume, clusterId: config!.clusterId,
  })],
})
  .catch((e: Error) => fail(`management API on ${me.host}:${me.apiPort}: ${e.message}`));
const pidFile = join(dataDir, 'run', `node${nodeId}.pid`);
mkdirSync(join(dataDir, 'run'), { recursive: true });
writeFileSync(pidFile, `${process.pid}\n`);
phases.ready = Math.round(performance.now());
log.info({ startupMs: phases, port, gossipPort: control.gossipPort, apiPort: api.port, peerId: control.peerId, epoch: control.keeper.epoch, partitions: storage.partitions.size, authority: !!authority }, 'ready');
process.stdout.write(`cairn-node ${nodeId} ready on ${me.host}:${port}\n`);
process.send?.({ type: 'ready', node: nodeId, port, gossipPort: control.gossipPort, apiPort: api.port, epoch: control.keeper.epoch });
// Peer before serving reads: ask every up node what this node missed while it was away.
server.onMap();

/** Longest a graceful stop waits for the map to mark this node down (ms; capped at downAfterMs). */
const LEAVE_TIMEOUT_MS = 3000;
let stopping = false;
/** Stops the node; with `leave`, has the map mark it down first (see the module comment). */
async function stop(reason: string, leave: boolean): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ reason }, 'stopping');
  try {
    if (leave && control.keeper.map.nodes.some((n) => n.id === nodeId && n.up)) {
      const t0 = Date.now();
      const wait = Math.min(LEAVE_TIMEOUT_MS, membershipOf(config!).downAfterMs);
      if (await control.leave(wait)) log.info({ ms: Date.now() - t0, epoch: control.keeper.epoch }, 'marked down in the map before stopping');
      else log.warn({ ms: wait }, 'the map did not mark this node down in time; stopping anyway (it is marked down once its heartbeats are missed)');
    }
    await server.close();
    await api.app.close();
    nodeCatalog.close();
    await authority?.close();
    await control.stop();
    await missed.close();
    await storage.close();
    const done = server.recovery.peeringState;
    if (done !== null && done.fullPeeredAt > 0) await savePeering({ ...done, clean: true });
    rmSync(pidFile, { force: true });
    log.info('stopped');
    log.flush();
    process.exit(0);
  } catch (e) {
    fail(`shutdown: ${(e as Error).message}`);
  }
}
process.on('SIGTERM', () => void stop('SIGTERM', true));
process.on('SIGINT', () => void stop('SIGINT', true));
process.on('message', (m: { type?: string } | null) => {
  if (m?.type === 'stop') void stop('the local cluster is stopping', false);
});
onParentGone = () => void stop('parent went away', false);
if (process.send && !process.connected) onParentGone();
