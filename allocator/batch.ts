/**
 * What one group commit ("batch") of the write path is made of: the records it seals, the
 * extents it writes (one pwritev each: a run of blocks in one segment, built from whole
 * buffers and slices of host write buffers without copying), and the list of map updates
 * to apply once written, in build order (which is seq order, see write-path.ts).
 */
import { PAGE } from './layout.ts';
import type { RunWriter } from './summary.ts';
import type { HostOp, MoveOp } from './ops.ts';

/** A record being built (cold: within one batch; host: possibly across batches). */
export interface Rec {
  stream: number;
  seg: number;
  /** Block of its header within the segment. */
  hdrPos: number;
  /** Seq, assigned when sealed (0 while open). */
  seq: number;
  /** Host records: generation (1, 2, ... in opening order); cold records: 0. */
  gen: number;
  hdr: Buffer;
  w: RunWriter;
  hasTrim: boolean;
}

/** A run of blocks within one segment written with one pwritev. */
export interface Extent {
  seg: number;
  /** First block within the segment. */
  start: number;
  /** Blocks in it. */
  n: number;
  bufs: Buffer[];
  /** Pending slice [s0, s1) of `src` (consecutive pages of one host buffer). */
  src: Buffer | null;
  s0: number;
  s1: number;
}

/** Appends a whole buffer (one block) to the extent. */
export function pushBuf(e: Extent, buf: Buffer): void {
  flushExt(e);
  e.bufs.push(buf);
  e.n++;
}

/** Turns the extent's pending slice into an iovec. */
export function flushExt(e: Extent): void {
  if (e.src) {
    e.bufs.push(e.src.subarray(e.s0, e.s1));
    e.src = null;
  }
}

/** Appends the page at `off` of `src`, extending the pending slice when it continues it. */
export function pushSlice(e: Extent, src: Buffer, off: number): void {
  e.n++;
  if (e.src === src && e.s1 === off) {
    e.s1 += PAGE;
    return;
  }
  if (e.src) e.bufs.push(e.src.subarray(e.s0, e.s1));
  e.src = src;
  e.s0 = off;
  e.s1 = off + PAGE;
}

/**
 * One group commit under construction. The apply list (parallel arrays, build order =
 * seq order) holds data runs (kind 0: `count` pages from `first` at blocks from `block`,
 * crcs from `crcs[crc0]`) and trims (kind 1).
 */
export class Batch {
  readonly exts: Extent[] = [];
  readonly cur: Array<Rec | null> = [null, null];
  readonly curExt: Array<Extent | null> = [null, null];
  readonly kind: number[] = [];
  readonly key: number[] = [];
  readonly first: number[] = [];
  readonly count: number[] = [];
  readonly version: number[] = [];
  readonly block: number[] = [];
  readonly crc0: number[] = [];
  readonly rec: Rec[] = [];
  readonly crcs: number[] = [];
  readonly done: HostOp[] = [];
  readonly moves: MoveOp[] = [];
  readonly sealedSegs: number[] = [];
  /** Callers waiting for the host record to be sealed, served by this batch. */
  sealWaiters: Array<() => void> = [];
  /** Generation of the host record sealed in this batch (0: none). */
  sealedHot = 0;
  /** Resolves with the write's error, or null, once the batch is written. */
  written: Promise<Error | null> = Promise.resolve(null);
  blocks = 0;
  headers = 0;
  coldHeaders = 0;
  hostPages = 0;
  movedPages = 0;
  /** Of the cold pages, those a read relocated (relocate.ts). */
  relocatedPages = 0;
  newPages = 0;
}
