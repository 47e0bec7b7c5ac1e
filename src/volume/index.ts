/** src/volume: the BlockDevice face every frontend serves. */
export { BlockDeviceError, type BlockDevice, type BlockErrorCode } from './block-device.ts';
