/**
 * The export registry's records: an NVM subsystem (one per volume) with its namespaces, host
 * allow-list, paths and ANA groups. NVMe-oF 1.1 §1.5 (subsystem, namespace, controller),
 * §5 (discovery), NVMe Base 2.0 §8.1 (ANA).
 */
import type { BlockDevice } from '../volume/index.ts';
import { ANA_GROUP_MAX, AnaGroups, type AnaState } from './ana.ts';
import { deriveNguid, deriveSerial, deriveUuid, isValidNqn, DISCOVERY_NQN } from './ids.ts';

/** Logical block size the target exposes, bytes (the allocator's page). */
export const LBA_SIZE = 4096;
/** Highest namespace id a subsystem may use (reported as NN and MNAN). */
export const MAX_NAMESPACES = 128;

/**
 * The write lease of a volume as a gateway sees it (DESIGN promise 5). The gateway calls
 * `acquire()` before the first I/O it serves for the volume, and again after the device
 * reported EFENCED (another gateway took the lease); acquiring fences the previous holder.
 */
export interface VolumeLease {
  /** Takes the lease for this gateway. Rejects if the lease cannot be taken now. */
  acquire(): Promise<unknown>;
}

/** One namespace of a subsystem. */
export interface NamespaceConfig {
  /** Namespace id, 1..MAX_NAMESPACES. */
  nsid: number;
  /** The volume. Its size must be a multiple of LBA_SIZE. */
  device: BlockDevice;
  /** ANA group (1..ANA_GROUP_MAX); default: the nsid. */
  anaGroupId?: number;
  /** 16-byte NGUID; default derived from the subsystem NQN and nsid. */
  nguid?: Buffer;
  /** 16-byte UUID; default derived from the subsystem NQN and nsid. */
  uuid?: Buffer;
  /** Write-lease hook; without it the gateway never takes over ANA state on I/O. */
  lease?: VolumeLease;
  /** Bytes in use (allocated) for NUSE; default: the whole size. */
  usage?: () => Promise<number>;
  /**
   * Volume-wide figures for the SMART / Health log (e.g. from the cluster: bytes read and
   * written through every gateway, the pool's free share). Missing figures fall back to this
   * gateway's own counters.
   */
  health?: () => Promise<VolumeHealth>;
}

/** Figures a volume may report for the SMART / Health log. */
export interface VolumeHealth {
  bytesRead?: number;
  bytesWritten?: number;
  readCommands?: number;
  writeCommands?: number;
  mediaErrors?: number;
  /** Free share of the backing pool, 0..1. */
  poolFreeFraction?: number;
}

/** A path (port) of a subsystem, as listed in the discovery log page. */
export interface PathConfig {
  /** Port id (PORTID), unique among the subsystem's paths. */
  portId: number;
  /** Transport address (IPv4 or IPv6 literal, or host name). */
  traddr: string;
  /** Transport service id: the TCP port. */
  trsvcid: number;
}

/** How a subsystem (volume export) is configured on a target (gateway). */
export interface SubsystemConfig {
  /** The subsystem NQN. */
  nqn: string;
  /** Host NQNs allowed to connect, or 'any'. Default: 'any'. */
  allowHosts?: string[] | 'any';
  /**
   * Asked when a host not on the allow-list sends Connect, before it is refused: the current
   * list (e.g. read from the catalog, where another client may just have added the host), or
   * undefined to keep the one held. At most one question is in flight per subsystem.
   */
  recheckHosts?: () => Promise<string[] | 'any' | undefined>;
  namespaces: NamespaceConfig[];
  /** Serial number (same on every gateway); default derived from the NQN. */
  serial?: string;
  /** Model number. Default "Cairn volume". */
  model?: string;
  /** Local port ids exporting this subsystem; default: every port of the target. */
  ports?: number[];
  /** Paths on other gateways, listed in the discovery log page next to the local ports. */
  remotePaths?: PathConfig[];
  /** Initial ANA state of the subsystem's groups on this target's ports (default 'optimized'). */
  anaState?: AnaState;
  /** Per-port initial ANA states, overriding anaState. */
  anaStates?: Record<number, AnaState>;
}

/** I/O counters of a namespace on this gateway (for the SMART / Health log). */
export interface NamespaceCounters {
  bytesRead: number;
  bytesWritten: number;
  readCommands: number;
  writeCommands: number;
  mediaErrors: number;
}

/** A namespace at run time. */
export class Namespace {
  readonly nsid: number;
  readonly device: BlockDevice;
  readonly anaGroupId: number;
  readonly nguid: Buffer;
  readonly uuid: Buffer;
  readonly lease?: VolumeLease;
  readonly usage?: () => Promise<number>;
  readonly health?: () => Promise<VolumeHealth>;
  readonly counters: NamespaceCounters = { bytesRead: 0, bytesWritten: 0, readCommands: 0, writeCommands: 0, mediaErrors: 0 };
  /** True while this gateway believes it holds the write lease. */
  leaseHeld = false;
  private acquiring: Promise<void> | undefined;

  constructor(nqn: string, c: NamespaceConfig) {
    if (!Number.isInteger(c.nsid) || c.nsid < 1 || c.nsid > MAX_NAMESPACES) throw new Error(`nsid ${c.nsid} outside 1..${MAX_NAMESPACES}`);
    if (c.device.size % LBA_SIZE !== 0 || c.device.size <= 0) throw new Error(`namespace ${c.nsid}: size ${c.device.size} is not a positive multiple of ${LBA_SIZE}`);
    this.nsid = c.nsid;
    this.device = c.device;
    this.anaGroupId = c.anaGroupId ?? c.nsid;
    if (this.anaGroupId < 1 || this.anaGroupId > ANA_GROUP_MAX) throw new Error(`ANA group ${this.anaGroupId} outside 1..${ANA_GROUP_MAX}`);
    this.nguid = c.nguid ?? deriveNguid(nqn, c.nsid);
    this.uuid = c.uuid ?? deriveUuid(nqn, c.nsid);
    if (this.nguid.length !== 16 || this.uuid.length !== 16) throw new Error('NGUID and UUID are 16 bytes');
    this.lease = c.lease;
    this.usage = c.usage;
    this.health = c.health;
  }

  /** Size in logical blocks. */
  get blocks(): number {
    return this.device.size / LBA_SIZE;
  }

  /**
   * Makes sure this gateway holds the write lease (single flight). Resolves true when it was
   * taken just now (the caller announces the ANA change), false when already held or no lease.
   */
  async ensureLease(): Promise<boolean> {
    if (!this.lease || this.leaseHeld) return false;
    if (this.acquiring) {
      await this.acquiring;
      return false;
    }
    this.acquiring = this.lease.acquire().then(
      () => {
        this.leaseHeld = true;
        this.acquiring = undefined;
      },
      (e) => {
        this.acquiring = undefined;
        throw e;
      },
    );
    await this.acquiring;
    return true;
  }
}

/** A subsystem at run time: an NVM subsystem or the discovery subsystem. */
export class Subsystem {
  readonly nqn: string;
  readonly kind: 'nvm' | 'discovery';
  readonly serial: string;
  readonly model: string;
  readonly namespaces = new Map<number, Namespace>();
  readonly ana: AnaGroups;
  readonly ports: number[] | undefined;
  readonly remotePaths: PathConfig[];
  private allow: Set<string> | 'any';
  private readonly anaPortDefaults: Record<number, AnaState>;
  private readonly recheck?: () => Promise<string[] | 'any' | undefined>;
  private rechecking: Promise<void> | null = null;

  constructor(c: SubsystemConfig, kind: 'nvm' | 'discovery' = 'nvm') {
    if (!isValidNqn(c.nqn)) throw new Error(`not a valid NQN: ${JSON.stringify(c.nqn)}`);
    if (kind === 'nvm' && c.nqn === DISCOVERY_NQN) throw new Error('the discovery NQN cannot name an NVM subsystem');
    this.nqn = c.nqn;
    this.kind = kind;
    this.serial = c.serial ?? deriveSerial(c.nqn);
    this.model = c.model ?? (kind === 'nvm' ? 'Cairn volume' : 'Cairn discovery');
    const allow = c.allowHosts ?? 'any';
    this.allow = allow === 'any' ? 'any' : new Set(allow);
    this.recheck = c.recheckHosts;
    this.ports = c.ports;
    this.remotePaths = c.remotePaths ?? [];
    this.ana = new AnaGroups(c.anaState ?? 'optimized');
    this.anaPortDefaults = c.anaStates ?? {};
    for (const [port, st] of Object.entries(this.anaPortDefaults)) {
      for (const n of c.namespaces) this.ana.set(Number(port), n.anaGroupId ?? n.nsid, st);
    }
    for (const n of c.namespaces) {
      if (this.namespaces.has(n.nsid)) throw new Error(`duplicate nsid ${n.nsid}`);
      this.namespaces.set(n.nsid, new Namespace(c.nqn, n));
    }
  }

  /** True if `hostnqn` may connect (discovery: always). */
  allows(hostnqn: string): boolean {
    return this.kind === 'discovery' || this.allow === 'any' || this.allow.has(hostnqn);
  }

  /**
   * Whether `hostnqn` may connect after asking the owner for the current allow-list
   * (SubsystemConfig.recheckHosts) when the one held refuses it; a failed question keeps the
   * list held. Resolves at once for an allowed host or without recheckHosts.
   */
  async allowsAfterRecheck(hostnqn: string): Promise<boolean> {
    if (this.allows(hostnqn) || !this.recheck) return this.allows(hostnqn);
    this.rechecking ??= this.recheck().then(
      (hosts) => {
        if (hosts !== undefined) this.setAllowHosts(hosts);
      },
      () => undefined,
    ).finally(() => (this.rechecking = null));
    await this.rechecking;
    return this.allows(hostnqn);
  }

  /** True when an allow-list refusal may be reconsidered (allowsAfterRecheck). */
  get canRecheckHosts(): boolean {
    return this.recheck !== undefined;
  }

  /** Replaces the allow-list (new connections only; connected hosts stay). */
  setAllowHosts(hosts: string[] | 'any'): void {
    this.allow = hosts === 'any' ? 'any' : new Set(hosts);
  }

  /** Adds a host NQN to the allow-list (switching from 'any' to a list). */
  allowHost(hostnqn: string): void {
    if (this.allow === 'any') return;
    this.allow.add(hostnqn);
  }

  /** True if this subsystem is exported on local port `portId`. */
  exportedOn(portId: number): boolean {
    return !this.ports || this.ports.includes(portId);
  }

  /** ANA group ids in use, ascending, with their namespaces. */
  anaGroups(): Map<number, number[]> {
    const g = new Map<number, number[]>();
    for (const ns of [...this.namespaces.values()].sort((a, b) => a.nsid - b.nsid)) {
      const l = g.get(ns.anaGroupId) ?? [];
      l.push(ns.nsid);
      g.set(ns.anaGroupId, l);
    }
    return new Map([...g.entries()].sort((a, b) => a[0] - b[0]));
  }
}
