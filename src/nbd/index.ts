/** src/nbd: the NBD frontend (fixed-newstyle handshake, simple and structured replies, base:allocation block status). */
export { NbdServer, type NbdExportProvider, type NbdServerOptions } from './server.ts';
export { MAX_BLOCK, MIN_BLOCK, PREFERRED_BLOCK, READ_ONLY_FLAGS, TRANSMISSION_FLAGS, transmissionFlags, type NbdExport, type Negotiated } from './handshake.ts';
export * as nbd from './constants.ts';
