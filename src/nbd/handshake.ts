/**
 * The NBD fixed-newstyle handshake and option haggling (NBD protocol, "Handshake" and
 * "Option types"): NBD_OPT_EXPORT_NAME, ABORT, LIST, STARTTLS (refused by policy), INFO,
 * GO, STRUCTURED_REPLY, and LIST_/SET_META_CONTEXT with the `base:allocation` context
 * ("Metadata querying"). Ends either with a chosen export and negotiated features, or with
 * null when the connection should close.
 */
import type { Socket } from 'node:net';
import type { BlockDevice } from '../volume/index.ts';
import { BASE_ALLOCATION_ID, listedContexts, parseMetaRequest, selectsAllocation } from './block-status.ts';
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
  /**
   * Context id of `base:allocation` when the client selected it (NBD_OPT_SET_META_CONTEXT,
   * last sent for this export's name) and may send NBD_CMD_BLOCK_STATUS; 0 when not.
   */
  allocationContext: number;
}

/** Where the handshake finds exports (NBD_OPT_EXPORT_NAME, INFO, GO, LIST, *_META_CONTEXT). */
export interface ExportSource {
  /** Export `name` ('' = the default export), or undefined when there is none. May reject. */
  lookup(name: string): Promise<NbdExport | undefined>;
  /** Name and description of every export, for NBD_OPT_LIST. May reject. */
  list(): Promise<Array<{ name: string; description: string }>>;
}

/** Largest option payload we read (bytes); longer options end the connection. */
const MAX_OPTION = 64 * 1024;
/** Block size constraints advertised in NBD_INFO_BLOCK_SIZE (bytes). */
export const MIN_BLOCK = 4096;
/** Preferred block size advertised in NBD_INFO_BLOCK_SIZE (bytes): one page; smaller writes are read-modify-write. */
export const PREFERRED_BLOCK = 4096;
/** Largest request payload accepted (bytes). */
export const MAX_BLOCK = 32 * 1024 * 1024;

/** Transmission flags for every writable export: flush, FUA, trim, write-zeroes, multi-conn safe. */
export const TRANSMISSION_FLAGS =
  C.TF_HAS_FLAGS | C.TF_SEND_FLUSH | C.TF_SEND_FUA | C.TF_SEND_TRIM | C.TF_SEND_WRITE_ZEROES | C.TF_CAN_MULTI_CONN;
/** Transmission flags of a read-only export (BlockDevice.readOnly): no write-side features. */
export const READ_ONLY_FLAGS = C.TF_HAS_FLAGS | C.TF_READ_ONLY | C.TF_CAN_MULTI_CONN;

/**
 * Transmission flags for `device` (NBD protocol, "Transmission flags"): NBD_FLAG_READ_ONLY
 * for a read-only device, and NBD_FLAG_SEND_DF once structured replies are negotiated (a
 * read is always answered with one data chunk, so NBD_CMD_FLAG_DF is honoured as sent).
 */
export function transmissionFlags(device: BlockDevice, structured: boolean): number {
  return (device.readOnly ? READ_ONLY_FLAGS : TRANSMISSION_FLAGS) | (structured ? C.TF_SEND_DF : 0);
}

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

/** What a handshake session keeps between options. */
interface OptionState {
  structured: boolean;
  /** Export name of the last NBD_OPT_SET_META_CONTEXT that selected `base:allocation`, else null. */
  metaFor: string | null;
}

/** The context id for a chosen export name: only when contexts were set for that very name. */
function contextFor(state: OptionState, name: string): number {
  return state.metaFor === name ? BASE_ALLOCATION_ID : 0;
}

/** Export lookup that turns a provider failure into an error reply; undefined when answered. */
async function find(socket: Socket, option: number, source: ExportSource, name: string): Promise<NbdExport | undefined> {
  let exp: NbdExport | undefined;
  try {
    exp = await source.lookup(name);
  } catch (e) {
    errorReply(socket, option, C.REP_ERR_UNKNOWN, `export '${name}' could not be opened: ${(e as Error).message}`);
    return undefined;
  }
  if (!exp) errorReply(socket, option, C.REP_ERR_UNKNOWN, `no export named '${name}'`);
  return exp;
}

/** NBD_OPT_LIST: one NBD_REP_SERVER per export, then NBD_REP_ACK. */
async function listExports(socket: Socket, option: number, length: number, source: ExportSource): Promise<void> {
  if (length !== 0) return errorReply(socket, option, C.REP_ERR_INVALID, 'NBD_OPT_LIST takes no data');
  let all: Array<{ name: string; description: string }>;
  try {
    all = await source.list();
  } catch (e) {
    return errorReply(socket, option, C.REP_ERR_PLATFORM, `exports could not be listed: ${(e as Error).message}`);
  }
  for (const e of all) {
    const name = Buffer.from(e.name, 'utf8');
    optionReply(socket, option, C.REP_SERVER, Buffer.concat([u32(name.length), name]));
  }
  optionReply(socket, option, C.REP_ACK);
}

/**
 * NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT (`base:allocation` only). SET
 * first forgets every earlier selection, even when it then fails, as the spec says.
 */
async function metaContext(socket: Socket, option: number, data: Buffer, source: ExportSource, state: OptionState): Promise<void> {
  const set = option === C.OPT_SET_META_CONTEXT;
  if (set) state.metaFor = null;
  const what = set ? 'NBD_OPT_SET_META_CONTEXT' : 'NBD_OPT_LIST_META_CONTEXT';
  if (!state.structured) return errorReply(socket, option, C.REP_ERR_INVALID, `${what} needs NBD_OPT_STRUCTURED_REPLY first`);
  const req = parseMetaRequest(data);
  if (!req) return errorReply(socket, option, C.REP_ERR_INVALID, `malformed ${what} request`);
  if (!(await find(socket, option, source, req.name))) return;
  const names = set ? (selectsAllocation(req.queries) ? [C.META_BASE_ALLOCATION] : []) : listedContexts(req.queries);
  for (const n of names) optionReply(socket, option, C.REP_META_CONTEXT, Buffer.concat([u32(set ? BASE_ALLOCATION_ID : 0), Buffer.from(n, 'utf8')]));
  if (set && names.length) state.metaFor = req.name;
  optionReply(socket, option, C.REP_ACK);
}

/**
 * Runs the server side of the handshake on `socket`.
 * @param source resolves export names ('' = the default export) and lists exports.
 * @returns what was negotiated, or null when the client aborted or broke the protocol
 *          (the caller closes the socket).
 */
export async function serverHandshake(socket: Socket, reader: SocketReader, exports: ExportSource): Promise<Negotiated | null> {
  // Each name is opened at most once per connection (INFO, the meta-context options and GO
  // all name it); misses are not remembered, so an export that appears meanwhile is found.
  const opened = new Map<string, NbdExport>();
  const source: ExportSource = {
    list: () => exports.list(),
    lookup: async (name) => {
      const known = opened.get(name);
      if (known) return known;
      const exp = await exports.lookup(name);
      if (exp) opened.set(name, exp);
      return exp;
    },
  };
  socket.write(Buffer.concat([u64(C.NBDMAGIC), u64(C.IHAVEOPT), u16(C.FLAG_FIXED_NEWSTYLE | C.FLAG_NO_ZEROES)]));
  const clientFlags = (await reader.read(4)).readUInt32BE(0);
  if (clientFlags & ~(C.FLAG_C_FIXED_NEWSTYLE | C.FLAG_C_NO_ZEROES)) return null; // unknown flags: MUST close
  const noZeroes = (clientFlags & C.FLAG_C_NO_ZEROES) !== 0;
  const state: OptionState = { structured: false, metaFor: null };
  for (;;) {
    const head = await reader.read(16);
    if (head.readBigUInt64BE(0) !== C.IHAVEOPT) return null;
    const option = head.readUInt32BE(8);
    const length = head.readUInt32BE(12);
    if (length > MAX_OPTION) return null;
    const data = length ? await reader.read(length) : Buffer.alloc(0);
    switch (option) {
      case C.OPT_EXPORT_NAME: {
        const name = data.toString('utf8');
        const exp = await source.lookup(name).catch(() => undefined);
        if (!exp) return null; // this option cannot return an error: close
        const flags = transmissionFlags(exp.device, state.structured);
        socket.write(Buffer.concat([u64(exp.device.size), u16(flags), noZeroes ? Buffer.alloc(0) : Buffer.alloc(124)]));
        return { export: exp, structuredReplies: state.structured, flags, allocationContext: contextFor(state, name) };
      }
      case C.OPT_ABORT:
        optionReply(socket, option, C.REP_ACK);
        return null;
      case C.OPT_LIST:
        await listExports(socket, option, length, source);
        break;
      case C.OPT_STARTTLS:
        errorReply(socket, option, C.REP_ERR_POLICY, 'TLS is not offered by this server');
        break;
      case C.OPT_STRUCTURED_REPLY:
        if (length !== 0) {
          errorReply(socket, option, C.REP_ERR_INVALID, 'NBD_OPT_STRUCTURED_REPLY takes no data');
          break;
        }
        state.structured = true;
        optionReply(socket, option, C.REP_ACK);
        break;
      case C.OPT_LIST_META_CONTEXT:
      case C.OPT_SET_META_CONTEXT:
        await metaContext(socket, option, data, source, state);
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
        const exp = await find(socket, option, source, name);
        if (!exp) break;
        const requests = new Set<number>();
        for (let i = 0; i < count; i++) requests.add(data.readUInt16BE(4 + nameLen + 2 + 2 * i));
        const flags = transmissionFlags(exp.device, state.structured);
        optionReply(socket, option, C.REP_INFO, Buffer.concat([u16(C.INFO_EXPORT), u64(exp.device.size), u16(flags)]));
        if (requests.has(C.INFO_NAME)) optionReply(socket, option, C.REP_INFO, Buffer.concat([u16(C.INFO_NAME), Buffer.from(exp.name, 'utf8')]));
        if (requests.has(C.INFO_DESCRIPTION)) optionReply(socket, option, C.REP_INFO, Buffer.concat([u16(C.INFO_DESCRIPTION), Buffer.from(exp.description, 'utf8')]));
        if (requests.has(C.INFO_BLOCK_SIZE)) {
          optionReply(socket, option, C.REP_INFO, Buffer.concat([u16(C.INFO_BLOCK_SIZE), u32(MIN_BLOCK), u32(PREFERRED_BLOCK), u32(MAX_BLOCK)]));
        }
        optionReply(socket, option, C.REP_ACK);
        if (option === C.OPT_GO) return { export: exp, structuredReplies: state.structured, flags, allocationContext: contextFor(state, name) };
        break;
      }
      default:
        errorReply(socket, option, C.REP_ERR_UNSUP, `option ${option} is not supported`);
    }
  }
}
