/**
 * Submission and completion queue entries as carried in NVMe/TCP capsules: field accessors for
 * the 64-byte SQE, the SGL descriptor NVMe/TCP uses, opcodes, and the 16-byte CQE encoder.
 * Layouts: NVMe Base 2.0 §4.2 (SQE), §4.6 (CQE), §4.4 (SGL); NVMe-oF 1.1 §2.2 (fabrics
 * command format); NVMe/TCP 1.0 §3.3 (SGL descriptors used by the TCP transport).
 */
import { encodeStatus } from './status.ts';

/** Admin command opcodes (NVMe Base 2.0 figure "Opcodes for Admin Commands"). */
export const AdminOpc = {
  GET_LOG_PAGE: 0x02,
  IDENTIFY: 0x06,
  ABORT: 0x08,
  SET_FEATURES: 0x09,
  GET_FEATURES: 0x0a,
  ASYNC_EVENT_REQUEST: 0x0c,
  KEEP_ALIVE: 0x18,
  FABRICS: 0x7f,
} as const;

/** NVM command set I/O opcodes (NVM Command Set Specification 1.0 figure "Opcodes for NVM Commands"). */
export const IoOpc = {
  FLUSH: 0x00,
  WRITE: 0x01,
  READ: 0x02,
  COMPARE: 0x05,
  WRITE_ZEROES: 0x08,
  DSM: 0x09,
  FABRICS: 0x7f,
} as const;

/** Fabrics command types, FCTYPE (NVMe-oF 1.1 figure "Fabrics Command Types"). */
export const FcType = {
  PROPERTY_SET: 0x00,
  CONNECT: 0x01,
  PROPERTY_GET: 0x04,
  AUTH_SEND: 0x05,
  AUTH_RECV: 0x06,
  DISCONNECT: 0x08,
} as const;

/** SGL descriptor identifiers NVMe/TCP uses (type << 4 | subtype). */
export const SglId = {
  /** Data Block descriptor, Offset subtype: data is in the capsule at ADDRESS. */
  IN_CAPSULE: 0x01,
  /** Transport SGL Data Block descriptor, transport specific subtype 0xA: data moves by R2T / C2HData. */
  TRANSPORT: 0x5a,
} as const;

/** Data transfer direction of a command, from bits 1:0 of its opcode (or FCTYPE). */
export const Xfer = { NONE: 0, H2C: 1, C2H: 2, BIDI: 3 } as const;

/** Read-only view of a 64-byte submission queue entry. */
export class Sqe {
  constructor(readonly buf: Buffer) {}
  get opcode(): number {
    return this.buf[0];
  }
  /** FUSE, bits 1:0 of byte 1. */
  get fuse(): number {
    return this.buf[1] & 3;
  }
  /** PSDT, bits 7:6 of byte 1 (01b/10b = SGL). */
  get psdt(): number {
    return this.buf[1] >> 6;
  }
  get cid(): number {
    return this.buf.readUInt16LE(2);
  }
  get nsid(): number {
    return this.buf.readUInt32LE(4);
  }
  /** Fabrics command type (byte 4 of a fabrics command). */
  get fctype(): number {
    return this.buf[4];
  }
  /** SGL1 address field (for in-capsule data: offset into the capsule data), bytes. */
  get sglAddress(): number {
    return this.buf.readUInt32LE(24) + this.buf.readUInt32LE(28) * 2 ** 32;
  }
  /** SGL1 length, bytes. */
  get sglLength(): number {
    return this.buf.readUInt32LE(32);
  }
  /** SGL1 identifier byte (type << 4 | subtype). */
  get sglId(): number {
    return this.buf[39];
  }
  /** Command dword N (10..15), little endian. */
  cdw(n: number): number {
    return this.buf.readUInt32LE(n * 4);
  }
  /** Transfer direction: bits 1:0 of the opcode, or of FCTYPE for fabrics commands. */
  get xfer(): number {
    return (this.opcode === 0x7f ? this.fctype : this.opcode) & 3;
  }
}

/** Builds a 64-byte SQE (used by test clients): fields not given are zero. */
export function buildSqe(f: {
  opcode: number;
  cid: number;
  nsid?: number;
  fctype?: number;
  psdt?: number;
  sglId?: number;
  sglAddress?: number;
  sglLength?: number;
  cdw?: Partial<Record<10 | 11 | 12 | 13 | 14 | 15, number>>;
}): Buffer {
  const b = Buffer.alloc(64);
  b[0] = f.opcode;
  b[1] = (f.psdt ?? 1) << 6;
  b.writeUInt16LE(f.cid, 2);
  if (f.fctype !== undefined) b[4] = f.fctype;
  else b.writeUInt32LE((f.nsid ?? 0) >>> 0, 4);
  b.writeUInt32LE((f.sglAddress ?? 0) % 2 ** 32, 24);
  b.writeUInt32LE(Math.floor((f.sglAddress ?? 0) / 2 ** 32), 28);
  b.writeUInt32LE(f.sglLength ?? 0, 32);
  b[39] = f.sglId ?? SglId.TRANSPORT;
  for (const [k, v] of Object.entries(f.cdw ?? {})) b.writeUInt32LE((v as number) >>> 0, Number(k) * 4);
  return b;
}

/** Encodes a 16-byte completion queue entry (phase tag 0, as fabrics use). */
export function encodeCqe(c: { result: number; resultHi?: number; sqhd: number; sqid: number; cid: number; status: number }): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(c.result >>> 0, 0);
  b.writeUInt32LE((c.resultHi ?? 0) >>> 0, 4);
  b.writeUInt16LE(c.sqhd & 0xffff, 8);
  b.writeUInt16LE(c.sqid & 0xffff, 10);
  b.writeUInt16LE(c.cid & 0xffff, 12);
  b.writeUInt16LE(encodeStatus(c.status), 14);
  return b;
}

/** Decoded completion queue entry; `status` is without the phase tag (see status.ts). */
export interface Cqe {
  result: number;
  resultHi: number;
  sqhd: number;
  sqid: number;
  cid: number;
  status: number;
}

/** Decodes a 16-byte completion queue entry. */
export function decodeCqe(b: Buffer): Cqe {
  return {
    result: b.readUInt32LE(0),
    resultHi: b.readUInt32LE(4),
    sqhd: b.readUInt16LE(8),
    sqid: b.readUInt16LE(10),
    cid: b.readUInt16LE(12),
    status: (b.readUInt16LE(14) >> 1) & 0x7fff,
  };
}
