/**
 * The two append streams of a partition's log — hot (host writes and trims) and cold
 * (cleaner copies) — and the records being built in them: where each stream appends, how
 * much room it can get, and how a page or a header joins a group commit (batch.ts). The
 * write path (write-path.ts) decides what goes into a batch; this file lays it out in
 * segments: a record is one header block (its summary, summary.ts) followed by its data
 * blocks, and a stream moves to a fresh segment when the open one has no room left.
 */
import { BODY_MAX, initHeader, PAGE, REC_CLEANER, REC_HOST, sealHeader } from './layout.ts';
import { MIN_PAGES_PER_HEADER, RunWriter, WORST_PAGE_RUN } from './summary.ts';
import { pushBuf, pushSlice, type Batch, type Extent, type Rec } from './batch.ts';
import type { PartitionState } from './partition-state.ts';

/** Stream of host appends. */
export const HOT = 0;
/** Stream of cleaner copies. */
export const COLD = 1;
/** Free segments only the cleaner may take. */
export const RESERVE = 2;

/** Where a stream appends. */
export interface StreamState {
  /** Open segment, or -1. */
  seg: number;
  /** Next block within the segment. */
  pos: number;
  /** crc of the last header written in the segment (chain). */
  prev: number;
}

/** Append positions of the hot and cold streams, and the records being built in them. */
export class LogStreams {
  /** Per stream (HOT, COLD): open segment, next block, header chain. */
  readonly streams: StreamState[] = [{ seg: -1, pos: 0, prev: 0 }, { seg: -1, pos: 0, prev: 0 }];
  /** The host record still open across batches, or null. */
  hot: Rec | null = null;
  private hotGen = 0;
  private readonly S: number;

  /** `reclaim`: frees dying segments whose conditions hold (tried before giving up on a fresh segment). */
  constructor(private readonly st: PartitionState, private readonly reclaim: () => void) {
    this.S = st.geo.S;
  }

  /** Data blocks left after one header in the cold stream's open segment (0 when none). */
  coldRoom(): number {
    const c = this.streams[COLD];
    return c.seg < 0 ? 0 : Math.max(0, this.S - c.pos - 1);
  }

  /** Whether absolute block `block` lies in the host record still open (its header not yet written, its seq not yet given). */
  inOpenHost(block: number): boolean {
    const r = this.hot;
    return r !== null && block > r.seg * this.S + r.hdrPos && block <= (r.seg + 1) * this.S;
  }

  /** Blocks the stream can still get without waiting: room left plus takeable segments. */
  roomFor(stream: number): number {
    const s = this.streams[stream];
    const left = s.seg >= 0 ? this.S - s.pos : 0;
    const segsFree = Math.max(0, this.st.segs.freeCount - (stream === HOT ? RESERVE : 0));
    return left + segsFree * this.S;
  }

  /** Worst-case blocks `pages` data pages take, headers and segment ends included. */
  blocksNeeded(pages: number): number {
    return pages + Math.ceil(pages / MIN_PAGES_PER_HEADER) + 2 + Math.ceil(pages / Math.max(1, this.S - 1));
  }

  /**
   * Blocks a host write of `pages` pages takes: just its pages when they fit in the open
   * host record (header room for a worst-case run each) and in its segment, else the worst
   * case. Without the exact case, hosts would wait for a free segment with a few blocks of
   * the open one left, the cleaner would seal the record early to free its victims, and a
   * segment would carry two summaries instead of one (at 90 % utilisation, 45 % of host
   * records were cut short that way).
   */
  hostNeed(b: Batch, pages: number): number {
    const r = b.cur[HOT];
    const s = this.streams[HOT];
    if (r && s.seg >= 0 && this.S - s.pos >= pages && r.w.bytes + pages * WORST_PAGE_RUN <= BODY_MAX) return pages;
    return this.blocksNeeded(pages);
  }

  /**
   * Seals the stream's record under construction: assigns its seq, finishes its runs,
   * stamps the header and extends the segment's chain. A host record's header, whose slot
   * was skipped when its pages were written, joins its pages' extent when they are written
   * by this batch, and goes out as an extent of its own otherwise.
   */
  closeRecord(b: Batch, stream: number): void {
    const r = b.cur[stream];
    if (!r) return;
    const st = this.st;
    r.seq = ++st.seq;
    r.hdr.writeDoubleLE(r.seq, 8);
    const body = r.w.finish();
    this.streams[stream].prev = sealHeader(r.hdr, r.w.runs, r.w.dataPages, body, st.clock, st.durableSeq);
    if (r.hasTrim && r.seq > st.segs.trimSeq[r.seg]) st.segs.trimSeq[r.seg] = r.seq;
    if (stream === HOT) {
      // Opened in this batch, the record's pages follow its header slot in one extent: the
      // header joins that write (a FUA write costs one pwritev). Otherwise it goes alone.
      const e = b.exts.find((x) => x.seg === r.seg && x.start === r.hdrPos + 1);
      if (e) {
        e.bufs.unshift(r.hdr);
        e.start--;
        e.n++;
      } else b.exts.push({ seg: r.seg, start: r.hdrPos, n: 1, bufs: [r.hdr], src: null, s0: 0, s1: 0 });
      b.sealedHot = r.gen;
      this.hot = null;
    }
    b.headers++;
    if (stream === COLD) b.coldHeaders++;
    b.cur[stream] = null;
  }

  /** Leaves the stream's open segment (sealed once this batch is applied). */
  leaveSegment(b: Batch, stream: number): void {
    this.closeRecord(b, stream);
    const s = this.streams[stream];
    if (s.seg >= 0) b.sealedSegs.push(s.seg);
    s.seg = -1;
  }

  /** The stream's extent in this batch continuing at its append position. */
  extentAt(b: Batch, stream: number): Extent {
    const s = this.streams[stream];
    let e = b.curExt[stream];
    if (!e || e.seg !== s.seg || e.start + e.n !== s.pos) {
      e = { seg: s.seg, start: s.pos, n: 0, bufs: [], src: null, s0: 0, s1: 0 };
      b.exts.push(e);
      b.curExt[stream] = e;
    }
    return e;
  }

  /**
   * Starts a record in `stream`, moving to a new segment when fewer than `need` blocks are
   * left. Returns null when no segment can be had.
   */
  openRecord(b: Batch, stream: number, need: number): Rec | null {
    this.closeRecord(b, stream);
    const s = this.streams[stream];
    const S = this.S;
    if (s.seg < 0 || S - s.pos < need) {
      const segs = this.st.segs;
      let n = segs.take(stream === HOT ? RESERVE : 0);
      if (n < 0) {
        this.reclaim();
        n = segs.take(stream === HOT ? RESERVE : 0);
      }
      if (n < 0) return null;
      if (s.seg >= 0) b.sealedSegs.push(s.seg);
      s.seg = n;
      s.pos = 0;
      s.prev = 0;
    }
    const h = Buffer.allocUnsafe(PAGE);
    initHeader(h, stream === HOT ? REC_HOST : REC_CLEANER, stream, this.st.geo.uuidTag, s.seg, 0, s.prev);
    const r: Rec = { stream, seg: s.seg, hdrPos: s.pos, seq: 0, gen: stream === HOT ? ++this.hotGen : 0, hdr: h, w: new RunWriter(h), hasTrim: false };
    if (stream === HOT) {
      // The header slot is skipped now and written when the record is sealed.
      this.hot = r;
      s.pos++;
    } else {
      pushBuf(this.extentAt(b, stream), h);
      s.pos++;
    }
    b.blocks++;
    b.cur[stream] = r;
    return r;
  }

  /** Appends one data page (the 4 KiB at `off` of `src`) to the stream. Returns false when no segment can be had. */
  addPage(b: Batch, stream: number, key: number, page: number, version: number, crc: number, src: Buffer, off: number): boolean {
    const s = this.streams[stream];
    let r = b.cur[stream];
    if (!r || s.pos >= this.S || !r.w.addPage(key, page, version, crc)) {
      r = this.openRecord(b, stream, 2);
      if (!r) return false;
      r.w.addPage(key, page, version, crc);
    }
    const block = 1 + s.seg * this.S + s.pos;
    pushSlice(this.extentAt(b, stream), src, off);
    s.pos++;
    b.blocks++;
    const n = b.kind.length - 1;
    if (n >= 0 && b.rec[n] === r && b.kind[n] === 0 && b.key[n] === key && b.version[n] === version && b.first[n] + b.count[n] === page && b.block[n] + b.count[n] === block) {
      b.count[n]++;
    } else {
      b.kind.push(0);
      b.key.push(key);
      b.first.push(page);
      b.count.push(1);
      b.version.push(version);
      b.block.push(block);
      b.crc0.push(b.crcs.length);
      b.rec.push(r);
    }
    b.crcs.push(crc);
    return true;
  }
}
