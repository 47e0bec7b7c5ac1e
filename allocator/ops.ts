/** Operations queued for the allocator's group-commit loop. */

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
  /** The page's 4 KiB as read from the victim. */
  data: Buffer;
  /** Absolute block it is copied from. */
  from: number;
  /** Victim segment it comes from. */
  victim: number;
}

/** A batch of live pages for the cold stream. */
export interface MoveOp {
  items: MoveItem[];
  /** Start a fresh cold segment first (the open one has too little room left to be worth a header). */
  fresh: boolean;
  /** Pages a read found scattered (relocate.ts), not a cleaner's: counted apart. */
  relocate: boolean;
  resolve: () => void;
  reject: (e: Error) => void;
}
