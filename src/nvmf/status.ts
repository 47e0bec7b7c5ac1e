/**
 * NVMe completion status values and the mapping from BlockDeviceError codes to them.
 * A status is stored as the 15-bit Status Field without the phase tag:
 * bits 7:0 SC, bits 10:8 SCT, bit 14 DNR (NVMe Base 2.0, figure "Completion Queue Entry:
 * Status Field"). `encodeStatus` shifts it left by one for the CQE's DW3[31:16].
 */
import type { BlockErrorCode } from '../volume/index.ts';

/** Status Code Types (NVMe Base 2.0 "Status Code Type Values"). */
export const Sct = { GENERIC: 0, COMMAND_SPECIFIC: 1, MEDIA: 2, PATH: 3 } as const;

/** Do Not Retry bit in our status representation. */
export const DNR = 0x4000;

/** Builds a status from SCT and SC, with DNR when `dnr`. */
export function status(sct: number, sc: number, dnr = false): number {
  return ((sct & 7) << 8) | (sc & 0xff) | (dnr ? DNR : 0);
}

/** The SCT of a status. */
export function sctOf(s: number): number {
  return (s >> 8) & 7;
}

/** The SC of a status. */
export function scOf(s: number): number {
  return s & 0xff;
}

/** Successful completion. */
export const SUCCESS = 0;

/** Named statuses used by the target (values from NVMe Base 2.0 §4.6.1.2, NVMe-oF 1.1 §3.3). */
export const S = {
  // Generic command status (SCT 0)
  INVALID_OPCODE: status(0, 0x01, true),
  INVALID_FIELD: status(0, 0x02, true),
  CID_CONFLICT: status(0, 0x03, true),
  DATA_TRANSFER_ERROR: status(0, 0x04),
  INTERNAL_ERROR: status(0, 0x06),
  ABORT_REQUESTED: status(0, 0x07),
  ABORTED_SQ_DELETION: status(0, 0x08),
  INVALID_NS: status(0, 0x0b, true),
  CMD_SEQUENCE_ERROR: status(0, 0x0c, true),
  INVALID_SGL_DESCRIPTOR: status(0, 0x0d, true),
  DATA_SGL_LENGTH_INVALID: status(0, 0x0f, true),
  SGL_TYPE_INVALID: status(0, 0x11, true),
  SGL_OFFSET_INVALID: status(0, 0x16, true),
  HOST_ID_INCONSISTENT: status(0, 0x18, true),
  KEEP_ALIVE_EXPIRED: status(0, 0x19, true),
  KEEP_ALIVE_INVALID: status(0, 0x1a, true),
  NS_WRITE_PROTECTED: status(0, 0x20, true),
  TRANSIENT_TRANSPORT_ERROR: status(0, 0x22),
  LBA_OUT_OF_RANGE: status(0, 0x80, true),
  CAPACITY_EXCEEDED: status(0, 0x81, true),
  NS_NOT_READY: status(0, 0x82),
  // Command specific (SCT 1)
  INVALID_QUEUE_ID: status(1, 0x01, true),
  INVALID_QUEUE_SIZE: status(1, 0x02, true),
  ABORT_LIMIT_EXCEEDED: status(1, 0x03, true),
  AER_LIMIT_EXCEEDED: status(1, 0x05, true),
  INVALID_LOG_PAGE: status(1, 0x09, true),
  FEATURE_NOT_SAVEABLE: status(1, 0x0d, true),
  FEATURE_NOT_CHANGEABLE: status(1, 0x0e, true),
  CONFLICTING_ATTRIBUTES: status(1, 0x80, true),
  // Fabrics command specific (SCT 1, NVMe-oF 1.1 figure "Fabrics Command Status Values")
  CONNECT_INCOMPATIBLE_FORMAT: status(1, 0x80, true),
  CONNECT_CTRL_BUSY: status(1, 0x81),
  CONNECT_INVALID_PARAMETERS: status(1, 0x82, true),
  CONNECT_RESTART_DISCOVERY: status(1, 0x83, true),
  CONNECT_INVALID_HOST: status(1, 0x84, true),
  INVALID_QUEUE_TYPE: status(1, 0x85, true),
  // Media and data integrity (SCT 2)
  WRITE_FAULT: status(2, 0x80),
  UNRECOVERED_READ_ERROR: status(2, 0x81),
  COMPARE_FAILURE: status(2, 0x85, true),
  // Path related (SCT 3)
  ANA_PERSISTENT_LOSS: status(3, 0x01),
  ANA_INACCESSIBLE: status(3, 0x02),
  ANA_TRANSITION: status(3, 0x03),
} as const;

/** Completion-queue-entry form of a status: DW3 bits 31:17 hold it, bit 16 is the phase tag (0). */
export function encodeStatus(s: number): number {
  return (s << 1) & 0xfffe;
}

/** Inverse of encodeStatus (drops the phase tag). */
export function decodeStatus(field: number): number {
  return (field >> 1) & 0x7fff;
}

/** A command failure carrying an NVMe status (and optionally a CQE DW0 value). */
export class NvmeStatusError extends Error {
  override name = 'NvmeStatusError';
  constructor(
    readonly status: number,
    message: string,
    /** Completion DW0 (e.g. Connect's IATTR/IPO). */
    readonly result = 0,
    /** Byte offset (in the SQE) of the offending parameter, for the error log. */
    readonly paramOffset = 0xffff,
  ) {
    super(message);
  }
}

/**
 * Maps a BlockDeviceError code to the NVMe status a host should see.
 *  - EINVAL → Invalid Field in Command; EIO → Write Fault / Unrecovered Read Error (retryable);
 *  - ENOSPC → Capacity Exceeded; EBADCRC → Unrecovered Read Error with DNR (no good copy left);
 *  - EFENCED (another gateway took the volume's write lease) → ANA Transition, so a multipath
 *    host retries on another path and re-reads this path's ANA log;
 *  - ESTALE (cluster map could not be refreshed) → Namespace Not Ready (retryable);
 *  - ESHUTDOWN → ANA Inaccessible (this path is going away);
 *  - EROFS (a read-only device, e.g. a snapshot) → Namespace is Write Protected (generic 0x20, DNR).
 */
export function statusForBlockError(code: BlockErrorCode, write: boolean): number {
  switch (code) {
    case 'EINVAL':
      return S.INVALID_FIELD;
    case 'EIO':
      return write ? S.WRITE_FAULT : S.UNRECOVERED_READ_ERROR;
    case 'ENOSPC':
      return S.CAPACITY_EXCEEDED;
    case 'EBADCRC':
      return status(Sct.MEDIA, 0x81, true);
    case 'EFENCED':
      return S.ANA_TRANSITION;
    case 'ESTALE':
      return S.NS_NOT_READY;
    case 'ESHUTDOWN':
      return S.ANA_INACCESSIBLE;
    case 'EROFS':
      return S.NS_WRITE_PROTECTED;
    default:
      return S.INTERNAL_ERROR;
  }
}
