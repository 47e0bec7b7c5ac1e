/** src/nbd: the NBD frontend (fixed-newstyle handshake, simple and structured replies). */
export { NbdServer, type NbdServerOptions } from './server.ts';
export { MAX_BLOCK, MIN_BLOCK, PREFERRED_BLOCK, TRANSMISSION_FLAGS, type NbdExport, type Negotiated } from './handshake.ts';
export * as nbd from './constants.ts';
