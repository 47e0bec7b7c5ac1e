/** A BlockDevice that hands every call to another one: the base of wrappers that change a few. */
import type { BlockDevice, BlockExtent } from './block-device.ts';

/**
 * Forwards every BlockDevice call and property to `inner` (blockStatus only when `inner` has
 * it). Subclasses override what they change: metering, recording acks, injecting faults.
 */
export class ForwardingDevice implements BlockDevice {
  readonly blockStatus?: (offset: number, length: number) => Promise<BlockExtent[]>;

  constructor(protected readonly inner: BlockDevice) {
    if (inner.blockStatus) this.blockStatus = (offset, length) => this.statusOf(offset, length);
  }

  get size(): number {
    return this.inner.size;
  }

  get blockSize(): number {
    return this.inner.blockSize;
  }

  get readOnly(): boolean | undefined {
    return this.inner.readOnly;
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.inner.read(offset, length);
  }

  write(offset: number, data: Buffer, fua?: boolean): Promise<void> {
    return this.inner.write(offset, data, fua);
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  trim(offset: number, length: number): Promise<void> {
    return this.inner.trim(offset, length);
  }

  writeZeroes(offset: number, length: number, fua?: boolean): Promise<void> {
    return this.inner.writeZeroes(offset, length, fua);
  }

  /** Allocation state from `inner` (only called when it has blockStatus); override to wrap it. */
  protected statusOf(offset: number, length: number): Promise<BlockExtent[]> {
    return this.inner.blockStatus!(offset, length);
  }
}
