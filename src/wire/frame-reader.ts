/**
 * Splits a TCP byte stream into length-prefixed frames (u32 little-endian length at
 * offset 0, counting the whole frame). A frame inside one chunk is passed on as a view of
 * the chunk (or copied, when the chunk's memory is reused: `transient`); a frame spanning
 * chunks is copied once into a buffer of its exact size as its bytes arrive (no chunk lists,
 * no Buffer.concat). A `place` hook may instead name where a frame's payload goes — the
 * caller's own buffer, e.g. the host read's reply — so that those bytes are copied once,
 * from the socket's chunk to their final place (DESIGN "Performance principles").
 */
import { CopySlab } from '../net/index.ts';
import { ProtocolError } from './protocol.ts';

/**
 * Where the payload of a frame goes, asked once its first `minFrame` bytes (the fixed
 * header) are known: a buffer of exactly `frameLength - minFrame` bytes, or undefined to
 * assemble the frame as usual. The header passed is valid only during the call, and so is
 * the header then handed to the frame callback with the placed payload.
 */
export type PayloadPlacer = (head: Buffer, frameLength: number) => Buffer | undefined;

/** Options of a FrameReader. */
export interface FrameReaderOptions {
  /**
   * The chunks pushed are reused by the caller after push() returns (a socket `onread`
   * buffer): whole frames handed out are then always copies (packed into shared slabs,
   * CopySlab), while the header that comes with a placed payload is a view valid only
   * during the callback.
   */
  transient?: boolean;
  /** Payload placement for frames that are not inside one chunk or are transient. */
  place?: PayloadPlacer;
}

/**
 * Incremental frame splitter. Feed chunks with push(); frames come out of the callback as
 * `(frame)`, or as `(head, payload)` when the payload went where `place` said (`head` is
 * then the first `minFrame` bytes only).
 */
export class FrameReader {
  /** The frame being assembled (or, when placed, its header), and how much of it is in. */
  private cur: Buffer | null = null;
  private have = 0;
  private len = 0;
  /** The placed payload of the current frame, if any, and how much of it is in. */
  private dest: Buffer | null = null;
  private destHave = 0;
  /** Bytes of the next frame's length field seen so far (a length split across chunks). */
  private readonly lenBuf = Buffer.alloc(4);
  private lenHave = 0;
  private readonly transient: boolean;
  private readonly place?: PayloadPlacer;
  /** Where copies of whole frames out of transient chunks go. */
  private readonly copies: CopySlab | null;

  /**
   * @param minFrame smallest legal frame (bytes): also the fixed header `place` is shown.
   * @param maxFrame largest legal frame (bytes).
   * @param onFrame called synchronously with each whole frame.
   */
  constructor(
    private readonly minFrame: number,
    private readonly maxFrame: number,
    private readonly onFrame: (frame: Buffer, placed?: Buffer) => void,
    o: FrameReaderOptions = {},
  ) {
    this.transient = o.transient === true;
    this.place = o.place;
    this.copies = this.transient ? new CopySlab() : null;
  }

  /** True while a frame is partly read: the frame currently being assembled or placed. */
  get midFrame(): boolean {
    return this.cur !== null || this.lenHave > 0;
  }

  /**
   * Adds bytes from the stream.
   * @throws ProtocolError when a frame length is outside [minFrame, maxFrame].
   */
  push(chunk: Buffer): void {
    let off = 0;
    const end = chunk.length;
    while (off < end) {
      if (this.cur === null) {
        // Between frames: whole frames inside the chunk go out without assembly.
        if (this.lenHave === 0 && end - off >= 4) {
          const len = this.check(chunk.readUInt32LE(off));
          if (end - off >= len && (!this.transient || !this.place)) {
            const f = chunk.subarray(off, off + len);
            this.onFrame(this.copies ? this.copies.copy(f) : f);
            off += len;
            continue;
          }
          if (end - off >= len) {
            // Transient with a placer: place the payload if asked, else copy the frame.
            const dest = this.place!(chunk.subarray(off, off + this.minFrame), len);
            if (dest) {
              chunk.copy(dest, 0, off + this.minFrame, off + len);
              this.onFrame(chunk.subarray(off, off + this.minFrame), dest);
            } else {
              this.onFrame(this.copies!.copy(chunk.subarray(off, off + len)));
            }
            off += len;
            continue;
          }
          this.begin(len);
        } else {
          const n = Math.min(4 - this.lenHave, end - off);
          chunk.copy(this.lenBuf, this.lenHave, off, off + n);
          this.lenHave += n;
          off += n;
          if (this.lenHave < 4) return;
          this.lenHave = 0;
          this.begin(this.check(this.lenBuf.readUInt32LE(0)));
          this.lenBuf.copy(this.cur!, 0);
          this.have = 4;
          continue;
        }
      }
      off = this.fill(chunk, off);
    }
  }

  /** Starts assembling a frame of `len` bytes. */
  private begin(len: number): void {
    this.len = len;
    this.have = 0;
    // With a placer, only the header is assembled until the placer has seen it.
    this.cur = Buffer.allocUnsafe(this.place ? this.minFrame : len);
    this.dest = null;
    this.destHave = 0;
  }

  /** Copies bytes of the current frame from `chunk` at `off`; returns the new offset. */
  private fill(chunk: Buffer, off: number): number {
    const cur = this.cur!;
    if (this.dest !== null) {
      const n = Math.min(this.dest.length - this.destHave, chunk.length - off);
      chunk.copy(this.dest, this.destHave, off, off + n);
      this.destHave += n;
      if (this.destHave === this.dest.length) this.finish(cur, this.dest);
      return off + n;
    }
    const n = Math.min(cur.length - this.have, chunk.length - off);
    chunk.copy(cur, this.have, off, off + n);
    this.have += n;
    off += n;
    if (this.have < cur.length) return off;
    if (cur.length === this.len) {
      this.finish(cur, undefined);
      return off;
    }
    // The header of a frame with a placer is in: ask where the payload goes.
    const dest = this.place!(cur, this.len);
    if (dest) {
      if (dest.length !== this.len - this.minFrame) throw new RangeError(`placer gave ${dest.length} bytes for a ${this.len - this.minFrame}-byte payload`);
      this.dest = dest;
      if (dest.length === 0) this.finish(cur, dest);
      return off;
    }
    const whole = Buffer.allocUnsafe(this.len);
    cur.copy(whole, 0);
    this.cur = whole;
    return off;
  }

  private finish(frame: Buffer, placed: Buffer | undefined): void {
    this.cur = null;
    this.dest = null;
    this.have = 0;
    this.destHave = 0;
    this.onFrame(frame, placed);
  }

  private check(len: number): number {
    if (len < this.minFrame || len > this.maxFrame) throw new ProtocolError(`frame length ${len} outside [${this.minFrame}, ${this.maxFrame}]`);
    return len;
  }
}
