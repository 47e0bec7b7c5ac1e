import { Command, Flags } from '@oclif/core';
import { resolve } from 'node:path';
import { DEFAULT_LAYOUT } from '../../src/cluster/layout.ts';
import type { LocalCluster } from '../../src/cluster/index.ts';
import type { PortInfo } from '../../src/nvmf/index.ts';
import { formatSize, sizeFlag } from '../lib/size.ts';

/**
 * `cairn up`: starts a local cluster (storage nodes as child processes, file-backed
 * devices in a data directory), attaches `--volume` (creating it in the catalog when
 * missing) and serves every volume of the catalog over NBD (by name; snapshots read-only as
 * VOL@SNAP) and NVMe/TCP (one subsystem per volume on three ANA paths: one optimized, two
 * non-optimized), follows creates, deletes and resizes, prints how to connect, and runs until
 * Ctrl-C, when it drains I/O, flushes and stops every node. Meanwhile a storage node process
 * that exits is restarted with backoff, one printed line per restart, and a node added to the
 * map with `cairn node add` (its device files under this data directory) is started and
 * supervised like the others; a restart starts it too.
 */
export default class Up extends Command {
  static override summary = 'Start a local Cairn cluster and serve its volumes over NBD and NVMe/TCP.';
  static override description =
    'Starts storage nodes as child processes with file-backed (sparse) devices under the data directory, ' +
    'creates or reopens the volume, and serves it over NBD until interrupted. Running it again on the same ' +
    'data directory serves the same data; layout flags only apply when the directory is new. ' +
    'Sizes take binary units: 4GiB, 512M, 1G (or plain bytes).';
  static override examples = [
    '<%= config.bin %> up',
    '<%= config.bin %> up --data-dir /var/tmp/cairn --nodes 4 --device-size 8GiB --volume-size 10GiB',
    '<%= config.bin %> up --nbd-port 10810 --replicas 2',
    '<%= config.bin %> up --etcd --nodes 5      # map authority in a local 3-member etcd: any node may die, the leader included',
  ];
  static override flags = {
    'data-dir': Flags.string({ summary: 'Directory holding cluster.json, device files and logs.', default: '.cairn', env: 'CAIRN_DATA_DIR' }),
    nodes: Flags.integer({ summary: 'Storage nodes to create (new data directory only).', default: DEFAULT_LAYOUT.nodes, min: 1, max: 64 }),
    devices: Flags.integer({ summary: 'Devices (files) per node (new data directory only).', default: DEFAULT_LAYOUT.devicesPerNode, min: 1, max: 64 }),
    'device-size': sizeFlag({ summary: 'Size of each device file, sparse (new data directory only).', default: DEFAULT_LAYOUT.deviceBytes, defaultHelp: async () => formatSize(DEFAULT_LAYOUT.deviceBytes) }),
    partitions: Flags.integer({ summary: 'Partitions per device: units of placement and allocation (new data directory only).', default: DEFAULT_LAYOUT.partitionsPerDevice, min: 1, max: 256 }),
    replicas: Flags.integer({ summary: 'Copies of every extent, each on a different node (new data directory only).', default: DEFAULT_LAYOUT.replicas, min: 1, max: 16 }),
    'min-size': Flags.integer({ summary: 'Fewest acting copies that acknowledge a write; below it I/O waits (new data directory only; default: replicas − ⌊replicas/2⌋, e.g. 2 of 3).', min: 1, max: 16 }),
    'io-timeout': Flags.integer({ summary: 'Milliseconds I/O waits for enough members (below min_size, or a member neither answering nor marked down) before it fails with EIO.', default: 30000, min: 100, max: 3600000 }),
    volume: Flags.string({ summary: 'Volume to attach at start (created, thin, when the catalog lacks it). Every volume of the catalog is served.', default: DEFAULT_LAYOUT.volumeName }),
    'volume-size': sizeFlag({ summary: 'Size of the --volume when it is created (a new data directory, or a name the catalog lacks).', default: DEFAULT_LAYOUT.volumeBytes, defaultHelp: async () => formatSize(DEFAULT_LAYOUT.volumeBytes) }),
    host: Flags.string({ summary: 'Address the NBD server and the nodes listen on.', default: '127.0.0.1' }),
    'nbd-port': Flags.integer({ summary: 'TCP port of the NBD server (0 picks a free one).', default: 10809, min: 0, max: 65535 }),
    'nvmf-port': Flags.integer({ summary: 'TCP port of the first NVMe/TCP path; the others follow it (0 picks free ports).', default: 4420, min: 0, max: 65535 }),
    'nvmf-paths': Flags.integer({ summary: 'NVMe/TCP paths (ports) to export the volume on; the first is ANA-optimized. 0 disables NVMe/TCP.', default: 3, min: 0, max: 8 }),
    'nvmf-allow-host': Flags.string({ summary: 'Host NQN allowed to connect over NVMe/TCP (repeatable; default: any host).', multiple: true }),
    etcd: Flags.boolean({
      summary: 'Keep the map authority in a 3-member etcd cluster started here (Debian etcd-server; state under DATA-DIR/etcd) rather than inside node 0, so the cluster survives the loss of any node (new data directory; later runs start that etcd again by themselves). To use an existing etcd, see `cairn authority migrate`.',
      default: false,
    }),
    metrics: Flags.boolean({ summary: 'Serve Prometheus metrics of this gateway (per-volume requests, bytes, latency) at /metrics, behind the cluster token; every node\'s API serves its own. --no-metrics turns the gateway\'s off and the nodes\' data-path counters (their /metrics keeps the figures read at scrape time).', default: true, allowNo: true }),
    'metrics-port': Flags.integer({ summary: 'TCP port of the gateway\'s /metrics (0 picks a free one; printed at start).', default: 0, min: 0, max: 65535 }),
    'log-level': Flags.string({ summary: 'Level of the JSON logs in DATA-DIR/logs (this process: initiator.log; nodes: node<ID>.log): fatal, error, warn, info, debug, trace or silent. Warnings and errors are also printed here, readable.', env: 'CAIRN_LOG_LEVEL', options: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] }),
    'base-port': Flags.integer({ summary: 'First TCP port of the storage nodes (0 picks free ports; new data directory only).', default: 0, min: 0, max: 65535 }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Up);
    // Loaded here, not at the top: every other command shares this module table.
    const { LocalCluster, startLocalEtcdFor } = await import('../../src/cluster/index.ts');
    const { logLevel } = await import('../../src/logging/index.ts');
    const { NbdServer } = await import('../../src/nbd/index.ts');
    const { NvmfTarget, volumeNqn } = await import('../../src/nvmf/index.ts');
    const { NvmfVolumes, nbdExports } = await import('../../src/gateway/index.ts');
    const { createRegistry, mirroredGauge, startMetricsServer, VolumeIoMetrics } = await import('../../src/metrics/index.ts');
    const { pollFromEnv } = await import('../../src/net/index.ts');
    try {
      pollFromEnv();
    } catch (e) {
      this.error((e as Error).message, { exit: 2 });
    }
    const dataDir = resolve(flags['data-dir']);
    // The node processes (children) count data-path requests unless told not to.
    if (!flags.metrics) process.env.CAIRN_NO_METRICS = '1';
    // One level for this process and the nodes (their JSON logs are in DATA-DIR/logs).
    try {
      process.env.CAIRN_LOG_LEVEL = logLevel(flags['log-level']);
    } catch (e) {
      this.error((e as Error).message, { exit: 2 });
    }
    this.log(`Starting Cairn in ${dataDir} ...`);
    let cluster: LocalCluster;
    let etcd: Awaited<ReturnType<typeof startLocalEtcdFor>> = null;
    try {
      etcd = await startLocalEtcdFor(dataDir, flags.etcd, (line) => this.log(`  ${line}`));
    } catch (e) {
      this.error((e as Error).message.split('\n')[0], { exit: 1 });
    }
    try {
      cluster = await LocalCluster.start({
        ...(etcd ? { etcd: { endpoints: etcd.endpoints } } : {}),
        dataDir,
        layout: {
          nodes: flags.nodes,
          devicesPerNode: flags.devices,
          deviceBytes: flags['device-size'],
          partitionsPerDevice: flags.partitions,
          replicas: flags.replicas,
          minSize: flags['min-size'],
          volumeName: flags.volume,
          volumeBytes: flags['volume-size'],
          host: flags.host,
          basePort: flags['base-port'],
        },
        onProgress: (line) => this.log(`  ${line}`),
        // A node process that dies is started again (with backoff) while `cairn up` runs.
        supervise: true,
        onSupervisor: (line) => this.log(`  ${line}`),
        // Warnings and errors of this process, readable; everything as JSON in logs/initiator.log.
        logSummary: (line) => this.logToStderr(`  ${line}`),
      });
    } catch (e) {
      await etcd?.stop();
      this.error((e as Error).message, { exit: 1 });
    }
    const c = cluster.config;
    // The map's node list: it includes nodes added since the cluster was created.
    const mapNodes = cluster.view.map.nodes;
    const devices = mapNodes.reduce((s, n) => s + n.devices.length, 0);
    const raw = mapNodes.reduce((s, n) => s + n.devices.reduce((t, d) => t + d.sizeBytes, 0), 0);
    this.log(`${cluster.created ? 'Created' : 'Reopened'} cluster ${c.clusterId}: ${mapNodes.length} nodes, ${devices} devices, ${formatSize(raw)} raw, map epoch ${cluster.view.epoch} (authority: ${c.authority?.kind === 'etcd' ? `etcd ${c.authority.etcd!.endpoints.join(',')} prefix ${c.authority.etcd!.prefix}` : `node ${c.authority?.node}`})`);
    for (const pool of c.pools) {
      if (pool.replicas > 1 && pool.minSize >= pool.replicas) {
        this.warn(`pool ${pool.name} has min_size ${pool.minSize} = size ${pool.replicas}: I/O stops while any member is down (data directories made before degraded I/O used this; set "minSize" in ${dataDir}/cluster.json to ${pool.replicas - Math.floor(pool.replicas / 2)} to keep I/O going)`);
      }
    }
    // Per-volume figures of both frontends, and the map as this gateway holds it.
    const registry = flags.metrics ? createRegistry() : null;
    const volumeMetrics = registry ? new VolumeIoMetrics(registry) : undefined;
    if (registry) mirroredGauge(registry, 'cairn_map_epoch', 'Epoch of the cluster map this process holds.', [], () => [{ labels: {}, value: cluster.view.epoch }]);
    const nvmf = new NvmfTarget({ cntlidRange: [1, 999], log: cluster.logger.child({ subsystem: 'nvmf' }) });
    const anaStates = Object.fromEntries(Array.from({ length: flags['nvmf-paths'] }, (_, i) => [i + 1, i === 0 ? 'optimized' : 'non-optimized'] as const));
    let nvmfVolumes: InstanceType<typeof NvmfVolumes> | null = null;
    const set = cluster.volumeSet({
      ioTimeoutMs: flags['io-timeout'],
      onResize: (name, bytes) => {
        nvmfVolumes?.resized(name, bytes);
        this.log(`  volume ${name} resized to ${formatSize(bytes)}`);
      },
      onList: (vols) => nvmfVolumes?.sync(vols),
    });
    const fail = async (msg: string): Promise<never> => {
      await set.close().catch(() => undefined);
      await cluster.stop();
      await etcd?.stop();
      this.error(msg, { exit: 1 });
    };
    // The volume to attach now: LocalCluster.start created a new data directory's volume in
    // the catalog and listed the catalog's volumes in c.volumes (in memory); a name the
    // catalog lacks is created (thin, --volume-size, the layout's extent size).
    const known = c.volumes.some((v) => v.name === flags.volume)
      || (await set.api.call('GET', `/v1/volumes/${encodeURIComponent(flags.volume)}`).then(() => true, () => false));
    let attached: Awaited<ReturnType<typeof set.open>>;
    try {
      if (!known) {
        const v = await set.api.call<{ name: string; sizeBytes: number }>('POST', '/v1/volumes', { name: flags.volume, size: flags['volume-size'], extentBytes: DEFAULT_LAYOUT.extentBytes });
        this.log(`  volume ${v.name} (${formatSize(v.sizeBytes)}) is in the catalog`);
      }
      const deadline = Date.now() + 60000;
      for (;;) {
        attached = await set.open(flags.volume).catch((e: Error) => {
          if (Date.now() > deadline) throw e;
          return undefined;
        });
        if (attached) break;
        if (Date.now() > deadline) throw new Error(`volume '${flags.volume}' did not appear in the catalog within 60 s`);
        await new Promise((r) => setTimeout(r, 250));
      }
    } catch (e) {
      return fail(`cannot attach volume '${flags.volume}': ${(e as Error).message}`);
    }
    const vols = await set.list().catch(() => [attached.record]);
    const pool = c.pools.find((p) => p.id === attached.record.pool) ?? c.pools[0];
    const nbd = new NbdServer({
      log: cluster.logger.child({ subsystem: 'nbd' }),
      exports: nbdExports(set, (v) => `Cairn volume ${v.name} (${c.pools.find((p) => p.id === v.pool)?.replicas ?? '?'} replicas)`, flags.volume, volumeMetrics),
    });
    let port: number;
    try {
      port = await nbd.listen(flags['nbd-port'], flags.host);
    } catch (e) {
      return fail(`cannot listen for NBD on ${flags.host}:${flags['nbd-port']}: ${(e as Error).message}`);
    }
    const paths: PortInfo[] = [];
    if (flags['nvmf-paths'] > 0) {
      nvmfVolumes = new NvmfVolumes({
        target: nvmf, set, clusterId: c.clusterId, token: c.token, map: () => cluster.view.map, pools: c.pools,
        allowHosts: flags['nvmf-allow-host']?.length ? flags['nvmf-allow-host'] : 'any', anaStates, metrics: volumeMetrics,
      });
      nvmfVolumes.sync(vols);
      try {
        for (let i = 0; i < flags['nvmf-paths']; i++) {
          const p = flags['nvmf-port'] === 0 ? 0 : flags['nvmf-port'] + i;
          paths.push(await nvmf.listen({ portId: i + 1, host: flags.host, port: p }));
        }
      } catch (e) {
        await nbd.close();
        await nvmf.close();
        return fail(`cannot listen for NVMe/TCP on ${flags.host}: ${(e as Error).message}`);
      }
    }
    let metricsServer: Awaited<ReturnType<typeof startMetricsServer>> | null = null;
    if (registry) {
      try {
        metricsServer = await startMetricsServer({ host: flags.host, port: flags['metrics-port'], token: c.token, registry });
      } catch (e) {
        await nbd.close();
        await nvmf.close();
        return fail(`cannot listen for metrics on ${flags.host}:${flags['metrics-port']}: ${(e as Error).message}`);
      }
    }
    set.startRefresh();
    const record = attached.record;
    const nqn = volumeNqn(c.clusterId, record.name);
    const uri = `nbd://${flags.host}:${port}/${record.name}`;
    this.log(`Volume ${record.name}: ${formatSize(record.sizeBytes)}, ${record.thin ? 'thin' : 'thick'}, ${pool.replicas} replicas (min_size ${pool.minSize}), write lease generation ${attached.volume?.leaseGeneration ?? 0}`);
    if (vols.length > 1) this.log(`Serving ${vols.length} volumes: ${vols.map((v) => v.name).join(', ')} (nbd://${flags.host}:${port}/NAME; snapshots read-only as NAME@SNAP)`);
    this.log('');
    if (paths.length) {
      this.log(`NVMe/TCP export: ${nqn}${vols.length > 1 ? ' (one subsystem per volume: …:<volume>)' : ''}`);
      for (const p of paths) this.log(`  NVMe/TCP path ${p.portId}: ${p.traddr}:${p.trsvcid} (ANA ${p.portId === 1 ? 'optimized' : 'non-optimized'})`);
    }
    this.log(`NBD export: ${uri}`);
    this.log('');
    this.log('Try it:');
    this.log(`  nbdinfo ${uri}`);
    this.log(`  fio --name=try --ioengine=nbd --uri=${uri} --rw=randwrite --bs=4k --iodepth=32 --size=256m --verify=crc32c`);
    this.log(`  qemu-img convert -n -f raw -O raw disk.img ${uri}`);
    this.log(`  nbdcopy disk.img ${uri}     # and back: nbdcopy ${uri} copy.img`);
    if (paths.length) {
      const [p0] = paths;
      this.log(`  nvme discover -t tcp -a ${p0.traddr} -s ${p0.trsvcid}`);
      this.log(`  nvme connect -t tcp -a ${p0.traddr} -s ${p0.trsvcid} -n ${nqn}`);
      this.log(`  nvme connect-all -t tcp -a ${p0.traddr} -s ${p0.trsvcid}     # every path, ANA multipath`);
    }
    this.log(`  cairn volume create db1 --size 10GiB --data-dir ${flags['data-dir']}     # served at once as nbd://${flags.host}:${port}/db1`);
    this.log(`  cairn snapshot create ${record.name} snap1 --data-dir ${flags['data-dir']}`);
    this.log('');
    const n0 = c.nodes[0];
    this.log(`Management API: http://${n0.host}:${n0.apiPort} (every node serves one; token in cluster.json; OpenAPI at /openapi.json). Cluster map and nodes:`);
    this.log(`  cairn map show --data-dir ${flags['data-dir']}     cairn node list --data-dir ${flags['data-dir']}     cairn volume list --data-dir ${flags['data-dir']}`);
    if (metricsServer) this.log(`Metrics (Prometheus, bearer token): gateway http://${flags.host}:${metricsServer.port}/metrics; each node's API at /metrics`);
    this.log(`Add a storage node: cairn node add --data-dir ${flags['data-dir']}`);
    this.log('');
    this.log('Press Ctrl-C to stop.');

    await new Promise<void>((resolveStop) => {
      let stopping = false;
      const stop = (sig: string): void => {
        if (stopping) {
          this.log(`${sig} again: exiting now`);
          process.exit(130);
        }
        stopping = true;
        this.log(`\n${sig}: stopping — draining NBD clients, flushing volumes, stopping nodes ...`);
        void (async () => {
          await nbd.close();
          await nvmf.close();
          await metricsServer?.close();
          await set.close().catch((e: Error) => this.warn(`final flush failed: ${e.message}`));
          await cluster.stop();
          await etcd?.stop();
          this.log('Stopped.');
          resolveStop();
        })();
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
    });
  }
}
