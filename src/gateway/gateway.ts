/**
 * A gateway: one NVMe/TCP target serving one volume — a volume of a running local cluster
 * (taking its write lease on first I/O) or a local file — on one or more ports, with its ANA
 * state, the other gateways' paths for discovery, and a host allow-list. The process entry
 * (main.ts) and `cairn export nvmf` are thin faces over `startGateway`.
 */
import { basename } from 'node:path';
import { FileBlockDevice, FileLease } from '../volume/index.ts';
import { NvmfTarget, type AnaState, type NamespaceConfig, type PathConfig, type PortInfo, type VolumeLease } from '../nvmf/index.ts';
import { ClusterLeasedVolume } from './cluster-volume.ts';
import type { VolumeIoMetrics } from '../metrics/index.ts';
import type { Logger } from 'pino';

/** What a gateway serves. */
export type GatewaySource =
  | { kind: 'cluster'; dataDir: string; volume: string }
  | { kind: 'file'; path: string; size?: number; leaseFile?: string; holder?: string };

/** Gateway options. */
export interface GatewayOptions {
  source: GatewaySource;
  /** Addresses to listen on; port ids count up from `portId`. */
  listen: { host: string; port: number }[];
  /** First port id (default 1). */
  portId?: number;
  /** TRADDR advertised for the local ports (default: the listen host). */
  advertise?: string;
  /** Other gateways' paths of this subsystem (discovery log). */
  remotePaths?: PathConfig[];
  /** Subsystem NQN (default: the cluster volume's NQN, or one derived from the file name). */
  nqn?: string;
  /** Allowed host NQNs (default 'any'). */
  allowHosts?: string[] | 'any';
  /** Initial ANA state of the local ports (default optimized). */
  ana?: AnaState;
  /** Controller id range; disjoint across the gateways of one subsystem. Default: defaultCntlidRange(portId). */
  cntlidRange?: [number, number];
  /** pino logger of the target (connections, controllers, leases, failed commands); default silent. */
  log?: Logger;
  /** One-line warnings, e.g. a flush that failed at stop (default: a line on stderr). */
  warn?: (msg: string) => void;
  /** Per-volume request figures (src/metrics): the namespace's device is metered as frontend `nvmf`. */
  metrics?: VolumeIoMetrics;
}

/** A running gateway. */
export interface Gateway {
  readonly target: NvmfTarget;
  readonly nqn: string;
  readonly ports: PortInfo[];
  /** Changes the ANA state of the local ports (all, or `portId`), announcing it to hosts. */
  setAna(state: AnaState, portId?: number): void;
  /**
   * Stops serving, flushes (a cluster volume only if this gateway took its write lease: one
   * that never did has nothing to flush) and closes the volume. A failed flush is reported
   * through `warn` and does not stop the close.
   */
  stop(): Promise<void>;
}

/**
 * Starts a gateway.
 * @throws Error when the source cannot be opened or a port cannot be bound (nothing is left running).
 */
export async function startGateway(o: GatewayOptions): Promise<Gateway> {
  const firstPort = o.portId ?? 1;
  let ns: NamespaceConfig;
  let nqn: string;
  let flushSource: () => Promise<void>;
  let closeSource: () => Promise<void>;
  if (o.source.kind === 'cluster') {
    const cv = await ClusterLeasedVolume.open(o.source.dataDir, o.source.volume);
    ns = { nsid: 1, device: o.metrics ? o.metrics.meter(cv, o.source.volume, 'nvmf') : cv, lease: cv.lease, health: () => cv.health(), usage: () => cv.allocatedBytes() };
    nqn = o.nqn ?? cv.nqn;
    // Without the write lease this gateway wrote nothing (and may not flush: it would be fenced).
    flushSource = async () => (cv.generation > 0 ? cv.flush() : undefined);
    closeSource = async () => cv.close();
  } else {
    const src = o.source;
    const lease = src.leaseFile ? new FileLease(src.leaseFile, src.holder ?? `gw${firstPort}`) : undefined;
    const fd = await FileBlockDevice.open(src.path, { size: src.size, lease });
    let taken = false;
    const nsLease: VolumeLease | undefined = lease && {
      acquire: async () => {
        const gen = await lease.acquire();
        taken = true;
        return gen;
      },
    };
    ns = { nsid: 1, device: o.metrics ? o.metrics.meter(fd, basename(src.path), 'nvmf') : fd, lease: nsLease, usage: () => fd.allocatedBytes() };
    nqn = o.nqn ?? `nqn.2024-01.io.cairn:local:${basename(src.path).replace(/[^A-Za-z0-9.-]/g, '-')}`;
    // A leased file whose lease this gateway never took holds no writes of ours (and would refuse the flush).
    flushSource = async () => (lease && !taken ? undefined : fd.flush());
    closeSource = async () => {
      await fd.close();
      await lease?.close();
    };
  }
  const target = new NvmfTarget({ log: o.log, cntlidRange: o.cntlidRange ?? defaultCntlidRange(firstPort) });
  const ports: PortInfo[] = [];
  try {
    target.addSubsystem({ nqn, allowHosts: o.allowHosts ?? 'any', namespaces: [ns], remotePaths: o.remotePaths, anaState: o.ana ?? 'optimized' });
    for (const [i, l] of o.listen.entries()) ports.push(await target.listen({ portId: firstPort + i, host: l.host, port: l.port, traddr: o.advertise }));
  } catch (e) {
    await target.close();
    await closeSource();
    throw e;
  }
  const warn = o.warn ?? ((m: string) => void process.stderr.write(`nvmf gateway: warning: ${m}\n`));
  return {
    target,
    nqn,
    ports,
    setAna: (state, portId) => target.setAnaState(nqn, state, { portId }),
    stop: async () => {
      await target.close();
      try {
        await flushSource();
      } catch (e) {
        warn(`flush at stop failed (${nqn}): ${(e as Error).message.replace(/\s+/g, ' ').trim()}`);
      }
      await closeSource();
    },
  };
}

/**
 * The controller ids a gateway whose first port id is `portId` hands out by default:
 * [portId × 1000, portId × 1000 + 999], so gateways with distinct port ids never collide
 * (hosts refuse two controllers with one id in a subsystem). `cairn up`'s own paths use 1–999.
 */
export function defaultCntlidRange(portId: number): [number, number] {
  const lo = Math.min(portId, 65) * 1000;
  return [lo, Math.min(lo + 999, 0xffef)];
}

/** Parses "HOST:PORT" (IPv6 in brackets). @throws Error on anything else. */
export function parseHostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  const port = Number(s.slice(i + 1));
  if (i < 1 || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`expected HOST:PORT, got ${s}`);
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port };
}

/** Parses "PORTID@HOST:PORT" into a path of another gateway. @throws Error on anything else. */
export function parseRemotePath(s: string): PathConfig {
  const at = s.indexOf('@');
  const portId = Number(s.slice(0, at));
  if (at < 1 || !Number.isInteger(portId) || portId < 1 || portId > 0xffff) throw new Error(`expected PORTID@HOST:PORT, got ${s}`);
  const hp = parseHostPort(s.slice(at + 1));
  return { portId, traddr: hp.host, trsvcid: hp.port };
}
