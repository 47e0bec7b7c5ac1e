import { Command, Flags } from '@oclif/core';
import { join, resolve } from 'node:path';
import { ANA_STATES, type AnaState } from '../../../src/nvmf/index.ts';
import { parseHostPort, parseRemotePath, startGateway, type Gateway } from '../../../src/gateway/index.ts';
import { pollFromEnv } from '../../../src/net/index.ts';
import { createRegistry, startMetricsServer, VolumeIoMetrics, type MetricsServer } from '../../../src/metrics/index.ts';
import { loadConfig } from '../../../src/config/index.ts';
import { fileLogger, logLevel, type FileLog } from '../../../src/logging/index.ts';

/**
 * `cairn export nvmf`: runs an NVMe/TCP gateway for a volume of the local cluster in a data
 * directory (started by `cairn up`), in the foreground until Ctrl-C. Several gateways of one
 * volume (different ports or machines) form ANA paths: the one given `--ana optimized` is
 * preferred by hosts; any gateway that receives I/O takes the volume's write lease. Ctrl-C
 * (SIGINT) or SIGTERM stops it: it flushes if it took the lease (a failed flush is a one-line
 * warning) and exits 0.
 */
export default class ExportNvmf extends Command {
  static override summary = 'Serve a volume of the local cluster over NVMe/TCP (a gateway, until Ctrl-C).';
  static override description =
    'Opens the cluster in the data directory (its nodes must be running, e.g. under `cairn up`) and exports the volume as an ' +
    'NVMe/TCP subsystem (NQN nqn.2024-01.io.cairn:<cluster>:<volume>). Run one per path: give each gateway its own --port-id ' +
    'and controller id range, the other paths with --remote (for discovery), and --ana non-optimized on all but one.';
  static override examples = [
    '<%= config.bin %> export nvmf --listen 127.0.0.1:4430',
    '<%= config.bin %> export nvmf --listen 0.0.0.0:4431 --advertise 192.0.2.10 --port-id 5 --ana non-optimized --remote 4@192.0.2.9:4430',
  ];
  static override flags = {
    'data-dir': Flags.string({ summary: 'Data directory of the running local cluster.', default: '.cairn', env: 'CAIRN_DATA_DIR' }),
    volume: Flags.string({ summary: 'Volume to export.', default: 'vol0' }),
    listen: Flags.string({ summary: 'HOST:PORT to listen on (repeatable; port ids count up from --port-id).', multiple: true, default: ['127.0.0.1:4430'] }),
    'port-id': Flags.integer({ summary: 'Port id of the first listen address, unique among the volume\'s paths (cairn up uses 1-3).', default: 4, min: 1, max: 65 }),
    advertise: Flags.string({ summary: 'Address hosts should use for this gateway (discovery log); default: the listen host.' }),
    remote: Flags.string({ summary: 'Another gateway\'s path of this volume, PORTID@HOST:PORT (repeatable; listed by discovery).', multiple: true }),
    'allow-host': Flags.string({ summary: 'Host NQN allowed to connect (repeatable; default: any host).', multiple: true }),
    ana: Flags.string({ summary: 'ANA state this gateway starts with.', options: ANA_STATES, default: 'optimized' }),
    'cntlid-min': Flags.integer({ summary: 'Lowest controller id; ranges must not overlap across the volume\'s gateways (default: port id × 1000).', min: 1, max: 0xffef }),
    'cntlid-max': Flags.integer({ summary: 'Highest controller id (default: lowest + 999).', min: 1, max: 0xffef }),
    metrics: Flags.boolean({ summary: 'Serve Prometheus metrics of this gateway at /metrics, behind the cluster token.', default: true, allowNo: true }),
    'metrics-port': Flags.integer({ summary: 'TCP port of /metrics on the first listen host (0 picks a free one; printed at start).', default: 0, min: 0, max: 65535 }),
    verbose: Flags.boolean({ summary: 'Print connections, controllers and lease changes (info and up) to stderr, not only warnings.', default: false }),
    'log-level': Flags.string({ summary: 'Level of the JSON log DATA-DIR/logs/nvmf-gateway-<port-id>.log.', env: 'CAIRN_LOG_LEVEL', options: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(ExportNvmf);
    try {
      pollFromEnv();
    } catch (e) {
      this.error((e as Error).message, { exit: 2 });
    }
    const dataDir = resolve(flags['data-dir']);
    const registry = flags.metrics ? createRegistry() : null;
    // JSON log in DATA-DIR/logs; warnings (with --verbose, everything from info up) printed readable.
    let logFile: FileLog;
    try {
      logFile = fileLogger(join(dataDir, 'logs', `nvmf-gateway-${flags['port-id']}.log`), {
        base: { gateway: process.pid }, level: logLevel(flags['log-level']),
        summary: (line) => this.logToStderr(line), summaryLevel: flags.verbose ? 'info' : 'warn',
      });
    } catch (e) {
      this.error((e as Error).message, { exit: 2 });
    }
    let gw: Gateway | undefined;
    let metricsServer: MetricsServer | null = null;
    try {
      gw = await startGateway({
        source: { kind: 'cluster', dataDir, volume: flags.volume },
        metrics: registry ? new VolumeIoMetrics(registry) : undefined,
        listen: flags.listen.map(parseHostPort),
        portId: flags['port-id'],
        advertise: flags.advertise,
        remotePaths: (flags.remote ?? []).map(parseRemotePath),
        allowHosts: flags['allow-host']?.length ? flags['allow-host'] : 'any',
        ana: flags.ana as AnaState,
        cntlidRange: flags['cntlid-min'] ? [flags['cntlid-min'], flags['cntlid-max'] ?? Math.min(flags['cntlid-min'] + 999, 0xffef)] : undefined,
        log: logFile.log.child({ subsystem: 'nvmf' }),
        warn: (m) => this.logToStderr(`cairn export nvmf: warning: ${m}`),
      });
      if (registry) {
        const token = (await loadConfig(dataDir))?.token;
        if (!token) throw new Error(`no cluster.json in ${dataDir}`);
        metricsServer = await startMetricsServer({ host: parseHostPort(flags.listen[0]).host, port: flags['metrics-port'], token, registry })
          .catch(async (e: Error) => {
            await gw?.stop();
            throw new Error(`cannot listen for metrics on port ${flags['metrics-port']}: ${e.message}`);
          });
      }
    } catch (e) {
      this.error((e as Error).message, { exit: 1 });
    }
    // SIGINT or SIGTERM stops cleanly (exit 0); a second one while stopping ends the process at
    // once. The handlers are in place before the ready lines, so a signal sent on seeing them stops cleanly.
    const stopped = new Promise<string | undefined>((done) => {
      const stop = (): void => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        Promise.all([gw.stop(), metricsServer?.close()]).then(() => done(undefined), (e: Error) => done(e.message));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    this.log(`NVMe/TCP export: ${gw.nqn} (ANA ${flags.ana}; the write lease is taken on the first I/O)`);
    for (const p of gw.ports) this.log(`  NVMe/TCP path ${p.portId}: ${p.traddr}:${p.trsvcid}`);
    const [p0] = gw.ports;
    this.log(`  nvme connect -t tcp -a ${p0.traddr} -s ${p0.trsvcid} -n ${gw.nqn}`);
    if (metricsServer) this.log(`Metrics (Prometheus, bearer token): http://${parseHostPort(flags.listen[0]).host}:${metricsServer.port}/metrics`);
    this.log('Press Ctrl-C to stop.');
    const failed = await stopped;
    logFile.close();
    if (failed !== undefined) this.error(`stopping the gateway: ${failed.replace(/\s+/g, ' ').trim()}`, { exit: 1 });
  }
}
