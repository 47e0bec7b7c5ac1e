/**
 * A write lease kept in a small local file: a generation number (u64) and the holder's name.
 * `acquire()` bumps the generation (fencing the previous holder); `check()` fails with EFENCED
 * once the file names a newer generation than ours. For tests and single-machine setups where
 * several gateway processes share one FileBlockDevice; the cluster's lease (with generations
 * checked by the storage nodes, DESIGN promise 5) replaces it. Check-then-write is not atomic
 * here: a write already past its check when the lease moves still lands.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { BlockDeviceError } from './block-device.ts';

/** The lease file layout: generation u64 LE at 0, holder name (UTF-8, NUL padded) at 8..72. */
const RECORD = 72;

/** A file-based write lease; see the module comment. */
export class FileLease {
  private fh: FileHandle | undefined;
  private gen: bigint | undefined;

  /** @param path lease file (created if missing); @param holder this gateway's name. */
  constructor(
    readonly path: string,
    readonly holder: string,
  ) {}

  private async handle(): Promise<FileHandle> {
    if (!this.fh) {
      const h = await open(this.path, 'a+');
      await h.close();
      this.fh = await open(this.path, 'r+');
    }
    return this.fh;
  }

  private async readRecord(): Promise<{ gen: bigint; holder: string }> {
    const b = Buffer.alloc(RECORD);
    await (await this.handle()).read(b, 0, RECORD, 0);
    const end = b.indexOf(0, 8);
    return { gen: b.readBigUInt64LE(0), holder: b.toString('utf8', 8, end < 0 ? RECORD : end) };
  }

  /** The current generation and holder in the file. */
  current(): Promise<{ gen: bigint; holder: string }> {
    return this.readRecord();
  }

  /** Takes the lease: writes generation + 1 and our name, durably. Resolves with the new generation. */
  async acquire(): Promise<bigint> {
    const { gen } = await this.readRecord();
    const next = gen + 1n;
    const b = Buffer.alloc(RECORD);
    b.writeBigUInt64LE(next, 0);
    b.write(this.holder, 8, RECORD - 8, 'utf8');
    const h = await this.handle();
    await h.write(b, 0, RECORD, 0);
    await h.datasync();
    this.gen = next;
    return next;
  }

  /** True if we took the lease and nobody took it since. */
  async held(): Promise<boolean> {
    if (this.gen === undefined) return false;
    return (await this.readRecord()).gen === this.gen;
  }

  /** Throws BlockDeviceError('EFENCED') unless we hold the lease. */
  async check(): Promise<void> {
    if (this.gen === undefined) throw new BlockDeviceError('EFENCED', `lease ${this.path} not taken by ${this.holder}`);
    const r = await this.readRecord();
    if (r.gen !== this.gen) throw new BlockDeviceError('EFENCED', `lease ${this.path} moved to ${r.holder} (generation ${r.gen})`);
  }

  /** Closes the lease file (does not release the lease). */
  async close(): Promise<void> {
    await this.fh?.close();
    this.fh = undefined;
  }
}
