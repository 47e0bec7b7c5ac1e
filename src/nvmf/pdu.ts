/**
 * NVMe/TCP PDU codec: the common header, every PDU-specific header, and encoders for the PDUs
 * each side sends. Layouts follow the NVMe/TCP Transport Specification 1.0 (section 3.6.2,
 * figures "Common Header", "ICReq", "ICResp", "CapsuleCmd", "CapsuleResp", "H2CData",
 * "C2HData", "R2T", "H2CTermReq", "C2HTermReq"). All multi-byte fields are little endian;
 * digests are CRC-32C (Castagnoli), stored little endian.
 *
 * Receiving side framing (incremental parsing, validation) is in pdu-reader.ts.
 */
import { crc32c } from '@node-rs/crc32';

/** PDU-Type values (NVMe/TCP 1.0 figure "PDU Types"). Bit 0 set = controller-to-host. */
export const PduType = {
  ICReq: 0x00,
  ICResp: 0x01,
  H2CTermReq: 0x02,
  C2HTermReq: 0x03,
  CapsuleCmd: 0x04,
  CapsuleResp: 0x05,
  H2CData: 0x06,
  C2HData: 0x07,
  R2T: 0x09,
} as const;
/** One of the PduType values. */
export type PduTypeValue = (typeof PduType)[keyof typeof PduType];

/** Common-header FLAGS bits (NVMe/TCP 1.0 "Common Header"; LAST_PDU/SUCCESS are per type). */
export const PduFlag = {
  /** Header digest present. */
  HDGSTF: 0x01,
  /** Data digest present. */
  DDGSTF: 0x02,
  /** H2CData/C2HData: last PDU of the data transfer (of the R2T, for H2CData). */
  LAST_PDU: 0x04,
  /** C2HData: the command completed successfully and no CapsuleResp follows. */
  SUCCESS: 0x08,
} as const;

/** Header lengths (HLEN) per PDU type, in bytes: common header (8) plus the PDU-specific header. */
export const HLEN = {
  [PduType.ICReq]: 128,
  [PduType.ICResp]: 128,
  [PduType.H2CTermReq]: 24,
  [PduType.C2HTermReq]: 24,
  [PduType.CapsuleCmd]: 72,
  [PduType.CapsuleResp]: 24,
  [PduType.H2CData]: 24,
  [PduType.C2HData]: 24,
  [PduType.R2T]: 24,
} as Record<number, number>;

/** Fatal Error Status values carried by H2CTermReq/C2HTermReq (NVMe/TCP 1.0 "C2HTermReq"). */
export const Fes = {
  INVALID_HEADER_FIELD: 0x01,
  PDU_SEQUENCE_ERROR: 0x02,
  HEADER_DIGEST_ERROR: 0x03,
  DATA_OUT_OF_RANGE: 0x04,
  /** "Data Transfer Limit Exceeded" (C2HTermReq) / "R2T Limit Exceeded". */
  DATA_LIMIT_EXCEEDED: 0x05,
  UNSUPPORTED_PARAMETER: 0x06,
} as const;

/** Byte offsets of common-header fields, used as FEI for Invalid Header Field errors. */
export const ChOffset = { type: 0, flags: 1, hlen: 2, pdo: 3, plen: 4 } as const;

/** Largest termination request PDU (24-byte header + up to 128 bytes of the offending header). */
export const TERM_REQ_MAX_PLEN = 152;
/** Digest length in bytes (CRC-32C). */
export const DIGEST_LEN = 4;

/** The 8-byte common header of every PDU. */
export interface CommonHeader {
  type: number;
  flags: number;
  /** Header length (common + PDU-specific header, without header digest), bytes. */
  hlen: number;
  /** PDU data offset from the start of the PDU, bytes (0 when there is no data). */
  pdo: number;
  /** Total PDU length including digests and padding, bytes. */
  plen: number;
}

/** Reads the common header at `off` of `buf` (needs 8 bytes). */
export function readCommonHeader(buf: Buffer, off = 0): CommonHeader {
  return { type: buf[off], flags: buf[off + 1], hlen: buf[off + 2], pdo: buf[off + 3], plen: buf.readUInt32LE(off + 4) };
}

/** Writes a common header into `buf` at offset 0. */
export function writeCommonHeader(buf: Buffer, h: CommonHeader): void {
  buf[0] = h.type;
  buf[1] = h.flags;
  buf[2] = h.hlen;
  buf[3] = h.pdo;
  buf.writeUInt32LE(h.plen, 4);
}

/** CRC-32C of `buf`, as the 4-byte little-endian digest NVMe/TCP puts on the wire. */
export function digestOf(...parts: Buffer[]): Buffer {
  let c = 0;
  for (const p of parts) c = crc32c(p, c);
  const d = Buffer.allocUnsafe(4);
  d.writeUInt32LE(c >>> 0, 0);
  return d;
}

/** CRC-32C value (unsigned 32-bit) over the concatenation of `parts`. */
export function crcOf(...parts: Buffer[]): number {
  let c = 0;
  for (const p of parts) c = crc32c(p, c);
  return c >>> 0;
}

/** ICReq PDU-specific fields (NVMe/TCP 1.0 figure "ICReq"). */
export interface ICReq {
  /** PDU Format Version; 0 = version 1.0. */
  pfv: number;
  /** Host PDU data alignment, 0's based in dwords: data in C2H PDUs starts at a multiple of (hpda+1)*4. */
  hpda: number;
  /** Header digest requested. */
  hdgst: boolean;
  /** Data digest requested. */
  ddgst: boolean;
  /** Maximum outstanding R2Ts per command, 0's based. */
  maxr2t: number;
}

/** ICResp PDU-specific fields (NVMe/TCP 1.0 figure "ICResp"). */
export interface ICResp {
  pfv: number;
  /** Controller PDU data alignment, 0's based in dwords, for H2C PDUs. */
  cpda: number;
  hdgst: boolean;
  ddgst: boolean;
  /** Maximum PDU-data bytes per H2CData PDU (a multiple of 4, at least 4096). */
  maxh2cdata: number;
}

/** Encodes an ICReq PDU (128 bytes; never carries digests). */
export function encodeICReq(r: ICReq): Buffer {
  const b = Buffer.alloc(128);
  writeCommonHeader(b, { type: PduType.ICReq, flags: 0, hlen: 128, pdo: 0, plen: 128 });
  b.writeUInt16LE(r.pfv, 8);
  b[10] = r.hpda;
  b[11] = (r.hdgst ? 1 : 0) | (r.ddgst ? 2 : 0);
  b.writeUInt32LE(r.maxr2t, 12);
  return b;
}

/** Decodes ICReq fields from a 128-byte header. */
export function decodeICReq(h: Buffer): ICReq {
  return { pfv: h.readUInt16LE(8), hpda: h[10], hdgst: (h[11] & 1) !== 0, ddgst: (h[11] & 2) !== 0, maxr2t: h.readUInt32LE(12) };
}

/** Encodes an ICResp PDU (128 bytes). */
export function encodeICResp(r: ICResp): Buffer {
  const b = Buffer.alloc(128);
  writeCommonHeader(b, { type: PduType.ICResp, flags: 0, hlen: 128, pdo: 0, plen: 128 });
  b.writeUInt16LE(r.pfv, 8);
  b[10] = r.cpda;
  b[11] = (r.hdgst ? 1 : 0) | (r.ddgst ? 2 : 0);
  b.writeUInt32LE(r.maxh2cdata, 12);
  return b;
}

/** Decodes ICResp fields from a 128-byte header. */
export function decodeICResp(h: Buffer): ICResp {
  return { pfv: h.readUInt16LE(8), cpda: h[10], hdgst: (h[11] & 1) !== 0, ddgst: (h[11] & 2) !== 0, maxh2cdata: h.readUInt32LE(12) };
}

/** Digest settings negotiated by ICReq/ICResp for one connection. */
export interface DigestMode {
  hdgst: boolean;
  ddgst: boolean;
}

/**
 * Lays out a PDU with header `hdr` (HLEN bytes, common header filled in except flags/pdo/plen),
 * optional data, digests per `mode`, and data aligned to `align` bytes (≥ 4, from HPDA/CPDA).
 * Returns the buffers to write in order (header part, data, data digest) without copying data.
 */
export function framePdu(hdr: Buffer, data: Buffer | undefined, mode: DigestMode, align = 4, extraFlags = 0): Buffer[] {
  const hlen = hdr.length;
  const hd = mode.hdgst ? DIGEST_LEN : 0;
  const hasData = data !== undefined && data.length > 0;
  const dd = hasData && mode.ddgst ? DIGEST_LEN : 0;
  let pdo = 0;
  let pad = 0;
  if (hasData) {
    pdo = Math.ceil((hlen + hd) / align) * align;
    pad = pdo - hlen - hd;
  }
  const plen = hlen + hd + pad + (hasData ? data.length : 0) + dd;
  hdr[1] = (mode.hdgst ? PduFlag.HDGSTF : 0) | (dd ? PduFlag.DDGSTF : 0) | extraFlags;
  hdr[2] = hlen;
  hdr[3] = pdo;
  hdr.writeUInt32LE(plen, 4);
  const head = hd || pad ? Buffer.alloc(hlen + hd + pad) : hdr;
  if (head !== hdr) {
    hdr.copy(head, 0);
    if (hd) head.writeUInt32LE(crcOf(hdr), hlen);
  }
  const out = [head];
  if (hasData) {
    out.push(data);
    if (dd) out.push(digestOf(data));
  }
  return out;
}

/** Builds the 24-byte header of a CapsuleResp around a 16-byte completion queue entry. */
export function capsuleRespHeader(cqe: Buffer): Buffer {
  const h = Buffer.allocUnsafe(24);
  h[0] = PduType.CapsuleResp;
  cqe.copy(h, 8, 0, 16);
  return h;
}

/** Builds the 72-byte header of a CapsuleCmd around a 64-byte submission queue entry. */
export function capsuleCmdHeader(sqe: Buffer): Buffer {
  const h = Buffer.alloc(72);
  h[0] = PduType.CapsuleCmd;
  sqe.copy(h, 8, 0, 64);
  return h;
}

/** Fields of H2CData / C2HData / R2T PDU-specific headers (they share one layout). */
export interface DataHeader {
  /** Command capsule CID this transfer belongs to. */
  cccid: number;
  /** Transfer tag (R2T and H2CData; reserved in C2HData). */
  ttag: number;
  /** Offset of this PDU's data within the command's data (DATAO / R2TO), bytes. */
  offset: number;
  /** Length of this PDU's data (DATAL / R2TL), bytes. */
  length: number;
}

/** Builds the 24-byte header of an H2CData, C2HData or R2T PDU. */
export function dataHeader(type: number, d: DataHeader): Buffer {
  const h = Buffer.alloc(24);
  h[0] = type;
  h.writeUInt16LE(d.cccid, 8);
  h.writeUInt16LE(d.ttag, 10);
  h.writeUInt32LE(d.offset, 12);
  h.writeUInt32LE(d.length, 16);
  return h;
}

/** Reads the shared H2CData / C2HData / R2T fields from a 24-byte header. */
export function decodeDataHeader(h: Buffer): DataHeader {
  return { cccid: h.readUInt16LE(8), ttag: h.readUInt16LE(10), offset: h.readUInt32LE(12), length: h.readUInt32LE(16) };
}

/** Offsets of H2CData fields, for FEI values. */
export const H2COffset = { cccid: 8, ttag: 10, datao: 12, datal: 16 } as const;

/**
 * Encodes a termination request (H2CTermReq or C2HTermReq) with fatal error status `fes`,
 * information `fei` (for Invalid Header Field: the byte offset of the bad field) and up to
 * 128 bytes of the offending PDU header as error data. Termination requests carry no digests.
 */
export function encodeTermReq(type: typeof PduType.H2CTermReq | typeof PduType.C2HTermReq, fes: number, fei: number, errorData?: Buffer): Buffer {
  const ed = errorData ? errorData.subarray(0, TERM_REQ_MAX_PLEN - 24) : Buffer.alloc(0);
  const b = Buffer.alloc(24 + ed.length);
  writeCommonHeader(b, { type, flags: 0, hlen: 24, pdo: 0, plen: b.length });
  b.writeUInt16LE(fes, 8);
  b.writeUInt32LE(fei >>> 0, 10);
  ed.copy(b, 24);
  return b;
}

/** Decoded termination request. */
export interface TermReq {
  fes: number;
  fei: number;
  errorData: Buffer;
}

/** Decodes a termination request from its header and data. */
export function decodeTermReq(h: Buffer, data?: Buffer): TermReq {
  return { fes: h.readUInt16LE(8), fei: h.readUInt32LE(10), errorData: data ?? Buffer.alloc(0) };
}
