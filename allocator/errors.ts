/** Typed errors of the allocator. Each carries a stable `code` for mapping to protocol statuses. */

/** The partition has no free space left for this append (like ENOSPC). Nothing was written. */
export class AllocatorFullError extends Error {
  override name = 'AllocatorFullError';
  readonly code = 'ENOSPC';
}

/** A page read back from the device does not match its recorded crc32c. No data is returned. */
export class ChecksumError extends Error {
  override name = 'ChecksumError';
  readonly code = 'EBADCRC';
  constructor(message: string, readonly key: number, readonly page: number) {
    super(message);
  }
}

/** The region does not hold a valid allocator superblock, or holds an incompatible format. */
export class FormatError extends Error {
  override name = 'FormatError';
  readonly code = 'EFORMAT';
}

/** The allocator was closed, or an argument is out of range. */
export class AllocatorStateError extends Error {
  override name = 'AllocatorStateError';
  readonly code = 'EINVAL';
}
