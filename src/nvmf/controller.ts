/**
 * A controller (NVMe-oF 1.1 §3.3, dynamic controller model): created by an admin-queue
 * Connect, owns the controller properties (CAP, VS, CC, CSTS: NVMe Base 2.0 §3.1.3), the
 * features, the keep-alive timer (§3.9), asynchronous events (§5.2), the error log and the
 * queues (one TCP connection each) of one host association.
 */
import type { Logger } from 'pino';
import type { PortInfo } from './discovery.ts';
import type { QueueHandle } from './request.ts';
import type { Subsystem } from './subsystem.ts';

/** Highest I/O submission queue size we accept (CAP.MQES, 0's based = 127 → 128 entries). */
export const MQES = 127;
/** Largest I/O queue count a host is granted. */
export const MAX_IO_QUEUES = 32;
/** Maximum data transfer size as a power of two of 4 KiB pages (MDTS): 2^8 × 4 KiB = 1 MiB. */
export const MDTS = 8;
/** Largest data transfer of one command, bytes. */
export const MAX_TRANSFER = 4096 << MDTS;
/** In-capsule data we accept per command, bytes (reported via IOCCSZ). */
export const MAX_ICD = 16384;
/** Error log entries kept (ELPE + 1). */
export const ERROR_LOG_ENTRIES = 64;
/** Asynchronous Event Request Limit, 0's based (AERL). */
export const AERL = 3;
/** NVMe version the target reports (VS): 2.0.0. */
export const NVME_VERSION = 0x00020000;

/**
 * CAP for every controller: MQES, CQR=1, TO=30 (15 s), CSS bit 37 (NVM command set), MPSMIN =
 * MPSMAX = 0 (4 KiB). NVMe Base 2.0 figure "Offset 0h: CAP".
 */
export const CAP = BigInt(MQES) | (1n << 16n) | (30n << 24n) | (1n << 37n);

/** CC fields (NVMe Base 2.0 figure "Offset 14h: CC"). */
export const Cc = {
  en: (cc: number) => cc & 1,
  css: (cc: number) => (cc >> 4) & 7,
  mps: (cc: number) => (cc >> 7) & 0xf,
  ams: (cc: number) => (cc >> 11) & 7,
  shn: (cc: number) => (cc >> 14) & 3,
  iosqes: (cc: number) => (cc >> 16) & 0xf,
  iocqes: (cc: number) => (cc >> 20) & 0xf,
};

/** CSTS bits. */
export const Csts = { RDY: 1, CFS: 2, SHST_OCCURRING: 1 << 2, SHST_COMPLETE: 2 << 2 } as const;

/** Asynchronous event types and information (NVMe Base 2.0 §5.2, figure "Notice" events). */
export const AsyncEvent = {
  NOTICE: 2,
  NS_ATTR_CHANGED: 0x00,
  ANA_CHANGE: 0x03,
  DISCOVERY_CHANGE: 0xf0,
} as const;

/** Async Event Configuration bits (Set Features 0Bh). */
export const Aec = { NS_ATTR: 1 << 8, ANA_CHANGE: 1 << 11, DISCOVERY_CHANGE: 1 << 31 } as const;

/** One entry of the Error Information log (NVMe Base 2.0 §5.16.1.2). */
export interface ErrorEntry {
  count: number;
  sqid: number;
  cid: number;
  status: number;
  paramOffset: number;
  lba: number;
  nsid: number;
}

/** What a controller needs from the target that created it. */
export interface ControllerOwner {
  /** Called once when the controller is gone (frees its id). */
  releaseController(c: Controller): void;
  /** Where the controller logs (pino). */
  readonly logger: Logger;
  /** When the target started (ms since the epoch), for Power On Hours. */
  readonly startedAt: number;
}

/** A pending Asynchronous Event Request: resolve it to complete the command. */
interface AerWaiter {
  cid: number;
  resolve: (dw0: number | undefined) => void;
}

/** Controller state for one host association; see the module comment. */
export class Controller {
  cc = 0;
  csts = 0;
  /** Keep Alive Timeout, ms (0 = disabled). */
  kato: number;
  /** Async Event Configuration (Set Features 0Bh). */
  aec = 0;
  /** Volatile write cache enabled (Set Features 06h). */
  wce = true;
  /** Granted I/O submission/completion queue count (1-based); Set Features 07h. */
  ioQueues = MAX_IO_QUEUES;
  /** Queues by qid (0 = admin). */
  readonly queues = new Map<number, QueueHandle>();
  /** Namespaces whose attributes changed since the Changed Namespace List was last read. */
  readonly changedNs = new Set<number>();
  readonly errors: ErrorEntry[] = [];
  errorCount = 0;
  destroyed = false;
  readonly createdAt = Date.now();
  private lastActivity = Date.now();
  private kaTimer: NodeJS.Timeout | undefined;
  private readonly aers: AerWaiter[] = [];
  private readonly pendingEvents: number[] = [];
  private readonly maskedLids = new Set<number>();

  constructor(
    readonly owner: ControllerOwner,
    readonly cntlid: number,
    readonly subsystem: Subsystem,
    readonly hostnqn: string,
    readonly hostid: Buffer,
    readonly port: PortInfo,
    kato: number,
  ) {
    this.kato = kato;
    this.armKeepAlive();
  }

  /** True for a discovery controller. */
  get discovery(): boolean {
    return this.subsystem.kind === 'discovery';
  }

  /** True once CC.EN=1 was accepted (CSTS.RDY). */
  get ready(): boolean {
    return (this.csts & Csts.RDY) !== 0 && (this.csts & Csts.CFS) === 0;
  }

  /** Records host activity: any command counts for keep-alive (we report TBKAS). */
  touch(): void {
    this.lastActivity = Date.now();
  }

  /**
   * (Re)arms the keep-alive check. The association ends when no command arrives for 2 × KATO:
   * the host sends Keep Alive at KATO/2 (or relies on traffic), and the margin absorbs a slow
   * (emulated) host.
   */
  armKeepAlive(): void {
    if (this.kaTimer) clearInterval(this.kaTimer);
    this.kaTimer = undefined;
    if (!this.kato || this.destroyed) return;
    const period = Math.max(250, Math.min(this.kato, 5000));
    this.kaTimer = setInterval(() => {
      if (Date.now() - this.lastActivity > 2 * this.kato) this.destroy(`keep-alive timeout (${this.kato} ms)`);
    }, period);
    this.kaTimer.unref();
  }

  /**
   * Writes CC (Property Set) and runs the enable / reset / shutdown handshakes. `flushAll`
   * makes every namespace durable; shutdown reports SHST=complete only after it resolved.
   */
  setCc(value: number, flushAll: () => Promise<void>): void {
    const old = this.cc;
    this.cc = value >>> 0;
    if (!Cc.en(old) && Cc.en(value)) {
      const badQueues = !this.discovery && (Cc.iosqes(value) !== 6 || Cc.iocqes(value) !== 4);
      if (Cc.css(value) !== 0 || Cc.mps(value) !== 0 || Cc.ams(value) !== 0 || badQueues) {
        this.csts |= Csts.CFS;
        this.owner.logger.warn({ cntlid: this.cntlid, cc: `0x${value.toString(16)}` }, 'enable with an unsupported CC: controller fatal status (CSTS.CFS)');
      } else {
        this.csts = Csts.RDY;
      }
    } else if (Cc.en(old) && !Cc.en(value)) {
      // Controller reset: the host re-creates the association; end this one's I/O queues.
      this.csts &= ~(Csts.RDY | Csts.CFS);
      for (const [qid, q] of this.queues) if (qid !== 0) q.close('controller reset (CC.EN 1→0)');
    }
    if (Cc.shn(value) !== 0 && Cc.shn(old) === 0) {
      this.csts = (this.csts & ~(3 << 2)) | Csts.SHST_OCCURRING;
      flushAll().then(
        () => {
          this.csts = (this.csts & ~(3 << 2)) | Csts.SHST_COMPLETE;
        },
        (e) => {
          this.owner.logger.error({ cntlid: this.cntlid, nqn: this.subsystem.nqn, err: (e as Error).message }, 'flush at controller shutdown failed');
          this.csts = (this.csts & ~(3 << 2)) | Csts.SHST_COMPLETE | Csts.CFS;
        },
      );
    } else if (Cc.shn(value) === 0 && Cc.shn(old) !== 0) {
      this.csts &= ~(3 << 2);
    }
  }

  /** Queues an Asynchronous Event Request; resolves with the event's DW0 (undefined if aborted). */
  waitEvent(cid: number): Promise<number | undefined> | 'limit' {
    if (this.aers.length > AERL) return 'limit';
    return new Promise((resolve) => {
      this.aers.push({ cid, resolve });
      this.flushEvents();
    });
  }

  /** Aborts a pending Asynchronous Event Request by command id; true if one was pending. */
  abortEvent(cid: number): boolean {
    const i = this.aers.findIndex((a) => a.cid === cid);
    if (i < 0) return false;
    this.aers.splice(i, 1)[0].resolve(undefined);
    return true;
  }

  /**
   * Raises an asynchronous event (type, info, log page) if the host enabled it (`aecBit`) and
   * the same log page is not already awaiting a read (events stay masked until the host
   * reads the log page with RAE=0, NVMe Base 2.0 §5.2.1).
   */
  raiseEvent(type: number, info: number, lid: number, aecBit: number): void {
    if (this.destroyed || (this.aec & aecBit) === 0 || this.maskedLids.has(lid)) return;
    this.maskedLids.add(lid);
    this.pendingEvents.push((type & 7) | ((info & 0xff) << 8) | ((lid & 0xff) << 16));
    this.flushEvents();
  }

  /** The host read log page `lid` without Retain Asynchronous Event: unmask its events. */
  logRead(lid: number): void {
    this.maskedLids.delete(lid);
  }

  private flushEvents(): void {
    while (this.aers.length && this.pendingEvents.length) this.aers.shift()!.resolve(this.pendingEvents.shift()!);
  }

  /** Adds an Error Information log entry for a failed command. */
  recordError(e: Omit<ErrorEntry, 'count'>): void {
    this.errorCount++;
    this.errors.unshift({ ...e, count: this.errorCount });
    if (this.errors.length > ERROR_LOG_ENTRIES) this.errors.pop();
  }

  /** Ends the association: closes every queue and releases the controller id. Idempotent. */
  destroy(reason: string): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.kaTimer) clearInterval(this.kaTimer);
    this.kaTimer = undefined;
    this.owner.logger.info({ cntlid: this.cntlid, nqn: this.subsystem.nqn, hostnqn: this.hostnqn, reason }, `controller gone: ${reason}`);
    for (const q of this.queues.values()) q.close(reason);
    this.queues.clear();
    for (const a of this.aers.splice(0)) a.resolve(undefined);
    this.owner.releaseController(this);
  }
}
