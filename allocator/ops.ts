/** Queued operations and per-batch bookkeeping of the allocator's group-commit loop. */

/** A host write waiting for the next group commit. */
export interface WriteOp {
  kind: 1;
  key: number;
  firstPage: number;
  data: Buffer;
  version: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

/** A host trim waiting for the next group commit. */
export interface TrimOp {
  kind: 2;
  key: number;
  firstPage: number;
  count: number;
  version: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

/** A host operation. */
export type HostOp = WriteOp | TrimOp;

/** One live page the cleaner copies out of a victim segment. */
export interface MoveItem {
  key: number;
  page: number;
  version: number;
  crc: number;
  /** The page's 4 KiB as read from the victim. */
  data: Buffer;
  /** Block it is copied from. */
  from: number;
}

/** The cleaner's batch of live pages from one victim. */
export interface MoveOp {
  items: MoveItem[];
  /** Age (log clock) of the victim's youngest data; the copies inherit it. */
  age: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

/** A record being built: header buffer plus what to apply to the map once written. */
export interface BuiltRecord {
  type: number;
  stream: number;
  seg: number;
  seq: number;
  header: Buffer;
  n: number;
  /** Blocks of the pages (absolute block numbers in the region). */
  blocks: number[];
  keys: number[];
  pages: number[];
  versions: number[];
  /** crc32c per page (write/move) or page count per entry (trim). */
  crcs: number[];
}

/** A run of blocks within one segment written with one pwritev. */
export interface Extent {
  seg: number;
  /** First block within the segment. */
  start: number;
  bufs: Buffer[];
}
