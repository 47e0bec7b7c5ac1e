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
/** Magic of every transmission request (NBD_REQUEST_MAGIC). */
export const REQUEST_MAGIC = 0x25609513;
/** Magic of a simple reply (NBD_SIMPLE_REPLY_MAGIC). */
export const SIMPLE_REPLY_MAGIC = 0x67446698;
/** Magic of a structured reply chunk (NBD_STRUCTURED_REPLY_MAGIC). */
export const STRUCTURED_REPLY_MAGIC = 0x668e33ef;

/** Handshake flags (server). */
export const FLAG_FIXED_NEWSTYLE = 1;
/** Server handshake flag NBD_FLAG_NO_ZEROES. */
export const FLAG_NO_ZEROES = 2;
/** Client flags. */
export const FLAG_C_FIXED_NEWSTYLE = 1;
/** Client handshake flag NBD_FLAG_C_NO_ZEROES. */
export const FLAG_C_NO_ZEROES = 2;

/** Option types. */
export const OPT_EXPORT_NAME = 1;
/** Option NBD_OPT_ABORT. */
export const OPT_ABORT = 2;
/** Option NBD_OPT_LIST. */
export const OPT_LIST = 3;
/** Option NBD_OPT_STARTTLS. */
export const OPT_STARTTLS = 5;
/** Option NBD_OPT_INFO. */
export const OPT_INFO = 6;
/** Option NBD_OPT_GO. */
export const OPT_GO = 7;
/** Option NBD_OPT_STRUCTURED_REPLY. */
export const OPT_STRUCTURED_REPLY = 8;
/** Option NBD_OPT_LIST_META_CONTEXT. */
export const OPT_LIST_META_CONTEXT = 9;
/** Option NBD_OPT_SET_META_CONTEXT. */
export const OPT_SET_META_CONTEXT = 10;

/** Option reply types. */
export const REP_ACK = 1;
/** Option reply NBD_REP_SERVER. */
export const REP_SERVER = 2;
/** Option reply NBD_REP_INFO. */
export const REP_INFO = 3;
/** Option reply NBD_REP_META_CONTEXT: u32 context id, then the context's name. */
export const REP_META_CONTEXT = 4;
const ERR = 0x80000000;
/** Error option reply NBD_REP_ERR_UNSUP. */
export const REP_ERR_UNSUP = ERR + 1;
/** Error option reply NBD_REP_ERR_POLICY. */
export const REP_ERR_POLICY = ERR + 2;
/** Error option reply NBD_REP_ERR_INVALID. */
export const REP_ERR_INVALID = ERR + 3;
/** Error option reply NBD_REP_ERR_PLATFORM (here: the export provider failed to list). */
export const REP_ERR_PLATFORM = ERR + 4;
/** Error option reply NBD_REP_ERR_UNKNOWN. */
export const REP_ERR_UNKNOWN = ERR + 6;
/** Error option reply NBD_REP_ERR_TOO_BIG. */
export const REP_ERR_TOO_BIG = ERR + 9;

/** Info types in NBD_REP_INFO. */
export const INFO_EXPORT = 0;
/** Information type NBD_INFO_NAME (in NBD_REP_INFO). */
export const INFO_NAME = 1;
/** Information type NBD_INFO_DESCRIPTION (in NBD_REP_INFO). */
export const INFO_DESCRIPTION = 2;
/** Information type NBD_INFO_BLOCK_SIZE (in NBD_REP_INFO). */
export const INFO_BLOCK_SIZE = 3;

/** Transmission flags. */
export const TF_HAS_FLAGS = 1 << 0;
/** Transmission flag NBD_FLAG_READ_ONLY. */
export const TF_READ_ONLY = 1 << 1;
/** Transmission flag NBD_FLAG_SEND_FLUSH. */
export const TF_SEND_FLUSH = 1 << 2;
/** Transmission flag NBD_FLAG_SEND_FUA. */
export const TF_SEND_FUA = 1 << 3;
/** Transmission flag NBD_FLAG_SEND_TRIM. */
export const TF_SEND_TRIM = 1 << 5;
/** Transmission flag NBD_FLAG_SEND_WRITE_ZEROES. */
export const TF_SEND_WRITE_ZEROES = 1 << 6;
/** Transmission flag NBD_FLAG_SEND_DF. */
export const TF_SEND_DF = 1 << 7;
/** Transmission flag NBD_FLAG_CAN_MULTI_CONN. */
export const TF_CAN_MULTI_CONN = 1 << 8;

/** Command types. */
export const CMD_READ = 0;
/** Command NBD_CMD_WRITE. */
export const CMD_WRITE = 1;
/** Command NBD_CMD_DISC. */
export const CMD_DISC = 2;
/** Command NBD_CMD_FLUSH. */
export const CMD_FLUSH = 3;
/** Command NBD_CMD_TRIM. */
export const CMD_TRIM = 4;
/** Command NBD_CMD_CACHE. */
export const CMD_CACHE = 5;
/** Command NBD_CMD_WRITE_ZEROES. */
export const CMD_WRITE_ZEROES = 6;
/** Command NBD_CMD_BLOCK_STATUS. */
export const CMD_BLOCK_STATUS = 7;

/** Command flags. */
export const CMD_FLAG_FUA = 1 << 0;
/** Command flag NBD_CMD_FLAG_NO_HOLE. */
export const CMD_FLAG_NO_HOLE = 1 << 1;
/** Command flag NBD_CMD_FLAG_DF. */
export const CMD_FLAG_DF = 1 << 2;
/** Command flag NBD_CMD_FLAG_REQ_ONE (block status: one descriptor, no longer than the request). */
export const CMD_FLAG_REQ_ONE = 1 << 3;
/** Command flag NBD_CMD_FLAG_FAST_ZERO. */
export const CMD_FLAG_FAST_ZERO = 1 << 4;

/** Structured reply chunk types and flags. */
export const REPLY_FLAG_DONE = 1;
/** Structured reply chunk type NBD_REPLY_TYPE_NONE. */
export const REPLY_TYPE_NONE = 0;
/** Structured reply chunk type NBD_REPLY_TYPE_OFFSET_DATA. */
export const REPLY_TYPE_OFFSET_DATA = 1;
/** Structured reply chunk type NBD_REPLY_TYPE_OFFSET_HOLE. */
export const REPLY_TYPE_OFFSET_HOLE = 2;
/** Structured reply chunk type NBD_REPLY_TYPE_BLOCK_STATUS: u32 context id, then (u32 length, u32 flags) descriptors. */
export const REPLY_TYPE_BLOCK_STATUS = 5;
/** Structured reply chunk type NBD_REPLY_TYPE_ERROR. */
export const REPLY_TYPE_ERROR = 0x8001;
/** Structured reply chunk type NBD_REPLY_TYPE_ERROR_OFFSET. */
export const REPLY_TYPE_ERROR_OFFSET = 0x8002;

/** The `base:allocation` metadata context (NBD protocol, "Metadata querying"). */
export const META_BASE_ALLOCATION = 'base:allocation';
/** `base:allocation` status flag NBD_STATE_HOLE: the extent is not allocated. */
export const STATE_HOLE = 1;
/** `base:allocation` status flag NBD_STATE_ZERO: the extent reads as zeros. */
export const STATE_ZERO = 2;

/** Error values (errno numbers as the protocol defines them). */
export const EPERM = 1;
/** Error value NBD_EIO (the errno number the protocol defines). */
export const EIO = 5;
/** Error value NBD_ENOMEM (the errno number the protocol defines). */
export const ENOMEM = 12;
/** Error value NBD_EINVAL (the errno number the protocol defines). */
export const EINVAL = 22;
/** Error value NBD_ENOSPC (the errno number the protocol defines). */
export const ENOSPC = 28;
/** Error value NBD_EOVERFLOW (the errno number the protocol defines). */
export const EOVERFLOW = 75;
/** Error value NBD_ENOTSUP (the errno number the protocol defines). */
export const ENOTSUP = 95;
/** Error value NBD_ESHUTDOWN (the errno number the protocol defines). */
export const ESHUTDOWN = 108;

/** Request header size in bytes. */
export const REQUEST_SIZE = 28;
