/**
 * Log page builders (NVMe Base 2.0 §5.16.1): Error Information (01h), SMART / Health
 * Information (02h), Firmware Slot Information (03h), Changed Namespace List (04h), Commands
 * Supported and Effects (05h). ANA (0Ch) is in ana.ts, Discovery (70h) in discovery.ts.
 */
import { AdminOpc, IoOpc } from './command.ts';
import { ERROR_LOG_ENTRIES, type ErrorEntry } from './controller.ts';
import { TRTYPE_TCP } from './discovery.ts';
import { FIRMWARE_REVISION } from './identify.ts';
import { encodeStatus } from './status.ts';

/** Log page identifiers. */
export const Lid = {
  ERROR: 0x01,
  SMART: 0x02,
  FW_SLOT: 0x03,
  CHANGED_NS: 0x04,
  EFFECTS: 0x05,
  ANA: 0x0c,
  DISCOVERY: 0x70,
} as const;

/** Error Information log: ERROR_LOG_ENTRIES 64-byte entries, newest first. */
export function errorLog(entries: ErrorEntry[]): Buffer {
  const b = Buffer.alloc(64 * ERROR_LOG_ENTRIES);
  entries.slice(0, ERROR_LOG_ENTRIES).forEach((e, i) => {
    const o = i * 64;
    b.writeBigUInt64LE(BigInt(e.count), o);
    b.writeUInt16LE(e.sqid, o + 8);
    b.writeUInt16LE(e.cid, o + 10);
    b.writeUInt16LE(encodeStatus(e.status), o + 12);
    b.writeUInt16LE(e.paramOffset, o + 14);
    b.writeBigUInt64LE(BigInt(e.lba), o + 16);
    b.writeUInt32LE(e.nsid >>> 0, o + 24);
    b[o + 29] = TRTYPE_TCP;
  });
  return b;
}

/** Figures for the SMART / Health log (sums over the namespaces in scope). */
export interface HealthFigures {
  bytesRead: number;
  bytesWritten: number;
  readCommands: number;
  writeCommands: number;
  mediaErrors: number;
  errorLogEntries: number;
  /**
   * Free share of the backing pool, 0..1, when the volume can tell (thin volumes fail writes
   * with ENOSPC when it runs out); reported as Available Spare. Default 1.
   */
  poolFreeFraction?: number;
  powerOnHours: number;
}

function u128(b: Buffer, off: number, v: number): void {
  b.writeBigUInt64LE(BigInt(Math.floor(v)), off); // high 64 bits stay 0
}

/**
 * SMART / Health Information (512 bytes). Data units are thousands of 512-byte units, rounded
 * up. There is no media to wear: Percentage Used is 0; Available Spare reports the free share
 * of the backing pool (threshold 10 %, critical warning bit 0 below it). Temperature is not
 * measured and is reported as 0 K.
 */
export function smartLog(f: HealthFigures): Buffer {
  const b = Buffer.alloc(512);
  const spare = Math.max(0, Math.min(100, Math.round(100 * (f.poolFreeFraction ?? 1))));
  b[0] = spare < 10 ? 0x01 : 0; // critical warning: available spare below threshold
  b.writeUInt16LE(0, 1); // composite temperature, K (not measured)
  b[3] = spare;
  b[4] = 10; // available spare threshold
  b[5] = 0; // percentage used
  u128(b, 32, Math.ceil(f.bytesRead / 512 / 1000));
  u128(b, 48, Math.ceil(f.bytesWritten / 512 / 1000));
  u128(b, 64, f.readCommands);
  u128(b, 80, f.writeCommands);
  u128(b, 112, 1); // power cycles
  u128(b, 128, f.powerOnHours);
  u128(b, 160, f.mediaErrors);
  u128(b, 176, f.errorLogEntries);
  return b;
}

/** Firmware Slot Information: slot 1 active, holding FIRMWARE_REVISION. */
export function firmwareSlotLog(): Buffer {
  const b = Buffer.alloc(512);
  b[0] = 1; // AFI: slot 1 active
  b.fill(0x20, 8, 16);
  b.write(FIRMWARE_REVISION, 8, 'latin1');
  return b;
}

/** Changed Namespace List: up to 1024 NSIDs, or FFFFFFFFh first if more changed. */
export function changedNamespaceLog(nsids: number[]): Buffer {
  const b = Buffer.alloc(4096);
  if (nsids.length > 1024) b.writeUInt32LE(0xffffffff, 0);
  else nsids.sort((x, y) => x - y).forEach((n, i) => b.writeUInt32LE(n, i * 4));
  return b;
}

/** Commands Supported and Effects: CSUPP for every command we implement; LBCC for writes. */
export function effectsLog(discovery: boolean): Buffer {
  const b = Buffer.alloc(4096);
  const CSUPP = 1;
  const LBCC = 2;
  const admin = discovery
    ? [AdminOpc.GET_LOG_PAGE, AdminOpc.IDENTIFY, AdminOpc.SET_FEATURES, AdminOpc.GET_FEATURES, AdminOpc.ASYNC_EVENT_REQUEST, AdminOpc.KEEP_ALIVE]
    : [AdminOpc.GET_LOG_PAGE, AdminOpc.IDENTIFY, AdminOpc.ABORT, AdminOpc.SET_FEATURES, AdminOpc.GET_FEATURES, AdminOpc.ASYNC_EVENT_REQUEST, AdminOpc.KEEP_ALIVE];
  for (const o of admin) b.writeUInt32LE(CSUPP, o * 4);
  if (!discovery) {
    const io: [number, number][] = [
      [IoOpc.FLUSH, CSUPP],
      [IoOpc.WRITE, CSUPP | LBCC],
      [IoOpc.READ, CSUPP],
      [IoOpc.COMPARE, CSUPP],
      [IoOpc.WRITE_ZEROES, CSUPP | LBCC],
      [IoOpc.DSM, CSUPP | LBCC],
    ];
    for (const [o, v] of io) b.writeUInt32LE(v, 1024 + o * 4);
  }
  return b;
}
