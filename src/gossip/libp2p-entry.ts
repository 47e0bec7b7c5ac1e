/**
 * Everything Cairn uses from the libp2p stack at run time, in one module so it can be
 * loaded as a single pre-bundled file (libp2p-stack.ts). Type-only imports elsewhere may
 * name the packages directly.
 */
export { createLibp2p } from 'libp2p';
export { tcp } from '@libp2p/tcp';
export { noise } from '@chainsafe/libp2p-noise';
export { yamux } from '@chainsafe/libp2p-yamux';
export { identify } from '@libp2p/identify';
export { preSharedKey } from '@libp2p/pnet';
export { gossipsub } from '@chainsafe/libp2p-gossipsub';
export { TopicValidatorResult } from '@libp2p/interface';
export { multiaddr } from '@multiformats/multiaddr';
export { lpStream } from 'it-length-prefixed-stream';
