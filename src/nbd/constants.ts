/**
 * NBD protocol constants, named as in the NBD protocol specification
 * (github.com/NetworkBlockDevice/nbd, doc/proto.md). All on-wire integers are big-endian.
 */

/** "NBDMAGIC", sent first by the server. */
export const NBDMAGIC = 0x4e42444d41474943n;
/** "IHAVEOPT": newstyle magic, and the prefix of every option request. */
export const IHAVEOPT = 0x49484156454f5054n;
/** Prefix of every option reply. */
export const OPT_REPLY_MAGIC = 0x3e889045565a9n;
export const REQUEST_MAGIC = 0x25609513;
export const SIMPLE_REPLY_MAGIC = 0x67446698;
export const STRUCTURED_REPLY_MAGIC = 0x668e33ef;

/** Handshake flags (server). */
export const FLAG_FIXED_NEWSTYLE = 1;
export const FLAG_NO_ZEROES = 2;
/** Client flags. */
export const FLAG_C_FIXED_NEWSTYLE = 1;
export const FLAG_C_NO_ZEROES = 2;

/** Option types. */
export const OPT_EXPORT_NAME = 1;
export const OPT_ABORT = 2;
export const OPT_LIST = 3;
export const OPT_STARTTLS = 5;
export const OPT_INFO = 6;
export const OPT_GO = 7;
export const OPT_STRUCTURED_REPLY = 8;
export const OPT_LIST_META_CONTEXT = 9;
export const OPT_SET_META_CONTEXT = 10;

/** Option reply types. */
export const REP_ACK = 1;
export const REP_SERVER = 2;
export const REP_INFO = 3;
const ERR = 0x80000000;
export const REP_ERR_UNSUP = ERR + 1;
export const REP_ERR_POLICY = ERR + 2;
export const REP_ERR_INVALID = ERR + 3;
export const REP_ERR_UNKNOWN = ERR + 6;
export const REP_ERR_TOO_BIG = ERR + 9;

/** Info types in NBD_REP_INFO. */
export const INFO_EXPORT = 0;
export const INFO_NAME = 1;
export const INFO_DESCRIPTION = 2;
export const INFO_BLOCK_SIZE = 3;

/** Transmission flags. */
export const TF_HAS_FLAGS = 1 << 0;
export const TF_READ_ONLY = 1 << 1;
export const TF_SEND_FLUSH = 1 << 2;
export const TF_SEND_FUA = 1 << 3;
export const TF_SEND_TRIM = 1 << 5;
export const TF_SEND_WRITE_ZEROES = 1 << 6;
export const TF_SEND_DF = 1 << 7;
export const TF_CAN_MULTI_CONN = 1 << 8;

/** Command types. */
export const CMD_READ = 0;
export const CMD_WRITE = 1;
export const CMD_DISC = 2;
export const CMD_FLUSH = 3;
export const CMD_TRIM = 4;
export const CMD_CACHE = 5;
export const CMD_WRITE_ZEROES = 6;
export const CMD_BLOCK_STATUS = 7;

/** Command flags. */
export const CMD_FLAG_FUA = 1 << 0;
export const CMD_FLAG_NO_HOLE = 1 << 1;
export const CMD_FLAG_DF = 1 << 2;
export const CMD_FLAG_FAST_ZERO = 1 << 4;

/** Structured reply chunk types and flags. */
export const REPLY_FLAG_DONE = 1;
export const REPLY_TYPE_NONE = 0;
export const REPLY_TYPE_OFFSET_DATA = 1;
export const REPLY_TYPE_ERROR = 0x8001;

/** Error values (errno numbers as the protocol defines them). */
export const EPERM = 1;
export const EIO = 5;
export const ENOMEM = 12;
export const EINVAL = 22;
export const ENOSPC = 28;
export const EOVERFLOW = 75;
export const ENOTSUP = 95;
export const ESHUTDOWN = 108;

/** Request header size in bytes. */
export const REQUEST_SIZE = 28;
