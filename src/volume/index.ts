/** src/volume: the BlockDevice face every frontend serves, and a file-backed device for tests and single-machine use. */
export { BlockDeviceError, type BlockDevice, type BlockErrorCode, type BlockExtent } from './block-device.ts';
export { FileBlockDevice, type FileDeviceOptions } from './file-device.ts';
export { ForwardingDevice } from './forwarding-device.ts';
export { FileLease } from './file-lease.ts';
export { isAllZero } from './zeros.ts';
