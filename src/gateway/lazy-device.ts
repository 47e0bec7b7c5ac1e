/**
 * A BlockDevice that attaches its volume on first use: NVMe/TCP subsystems are created for
 * every volume in the catalog, but a volume's write lease is taken only when a host sends
 * it I/O (attaching fences the previous holder). Its size follows the catalog.
 */
import { BlockDeviceError, type BlockDevice, type BlockExtent } from '../volume/block-device.ts';

/** See the module comment. */
export class LazyDevice implements BlockDevice {
  readonly blockSize = 4096;

  /**
   * @param open attaches the volume (called once at a time; again after a failure)
   * @param sizeOf the volume's current size in bytes
   */
  constructor(private readonly name: string, private readonly open: () => Promise<BlockDevice>, private readonly sizeOf: () => number) {}

  private opening: Promise<BlockDevice> | null = null;

  get size(): number {
    return this.sizeOf();
  }

  /** The device, attaching it on first use. @throws BlockDeviceError EIO when it cannot be attached. */
  private async dev(): Promise<BlockDevice> {
    this.opening ??= this.open().catch((e: Error) => {
      this.opening = null;
      throw e instanceof BlockDeviceError ? e : new BlockDeviceError('EIO', `volume ${this.name} could not be attached: ${e.message}`);
    });
    return this.opening;
  }

  /** Reads through the attached volume. */
  async read(offset: number, length: number): Promise<Buffer> {
    return (await this.dev()).read(offset, length);
  }

  /** Writes through the attached volume. */
  async write(offset: number, data: Buffer, fua?: boolean): Promise<void> {
    return (await this.dev()).write(offset, data, fua);
  }

  /** Flushes the attached volume; nothing to flush before the first use. */
  async flush(): Promise<void> {
    if (this.opening) return (await this.dev()).flush();
  }

  /** Trims through the attached volume. */
  async trim(offset: number, length: number): Promise<void> {
    return (await this.dev()).trim(offset, length);
  }

  /** Zeroes through the attached volume. */
  async writeZeroes(offset: number, length: number, fua?: boolean): Promise<void> {
    return (await this.dev()).writeZeroes(offset, length, fua);
  }

  /** Allocation status through the attached volume (all data when it has none). */
  async blockStatus(offset: number, length: number): Promise<BlockExtent[]> {
    const d = await this.dev();
    return d.blockStatus ? d.blockStatus(offset, length) : [{ offset, length, hole: false, zero: false }];
  }
}
