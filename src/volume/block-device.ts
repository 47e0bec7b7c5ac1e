/**
 * The face every frontend (NBD, NVMe/TCP) serves: a byte-addressed device of fixed size.
 * Offsets and lengths are bytes; implementations may require `blockSize` alignment for
 * best speed but must accept any range inside [0, size).
 */

/** Error codes a BlockDevice reports; frontends map them to protocol statuses. */
export type BlockErrorCode =
  /** Bad argument, e.g. a range outside the device. */
  | 'EINVAL'
  /** I/O failed (a member unreachable, a device error). */
  | 'EIO'
  /** Out of space. */
  | 'ENOSPC'
  /** Every copy failed its checksum. */
  | 'EBADCRC'
  /** The cluster map is newer than ours and could not be refreshed. */
  | 'ESTALE'
  /** The device is closing. */
  | 'ESHUTDOWN'
  /** Another attachment holds a newer write lease (fenced, DESIGN promise 5). */
  | 'EFENCED'
  /** The device is read-only (e.g. a snapshot view): writes, trims and write-zeroes are refused. */
  | 'EROFS';

/** A failed block operation, with a code a frontend maps to its protocol's error. */
export class BlockDeviceError extends Error {
  override name = 'BlockDeviceError';
  constructor(readonly code: BlockErrorCode, message: string) {
    super(message);
  }
}

/**
 * One run of a device's bytes with the same allocation state, as BlockDevice.blockStatus
 * reports it (feeds NBD's `base:allocation` context: NBD protocol, "Metadata querying").
 * Offsets and lengths in bytes; runs are reported at the device's blockSize granularity.
 */
export interface BlockExtent {
  /** First byte of the run. */
  offset: number;
  /** Length of the run in bytes (> 0). */
  length: number;
  /** Not allocated (never written, or trimmed): NBD_STATE_HOLE. */
  hole: boolean;
  /** Known to read as zeros: NBD_STATE_ZERO. `false` means "not known", never "not zero". */
  zero: boolean;
}

/** A volume as frontends see it. All methods reject with BlockDeviceError. */
export interface BlockDevice {
  /** Size in bytes (a multiple of blockSize). */
  readonly size: number;
  /** Natural block size in bytes (4096): the page size of the allocator below. */
  readonly blockSize: number;
  /**
   * True for a device that refuses every change (e.g. a snapshot view): frontends export it
   * read-only (NBD_FLAG_READ_ONLY) and answer writes, trims and write-zeroes with a
   * permission error (NBD_EPERM) without calling the device. Absent means writable.
   */
  readonly readOnly?: boolean;
  /** Reads `length` bytes at `offset`. Never-written ranges read as zeros. */
  read(offset: number, length: number): Promise<Buffer>;
  /**
   * Reads `into.length` bytes at `offset` into the caller's buffer (a frontend's reused
   * one), with the errors of read(). Optional: frontends fall back to read(). After a
   * rejection, reads still in flight may write into `into` later: do not reuse it.
   */
  readInto?(offset: number, into: Buffer): Promise<void>;
  /**
   * Writes `data` at `offset`; with `fua` it is durable on every replica when this resolves.
   * `data` stays the caller's: once this resolves, the caller may reuse it (a frontend's
   * pooled buffer), so keep no reference to it beyond the call — copy what must outlive it.
   * Socket writes of it are the exception the pool handles itself (net/writeHeld).
   */
  write(offset: number, data: Buffer, fua?: boolean): Promise<void>;
  /** Makes every write completed before this call durable on every replica. */
  flush(): Promise<void>;
  /** Deallocates a range; it reads as zeros afterwards. */
  trim(offset: number, length: number): Promise<void>;
  /** Sets a range to zeros (deallocating whole pages where it can). */
  writeZeroes(offset: number, length: number, fua?: boolean): Promise<void>;
  /**
   * Allocation state of [offset, offset+length) (bytes): runs in order, the first starting
   * at `offset`, consecutive, together covering the range (they may stop short of its end,
   * never go past it). Optional: a device without it is reported as all data (not hole, not
   * zero), which is always correct, only less useful to sparse-aware clients.
   * @throws BlockDeviceError EINVAL outside the device, EIO, ESHUTDOWN.
   */
  blockStatus?(offset: number, length: number): Promise<BlockExtent[]>;
}
