/**
 * In-memory page map of one owner key: logical page -> device block, with the page's
 * version and crc32c. Grows by doubling. 16 bytes per page slot
 * (Int32 block + Float64 version + Uint32 crc).
 */
export class PageTable {
  /** Block index within the region, or -1 when unmapped (reads as zeros). */
  blocks: Int32Array;
  /** Version of the newest write or trim applied to each page (0: never written). */
  versions: Float64Array;
  /** crc32c of each mapped page's 4 KiB. */
  crcs: Uint32Array;
  /** Number of mapped pages. */
  mapped = 0;

  constructor(capacity = 16) {
    this.blocks = new Int32Array(capacity).fill(-1);
    this.versions = new Float64Array(capacity);
    this.crcs = new Uint32Array(capacity);
  }

  /** Makes sure page index `page` has a slot. */
  ensure(page: number): void {
    if (page < this.blocks.length) return;
    let cap = this.blocks.length;
    while (cap <= page) cap *= 2;
    const blocks = new Int32Array(cap).fill(-1);
    blocks.set(this.blocks);
    const versions = new Float64Array(cap);
    versions.set(this.versions);
    const crcs = new Uint32Array(cap);
    crcs.set(this.crcs);
    this.blocks = blocks;
    this.versions = versions;
    this.crcs = crcs;
  }

  /** Block of `page`, or -1. */
  block(page: number): number {
    return page < this.blocks.length ? this.blocks[page] : -1;
  }
}
