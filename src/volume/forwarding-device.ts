/** A BlockDevice that hands every call to another one: the base of wrappers that change a few. */
import type { BlockDevice, BlockExtent } from './block-device.ts';

/**
 * Forwards every BlockDevice call and property to `inner` (blockStatus and readInto only when
 * `inner` has them). Subclasses override what they change: metering, recording acks,
 * injecting faults. A subclass that overrides read() offers readInto only if it overrides
 * intoOf() too, so that no read can pass around its read().
 */
export class ForwardingDevice implements BlockDevice {
  readonly blockStatus?: (offset: number, length: number) => Promise<BlockExtent[]>;
  readonly readInto?: (offset: number, into: Buffer) => Promise<void>;

  constructor(protected readonly inner: BlockDevice) {
    if (inner.blockStatus) this.blockStatus = (offset, length) => this.statusOf(offset, length);
    const readKept = this.read === ForwardingDevice.prototype.read;
    const intoChanged = this.intoOf !== ForwardingDevice.prototype.intoOf;
    if (inner.readInto && (readKept || intoChanged)) this.readInto = (offset, into) => this.intoOf(offset, into);
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

  /** readInto of `inner` (only called when it has readInto); override to wrap it. */
  protected intoOf(offset: number, into: Buffer): Promise<void> {
    return this.inner.readInto!(offset, into);
  }

  /** Allocation state from `inner` (only called when it has blockStatus); override to wrap it. */
  protected statusOf(offset: number, length: number): Promise<BlockExtent[]> {
    return this.inner.blockStatus!(offset, length);
  }
}
