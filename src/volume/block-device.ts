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
  | 'EFENCED';

/** A failed block operation, with a code a frontend maps to its protocol's error. */
export class BlockDeviceError extends Error {
  override name = 'BlockDeviceError';
  constructor(readonly code: BlockErrorCode, message: string) {
    super(message);
  }
}

/** A volume as frontends see it. All methods reject with BlockDeviceError. */
export interface BlockDevice {
  /** Size in bytes (a multiple of blockSize). */
  readonly size: number;
  /** Natural block size in bytes (4096): the page size of the allocator below. */
  readonly blockSize: number;
  /** Reads `length` bytes at `offset`. Never-written ranges read as zeros. */
  read(offset: number, length: number): Promise<Buffer>;
  /** Writes `data` at `offset`; with `fua` it is durable on every replica when this resolves. */
  write(offset: number, data: Buffer, fua?: boolean): Promise<void>;
  /** Makes every write completed before this call durable on every replica. */
  flush(): Promise<void>;
  /** Deallocates a range; it reads as zeros afterwards. */
  trim(offset: number, length: number): Promise<void>;
  /** Sets a range to zeros (deallocating whole pages where it can). */
  writeZeroes(offset: number, length: number, fua?: boolean): Promise<void>;
}
