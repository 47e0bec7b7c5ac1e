/**
 * The NVMe/TCP target (a Cairn gateway): listens on one or more ports, holds the export
 * registry (subsystems, the discovery subsystem), creates controllers on Connect, builds the
 * discovery log page, and drives ANA state changes (explicit, or following the write lease:
 * the gateway that takes a volume's lease reports it optimized, one that loses it reports
 * non-optimized) with ANA change asynchronous events.
 */
import { pino, type Logger } from 'pino';
import { createServer, type Server } from 'node:net';
import type { AnaState } from './ana.ts';
import { Connection, type ConnectionContext } from './connection.ts';
import { Aec, AsyncEvent, Controller, type ControllerOwner } from './controller.ts';
import { buildDiscoveryLog, SubType, type DiscoveryEntry, type PortInfo } from './discovery.ts';
import { DISCOVERY_NQN } from './ids.ts';
import { Lid } from './log-pages.ts';
import { Subsystem, type Namespace, type SubsystemConfig } from './subsystem.ts';

/** Options of a target. */
export interface TargetOptions {
  /**
   * Controller ids this target hands out, inclusive. Every gateway exporting the same
   * subsystem must use a disjoint range (hosts reject two controllers with one id in a
   * subsystem). Default [1, 0xffef].
   */
  cntlidRange?: [number, number];
  /**
   * pino logger for listeners, controllers, connections (children with `peer` and `qid`),
   * leases and failed I/O commands (default: silent).
   */
  log?: Logger;
}

/** Where to listen. */
export interface ListenOptions {
  /** Port id (PORTID), unique among the paths of the subsystems served. */
  portId: number;
  /** Local address to bind. Default 127.0.0.1. */
  host?: string;
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Address hosts should use (discovery TRADDR); default `host`. */
  traddr?: string;
}

interface PortRecord {
  info: PortInfo;
  server: Server;
}

/** A running NVMe/TCP target; see the module comment. */
export class NvmfTarget implements ConnectionContext, ControllerOwner {
  readonly startedAt = Date.now();
  private readonly subsystems = new Map<string, Subsystem>();
  private readonly discovery = new Subsystem({ nqn: DISCOVERY_NQN, namespaces: [] }, 'discovery');
  private readonly ports = new Map<number, PortRecord>();
  private readonly controllers = new Map<number, Controller>();
  private readonly connections = new Set<Connection>();
  private readonly cntlidMin: number;
  private readonly cntlidMax: number;
  private nextCntlid: number;
  private genctr = 1;
  /** Where the target, its controllers and connections log. */
  readonly logger: Logger;

  constructor(opts: TargetOptions = {}) {
    const [lo, hi] = opts.cntlidRange ?? [1, 0xffef];
    if (!(lo >= 1 && hi <= 0xffef && lo <= hi)) throw new Error(`invalid controller id range [${lo}, ${hi}]`);
    this.cntlidMin = lo;
    this.cntlidMax = hi;
    this.nextCntlid = lo;
    this.logger = opts.log ?? pino({ level: 'silent' });
  }

  /** Adds a subsystem (a volume export). Throws on a duplicate NQN or bad configuration. */
  addSubsystem(c: SubsystemConfig): Subsystem {
    if (this.subsystems.has(c.nqn)) throw new Error(`subsystem ${c.nqn} already exported`);
    const s = new Subsystem(c);
    this.subsystems.set(c.nqn, s);
    this.discoveryChanged();
    return s;
  }

  /** Removes a subsystem; its controllers (and their connections) end. */
  removeSubsystem(nqn: string): boolean {
    const s = this.subsystems.get(nqn);
    if (!s) return false;
    this.subsystems.delete(nqn);
    for (const c of [...this.controllers.values()]) if (c.subsystem === s) c.destroy('subsystem removed');
    this.discoveryChanged();
    return true;
  }

  /** The subsystem named `nqn`, if exported. */
  subsystem(nqn: string): Subsystem | undefined {
    return this.subsystems.get(nqn);
  }

  /** Live controllers (for inspection and tests). */
  liveControllers(): Controller[] {
    return [...this.controllers.values()];
  }

  /** Open connections. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Starts listening; resolves with the advertised port (with the actual TCP port). */
  listen(o: ListenOptions): Promise<PortInfo> {
    if (this.ports.has(o.portId)) return Promise.reject(new Error(`port id ${o.portId} already in use`));
    const host = o.host ?? '127.0.0.1';
    const server = createServer((sock) => {
      const rec = this.ports.get(o.portId);
      if (!rec) return sock.destroy();
      const c = new Connection(sock, o.portId, this);
      this.connections.add(c);
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, host, () => {
        server.off('error', reject);
        const addr = server.address();
        const port = typeof addr === 'object' && addr ? addr.port : o.port;
        const info: PortInfo = { portId: o.portId, traddr: o.traddr ?? host, trsvcid: port };
        this.ports.set(o.portId, { info, server });
        this.logger.info({ host, port, portId: o.portId, traddr: info.traddr }, 'NVMe/TCP port listening');
        this.discoveryChanged();
        resolve(info);
      });
    });
  }

  /** Local ports. */
  portInfos(): PortInfo[] {
    return [...this.ports.values()].map((p) => p.info);
  }

  /**
   * Sets the ANA state of a subsystem's groups (all, or `groupId`) on local ports (all, or
   * `portId`), and sends the ANA change event to the controllers that see a change.
   */
  setAnaState(nqn: string, state: AnaState, where: { portId?: number; groupId?: number } = {}): void {
    const sub = this.subsystems.get(nqn);
    if (!sub) throw new Error(`no subsystem ${nqn}`);
    const ports = where.portId !== undefined ? [where.portId] : [...this.ports.keys()];
    const groups = where.groupId !== undefined ? [where.groupId] : [...sub.anaGroups().keys()];
    for (const p of ports) {
      let changed = false;
      for (const g of groups) changed = sub.ana.set(p, g, state) || changed;
      if (changed) this.announceAna(sub, p);
    }
  }

  /** Tells hosts that namespace `nsid` of `nqn` changed (Namespace Attribute Changed event). */
  notifyNamespaceChanged(nqn: string, nsid: number): void {
    for (const c of this.controllers.values()) {
      if (c.subsystem.nqn !== nqn || c.discovery) continue;
      c.changedNs.add(nsid);
      c.raiseEvent(AsyncEvent.NOTICE, AsyncEvent.NS_ATTR_CHANGED, Lid.CHANGED_NS, Aec.NS_ATTR);
    }
  }

  /** Stops listening, ends every association and connection. */
  async close(): Promise<void> {
    for (const c of [...this.controllers.values()]) c.destroy('target shutting down');
    for (const c of this.connections) c.socket.destroy();
    await Promise.all([...this.ports.values()].map((p) => new Promise<void>((r) => p.server.close(() => r()))));
    this.ports.clear();
  }

  private announceAna(sub: Subsystem, portId: number): void {
    for (const c of this.controllers.values()) {
      if (c.subsystem === sub && c.port.portId === portId) c.raiseEvent(AsyncEvent.NOTICE, AsyncEvent.ANA_CHANGE, Lid.ANA, Aec.ANA_CHANGE);
    }
  }

  private discoveryChanged(): void {
    this.genctr++;
    for (const c of this.controllers.values()) {
      if (c.discovery) c.raiseEvent(AsyncEvent.NOTICE, AsyncEvent.DISCOVERY_CHANGE, Lid.DISCOVERY, Aec.DISCOVERY_CHANGE);
    }
  }

  // ---- ConnectionContext ----

  /** @internal */
  connectionClosed(c: Connection): void {
    this.connections.delete(c);
  }

  /** @internal */
  findSubsystem(nqn: string, portId: number): Subsystem | undefined {
    if (nqn === DISCOVERY_NQN) return this.discovery;
    const s = this.subsystems.get(nqn);
    return s && s.exportedOn(portId) ? s : undefined;
  }

  /** @internal */
  createController(sub: Subsystem, hostnqn: string, hostid: Buffer, portId: number, kato: number): Controller | undefined {
    const span = this.cntlidMax - this.cntlidMin + 1;
    for (let i = 0; i < span; i++) {
      const id = this.cntlidMin + ((this.nextCntlid - this.cntlidMin + i) % span);
      if (this.controllers.has(id)) continue;
      this.nextCntlid = id + 1 > this.cntlidMax ? this.cntlidMin : id + 1;
      const port = this.ports.get(portId)!.info;
      const c = new Controller(this, id, sub, hostnqn, hostid, port, kato);
      this.controllers.set(id, c);
      this.logger.info({ cntlid: id, kind: sub.kind, nqn: sub.nqn, hostnqn, portId }, 'controller created');
      return c;
    }
    return undefined;
  }

  /** @internal */
  findController(sub: Subsystem, cntlid: number): Controller | undefined {
    const c = this.controllers.get(cntlid);
    return c && c.subsystem === sub ? c : undefined;
  }

  /** @internal */
  releaseController(c: Controller): void {
    if (this.controllers.get(c.cntlid) === c) this.controllers.delete(c.cntlid);
  }

  /** @internal */
  async flush(ctrl: Controller): Promise<void> {
    await Promise.all([...ctrl.subsystem.namespaces.values()].map((ns) => ns.device.flush()));
  }

  /** @internal */
  discoveryLog(ctrl: Controller, portLocalOnly: boolean): Buffer {
    const entries: DiscoveryEntry[] = [];
    for (const sub of [...this.subsystems.values()].sort((a, b) => (a.nqn < b.nqn ? -1 : 1))) {
      if (!sub.allows(ctrl.hostnqn)) continue;
      const paths = new Map<number, PortInfo>();
      for (const p of this.ports.values()) if (sub.exportedOn(p.info.portId)) paths.set(p.info.portId, p.info);
      for (const p of sub.remotePaths) if (!paths.has(p.portId)) paths.set(p.portId, p);
      for (const p of [...paths.values()].sort((a, b) => a.portId - b.portId)) {
        if (portLocalOnly && p.portId !== ctrl.port.portId) continue;
        entries.push({ ...p, subnqn: sub.nqn, subtype: SubType.NVM });
      }
    }
    return buildDiscoveryLog(this.genctr, entries);
  }

  /** @internal */
  leaseTaken(ns: Namespace, ctrl: Controller): void {
    this.logger.info({ nqn: ctrl.subsystem.nqn, nsid: ns.nsid, portId: ctrl.port.portId }, 'write lease taken');
    if (ctrl.subsystem.ana.set(ctrl.port.portId, ns.anaGroupId, 'optimized')) this.announceAna(ctrl.subsystem, ctrl.port.portId);
  }

  /** @internal */
  leaseLost(ns: Namespace, ctrl: Controller): void {
    ns.leaseHeld = false;
    this.logger.warn({ nqn: ctrl.subsystem.nqn, nsid: ns.nsid }, 'write lease lost (fenced by another gateway)');
    const sub = ctrl.subsystem;
    for (const p of this.ports.keys()) {
      if (sub.ana.get(p, ns.anaGroupId) === 'optimized' && sub.ana.set(p, ns.anaGroupId, 'non-optimized')) this.announceAna(sub, p);
    }
  }
}
