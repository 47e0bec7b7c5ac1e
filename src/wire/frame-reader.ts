/**
 * Splits a TCP byte stream into length-prefixed frames (u32 little-endian length at
 * offset 0, counting the whole frame). A frame inside one chunk is returned as a view
 * (no copy); a frame spanning chunks is assembled once.
 */
import { ProtocolError } from './protocol.ts';

/** Incremental frame splitter. Feed chunks with push(); frames come out of the callback. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private need = 0;

  /**
   * @param minFrame smallest legal frame (bytes); @param maxFrame largest legal frame (bytes).
   * @param onFrame called synchronously with each whole frame.
   */
  constructor(
    private readonly minFrame: number,
    private readonly maxFrame: number,
    private readonly onFrame: (frame: Buffer) => void,
  ) {}

  /**
   * Adds bytes from the stream.
   * @throws ProtocolError when a frame length is outside [minFrame, maxFrame].
   */
  push(chunk: Buffer): void {
    // Fast path: nothing buffered, whole frames inside this chunk.
    if (this.buffered === 0) {
      let off = 0;
      while (chunk.length - off >= 4) {
        const len = this.check(chunk.readUInt32LE(off));
        if (chunk.length - off < len) break;
        this.onFrame(chunk.subarray(off, off + len));
        off += len;
      }
      if (off === chunk.length) return;
      chunk = chunk.subarray(off);
    }
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.need === 0) {
        if (this.buffered < 4) return;
        const first = this.chunks[0].length >= 4 ? this.chunks[0] : this.merge();
        this.need = this.check(first.readUInt32LE(0));
      }
      if (this.buffered < this.need) return;
      const all = this.merge();
      const frame = all.subarray(0, this.need);
      const rest = all.subarray(this.need);
      this.need = 0;
      this.chunks = rest.length ? [rest] : [];
      this.buffered = rest.length;
      this.onFrame(frame);
    }
  }

  private check(len: number): number {
    if (len < this.minFrame || len > this.maxFrame) throw new ProtocolError(`frame length ${len} outside [${this.minFrame}, ${this.maxFrame}]`);
    return len;
  }

  private merge(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.buffered)];
    return this.chunks[0];
  }
}
