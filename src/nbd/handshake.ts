/**
 * The NBD fixed-newstyle handshake and option haggling (NBD protocol, "Handshake" and
 * "Option types"): NBD_OPT_EXPORT_NAME, ABORT, LIST, STARTTLS (refused by policy), INFO,
 * GO and STRUCTURED_REPLY. Ends either with a chosen export and negotiated features, or
 * with null when the connection should close.
 */
import type { Socket } from 'node:net';
import type { BlockDevice } from '../volume/index.ts';
import * as C from './constants.ts';
import type { SocketReader } from './socket-reader.ts';

/** An export offered by the server. */
export interface NbdExport {
  name: string;
  description: string;
  device: BlockDevice;
}

/** Outcome of a successful handshake. */
export interface Negotiated {
  export: NbdExport;
  structuredReplies: boolean;
  /** Transmission flags sent to the client. */
  flags: number;
}

/** Largest option payload we read (bytes); longer options end the connection. */
const MAX_OPTION = 64 * 1024;
/** Block size constraints advertised in NBD_INFO_BLOCK_SIZE (bytes). */
export const MIN_BLOCK = 4096;
/** Preferred block size advertised in NBD_INFO_BLOCK_SIZE (bytes): one page; smaller writes are read-modify-write. */
export const PREFERRED_BLOCK = 4096;
/** Largest request payload accepted (bytes). */
export const MAX_BLOCK = 32 * 1024 * 1024;

/** Transmission flags for every export: flush, FUA, trim, write-zeroes, multi-conn safe. */
export const TRANSMISSION_FLAGS =
  C.TF_HAS_FLAGS | C.TF_SEND_FLUSH | C.TF_SEND_FUA | C.TF_SEND_TRIM | C.TF_SEND_WRITE_ZEROES | C.TF_CAN_MULTI_CONN;

function u16(n: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(n);
  return b;
}
function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}
function u64(n: number | bigint): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

function optionReply(socket: Socket, option: number, type: number, data: Buffer = Buffer.alloc(0)): void {
  socket.write(Buffer.concat([u64(C.OPT_REPLY_MAGIC), u32(option), u32(type), u32(data.length), data]));
}

function errorReply(socket: Socket, option: number, type: number, message: string): void {
  optionReply(socket, option, type, Buffer.from(message, 'utf8'));
}

/**
 * Runs the server side of the handshake on `socket`.
 * @param lookup resolves an export name ('' = the default export) to an export.
 * @param list every export, for NBD_OPT_LIST.
 * @returns what was negotiated, or null when the client aborted or broke the protocol
 *          (the caller closes the socket).
 */
export async function serverHandshake(
  socket: Socket,
  reader: SocketReader,
  lookup: (name: string) => NbdExport | undefined,
  list: () => NbdExport[],
): Promise<Negotiated | null> {
  socket.write(Buffer.concat([u64(C.NBDMAGIC), u64(C.IHAVEOPT), u16(C.FLAG_FIXED_NEWSTYLE | C.FLAG_NO_ZEROES)]));
  const clientFlags = (await reader.read(4)).readUInt32BE(0);
  if (clientFlags & ~(C.FLAG_C_FIXED_NEWSTYLE | C.FLAG_C_NO_ZEROES)) return null; // unknown flags: MUST close
  const noZeroes = (clientFlags & C.FLAG_C_NO_ZEROES) !== 0;
  let structured = false;
  for (;;) {
    const head = await reader.read(16);
    if (head.readBigUInt64BE(0) !== C.IHAVEOPT) return null;
    const option = head.readUInt32BE(8);
    const length = head.readUInt32BE(12);
    if (length > MAX_OPTION) return null;
    const data = length ? await reader.read(length) : Buffer.alloc(0);
    switch (option) {
      case C.OPT_EXPORT_NAME: {
        const exp = lookup(data.toString('utf8'));
        if (!exp) return null; // this option cannot return an error: close
        socket.write(Buffer.concat([u64(exp.device.size), u16(TRANSMISSION_FLAGS), noZeroes ? Buffer.alloc(0) : Buffer.alloc(124)]));
        return { export: exp, structuredReplies: structured, flags: TRANSMISSION_FLAGS };
      }
      case C.OPT_ABORT:
        optionReply(socket, option, C.REP_ACK);
        return null;
      case C.OPT_LIST:
        if (length !== 0) {
          errorReply(socket, option, C.REP_ERR_INVALID, 'NBD_OPT_LIST takes no data');
          break;
        }
        for (const e of list()) {
          const name = Buffer.from(e.name, 'utf8');
          optionReply(socket, option, C.REP_SERVER, Buffer.concat([u32(name.length), name]));
        }
        optionReply(socket, option, C.REP_ACK);
        break;
      case C.OPT_STARTTLS:
        errorReply(socket, option, C.REP_ERR_POLICY, 'TLS is not offered by this server');
        break;
      case C.OPT_STRUCTURED_REPLY:
        if (length !== 0) {
          errorReply(socket, option, C.REP_ERR_INVALID, 'NBD_OPT_STRUCTURED_REPLY takes no data');
          break;
        }
        structured = true;
        optionReply(socket, option, C.REP_ACK);
        break;
      case C.OPT_INFO:
      case C.OPT_GO: {
        const nameLen = length >= 4 ? data.readUInt32BE(0) : -1;
        if (nameLen < 0 || 4 + nameLen + 2 > length) {
          errorReply(socket, option, C.REP_ERR_INVALID, 'malformed NBD_OPT_INFO/GO request');
          break;
        }
        const count = data.readUInt16BE(4 + nameLen);
        if (4 + nameLen + 2 + 2 * count !== length) {
          errorReply(socket, option, C.REP_ERR_INVALID, 'NBD_OPT_INFO/GO information request count does not match its length');
          break;
        }
        const name = data.toString('utf8', 4, 4 + nameLen);
        const exp = lookup(name);
        if (!exp) {
          errorReply(socket, option, C.REP_ERR_UNKNOWN, `no export named '${name}'`);
          break;
        }
        const requests = new Set<number>();
        for (let i = 0; i < count; i++) requests.add(data.readUInt16BE(4 + nameLen + 2 + 2 * i));
        optionReply(socket, option, C.REP_INFO, Buffer.concat([u16(C.INFO_EXPORT), u64(exp.device.size), u16(TRANSMISSION_FLAGS)]));
        if (requests.has(C.INFO_NAME)) optionReply(socket, option, C.REP_INFO, Buffer.concat([u16(C.INFO_NAME), Buffer.from(exp.name, 'utf8')]));
        if (requests.has(C.INFO_DESCRIPTION)) optionReply(socket, option, C.REP_INFO, Buffer.concat([u16(C.INFO_DESCRIPTION), Buffer.from(exp.description, 'utf8')]));
        if (requests.has(C.INFO_BLOCK_SIZE)) {
          optionReply(socket, option, C.REP_INFO, Buffer.concat([u16(C.INFO_BLOCK_SIZE), u32(MIN_BLOCK), u32(PREFERRED_BLOCK), u32(MAX_BLOCK)]));
        }
        optionReply(socket, option, C.REP_ACK);
        if (option === C.OPT_GO) return { export: exp, structuredReplies: structured, flags: TRANSMISSION_FLAGS };
        break;
      }
      default:
        errorReply(socket, option, C.REP_ERR_UNSUP, `option ${option} is not supported`);
    }
  }
}
