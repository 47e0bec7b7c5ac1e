/**
 * A BlockDevice over one local file (pread/pwrite, fdatasync for Flush and FUA). For tests and
 * single-machine use before the cluster volume; several processes may open the same file and
 * see each other's completed writes (one page cache). Optionally guarded by a FileLease:
 * every operation then fails with EFENCED once another holder took the lease.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { BlockDeviceError, type BlockDevice, type BlockExtent } from './block-device.ts';
import type { FileLease } from './file-lease.ts';

/** Options for FileBlockDevice.open. */
export interface FileDeviceOptions {
  /** Size in bytes; the file is created/extended (sparse) to it. Default: the file's size. */
  size?: number;
  /** Natural block size, bytes. Default 4096. */
  blockSize?: number;
  /** Fence operations with this lease (EFENCED when not held). */
  lease?: FileLease;
}

const ZERO_CHUNK = Buffer.alloc(1 << 20);

/** A file-backed BlockDevice; see the module comment. */
export class FileBlockDevice implements BlockDevice {
  private closed = false;

  private constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    readonly blockSize: number,
    private readonly lease?: FileLease,
  ) {}

  /**
   * Opens (creating if needed) the file at `path`. Throws BlockDeviceError('EINVAL') if the
   * size is not a positive multiple of the block size.
   */
  static async open(path: string, o: FileDeviceOptions = {}): Promise<FileBlockDevice> {
    const fh = await open(path, 'a+').then(async (h) => {
      await h.close();
      return open(path, 'r+');
    });
    const bs = o.blockSize ?? 4096;
    let size = (await fh.stat()).size;
    if (o.size !== undefined && o.size !== size) {
      if (o.size > size) await fh.truncate(o.size);
      size = o.size;
    }
    if (size <= 0 || size % bs !== 0) {
      await fh.close();
      throw new BlockDeviceError('EINVAL', `size ${size} of ${path} is not a positive multiple of ${bs}`);
    }
    return new FileBlockDevice(fh, size, bs, o.lease);
  }

  /** Bytes allocated on disk (st_blocks × 512), for NUSE. */
  async allocatedBytes(): Promise<number> {
    const st = await this.fh.stat();
    return Math.min(this.size, st.blocks * 512);
  }

  private async check(offset: number, length: number): Promise<void> {
    if (this.closed) throw new BlockDeviceError('ESHUTDOWN', 'device closed');
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new BlockDeviceError('EINVAL', `range ${offset}+${length} outside [0, ${this.size})`);
    }
    if (this.lease) await this.lease.check();
  }

  private async io<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      if (e instanceof BlockDeviceError) throw e;
      throw new BlockDeviceError('EIO', (e as Error).message);
    }
  }

  /** Reads `length` bytes at `offset` (holes read as zeros). @throws BlockDeviceError EINVAL, EIO, EFENCED, ESHUTDOWN. */
  async read(offset: number, length: number): Promise<Buffer> {
    await this.check(offset, length);
    return this.io(async () => {
      const buf = Buffer.alloc(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await this.fh.read(buf, done, length - done, offset + done);
        if (bytesRead === 0) break; // beyond EOF of a sparse tail: zeros
        done += bytesRead;
      }
      return buf;
    });
  }

  /** Writes `data` at `offset`; with `fua`, fdatasync before resolving. @throws BlockDeviceError EINVAL, EIO, EFENCED, ESHUTDOWN. */
  async write(offset: number, data: Buffer, fua = false): Promise<void> {
    await this.check(offset, data.length);
    await this.io(async () => {
      let done = 0;
      while (done < data.length) {
        const { bytesWritten } = await this.fh.write(data, done, data.length - done, offset + done);
        done += bytesWritten;
      }
      if (fua) await this.fh.datasync();
    });
  }

  /** fdatasync: every completed write is durable. @throws BlockDeviceError EIO, EFENCED, ESHUTDOWN. */
  async flush(): Promise<void> {
    if (this.closed) throw new BlockDeviceError('ESHUTDOWN', 'device closed');
    if (this.lease) await this.lease.check();
    await this.io(() => this.fh.datasync());
  }

  /** Deallocates a range: writes zeros (Node has no hole punching). */
  async trim(offset: number, length: number): Promise<void> {
    await this.writeZeroes(offset, length, false);
  }

  /** Writes zeros over a range, in 1 MiB chunks; with `fua`, fdatasync before resolving. */
  async writeZeroes(offset: number, length: number, fua = false): Promise<void> {
    await this.check(offset, length);
    await this.io(async () => {
      for (let done = 0; done < length; ) {
        const n = Math.min(ZERO_CHUNK.length, length - done);
        const { bytesWritten } = await this.fh.write(ZERO_CHUNK, 0, n, offset + done);
        done += bytesWritten;
      }
      if (fua) await this.fh.datasync();
    });
  }

  /**
   * Allocation state of [offset, offset+length) (bytes): reported as all data (not hole, not
   * zero), which the NBD spec allows for any block. Node's fs API has no lseek(SEEK_DATA /
   * SEEK_HOLE) to find a sparse file's holes cheaply, and trim here writes zeros rather than
   * punching holes, so there would be few to find.
   * @throws BlockDeviceError EINVAL outside the device, EFENCED, ESHUTDOWN.
   */
  async blockStatus(offset: number, length: number): Promise<BlockExtent[]> {
    await this.check(offset, length);
    return length ? [{ offset, length, hole: false, zero: false }] : [];
  }

  /** Closes the file; later operations fail with ESHUTDOWN. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}
