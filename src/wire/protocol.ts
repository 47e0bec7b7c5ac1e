/**
 * Cairn's binary data-path protocol between initiators and storage nodes (and between
 * a primary and its replicas). Little-endian, length-prefixed frames, pipelined: many
 * requests in flight per connection, replies matched by request id, in any order.
 *
 * Request (56-byte header, then `members` u32 partition ids, then the payload):
 *   0  u32 frame length (bytes, whole frame)    4  u8 opcode    5  u8 flags
 *   6  u16 member count                         8  u32 request id
 *   12 u32 sender's map epoch                   16 u32 volume id
 *   20 u32 extent index                         24 u32 target partition (leaf id)
 *   28 u32 first page (4 KiB) in the extent     32 u32 page count
 *   36 u32 volume lease generation              40 f64 version (see writeVersion)
 *   48 u32 absent mask: bit i set = members[i] is in the up set but not acting (down)
 *   52 u32 0 (reserved)
 * `members` is the extent's up set in placement order. The initiator sends a write to every
 * acting member itself (one hop); each member applies it and records, for every absent
 * member, that it missed the extent (log-guided resync, src/recovery).
 * Reply (24-byte header, then the payload):
 *   0  u32 frame length   4 u8 opcode   5 u8 0   6 u16 status   8 u32 request id
 *   12 u32 replier's map epoch   16 u32 aux (e.g. the replier's lease generation)   20 u32 0
 */

/** Request header size in bytes. */
export const REQ_HEADER = 56;
/** Reply header size in bytes. */
export const REP_HEADER = 24;
/** Largest frame accepted (bytes): a 1 MiB extent of pages plus headers. */
export const MAX_FRAME = 2 * 1024 * 1024;
/** Most members a request may name. */
export const MAX_MEMBERS = 16;
/** Bytes in a page, the unit of every data-path request. */
export const PAGE_SIZE = 4096;

/** Opcodes. */
export const Op = {
  /** Authenticate: payload is the cluster token (UTF-8). Must come first on a connection. */
  Hello: 1,
  Read: 2,
  Write: 3,
  Flush: 4,
  Trim: 5,
  Ping: 6,
  /**
   * Announce a write-lease generation: `volume` and `lease` name it. The node fences every
   * older generation of that volume from now on (durably) and answers Fenced when it has
   * already seen a newer one.
   */
  Lease: 7,
  /**
   * Page versions of an extent on `partition`: reply payload is one 16-byte entry per page
   * ever written or trimmed — u32 page, u32 flags (bit 0: mapped), f64 version.
   */
  Versions: 8,
  /**
   * "What did I miss?": the sender, storage node `partition` (a node id here), asks for the
   * extents this node recorded as missed by it. The node first catches up to the request's
   * epoch and waits for the writes it is applying. Reply payload: 16-byte entries
   * u32 volume, u32 extent, f64 stamp (the record's change count; see Resolved).
   */
  Missed: 9,
  /**
   * Node `partition` has pulled `extent` of `volume` as of record stamp `version`: the
   * record is dropped unless it changed since (then the puller comes back for it).
   */
  Resolved: 10,
  /**
   * Make the up members of an extent agree: the receiving node (a member) reads every
   * member's page versions and copies each page's newest version to the members that lack
   * it. `members` = the up set, `absent` as for writes. Used after a writer change (peering).
   * A request from an older epoch than the node's is refused with StaleEpoch (`members` may
   * then be the wrong set); the writer refreshes its map and asks again.
   */
  Reconcile: 11,
  /**
   * Recovery copy of pages with their own versions (never fenced: the versions are the
   * original writer's). Payload: `pages` 16-byte entries u32 page, u32 flags (bit 0: trim),
   * f64 version; then 4096 bytes of data for each entry that is not a trim, in order.
   */
  Put: 12,
  /**
   * Extents of `volume` this node applied writes to that the writer has not yet settled
   * (not covered by a Flush watermark). Reply payload: u32 extent indexes.
   */
  Suspects: 13,
  /**
   * Every extent this node holds pages of. Reply payload: 16-byte entries u32 volume,
   * u32 extent, u32 partition, u32 mapped pages (the copy's size, for recovery progress).
   */
  Held: 14,
  /**
   * Scrub digest of an extent on `partition` (`volume`, `extent`; `pages` = the extent's page
   * count): a summary of its page map that equal copies share. Reply payload (12 bytes):
   * u32 digest — crc32c over, for each page ever written or trimmed in page order, a 20-byte
   * entry u32 page, f64 version, u32 flags (bit 0: mapped), u32 crc32c of the page's data
   * (0 when unmapped) — then u32 mapped page count, u32 count of pages with versions.
   * Computed from the page map alone (no device read; see extentDigest in src/node/extent-copies.ts).
   */
  Digest: 15,
  /**
   * Pin snapshot `version` of `volume` on every partition this node holds (src/node/snapshots.ts):
   * each partition keeps, durably, every page's newest version ≤ `version` for the volume's
   * keys, readable with Op.Read + Flag.AsOf. The node first makes what it applied durable,
   * and records which extents it held a current copy of. Idempotent for the same (volume,
   * version). Not fenced by lease. Reply payload (12 bytes): u32 extent copies held, u32
   * extents this node held or was pulling but was not current for (their snapshot reads
   * answer NoSnapshot), u32 flags (bit 0: the node was peering, so every extent is such).
   */
  Pin: 16,
  /** Release snapshot `version` of `volume` (Op.Pin); Ok also when it is not pinned here. */
  Unpin: 17,
} as const;
/** One of the values of Op. */
export type OpCode = (typeof Op)[keyof typeof Op];

/** Request flags (bit set). */
export const Flag = {
  /** Force unit access: durable on the device before the reply. */
  Fua: 1,
  /**
   * A recovery read (resync, repair, reconcile): not fenced by lease generation and served
   * even while the node is not current for the extent — the reader pairs it with the page
   * versions it asked for first (Op.Versions), so any copy is a valid source of the pages
   * it holds the newest version of.
   */
  Recovery: 2,
  /**
   * On Op.Read: read snapshot `version` (pinned with Op.Pin) instead of the newest data; not
   * fenced by lease, served while the node is not current (the pin recorded which copies
   * were current), answered NoSnapshot when this node cannot vouch for the copy. `members`
   * are the extent's placed partitions in the reader's map (may be empty).
   */
  AsOf: 4,
  /**
   * With AsOf: read from whichever of this node's partitions held a current copy of the
   * extent at pin time (`partition` is ignored); for a reader looking for a copy that
   * placement has moved away since.
   */
  AnyPartition: 8,
  /**
   * On a host Op.Read, a hint: the read is its initiator's only request in flight (queue
   * depth 1), and the initiator's next read will likely come to this node too ('adaptive'
   * read policy). The node may then keep its event loop turning for a short while after the
   * reply (NodeServer.pollGate). Changes nothing else; a node may ignore it.
   */
  Alone: 16,
} as const;

/** Reply statuses. */
export const Status = {
  Ok: 0,
  /** Malformed request or argument out of range. */
  Invalid: 1,
  /** Device or replica I/O failed. */
  Io: 2,
  /** Partition out of space. */
  NoSpace: 3,
  /** Data read back failed its crc32c. */
  BadChecksum: 4,
  /** The sender's epoch is older than the node's; aux = the node's epoch. */
  StaleEpoch: 5,
  /** The sender's lease generation is older than one the node has seen; aux = that generation. */
  Fenced: 6,
  /** This node does not hold the named partition. */
  NoPartition: 7,
  /** Not authenticated (no or wrong Hello). */
  Unauthorized: 8,
  /** The node is shutting down. */
  ShuttingDown: 9,
  /**
   * This member may lack the newest data of the extent (it missed writes while down and has
   * not pulled them yet, or has not finished peering): read another member.
   */
  NotCurrent: 10,
  /**
   * This node has no copy of the extent as of the snapshot version asked for (Op.Read +
   * Flag.AsOf); aux says why — one of NoSnapshotReason.
   */
  NoSnapshot: 11,
} as const;
/** One of the values of Status. */
export type StatusCode = (typeof Status)[keyof typeof Status];

/** The aux of a NoSnapshot reply: why this node cannot serve the extent as of the version. */
export const NoSnapshotReason = {
  /** The version is not pinned here for the volume (never, released, or not on this partition). */
  NotPinned: 0,
  /**
   * This partition held no pages of the extent at pin time, and the node vouches that the
   * extent was empty then: it was current for every extent placed on it, and placement has
   * not changed since. A reader may take the extent as zeros.
   */
  Empty: 1,
  /** The node held (or was pulling) the extent at pin time but was not current for it. */
  Incomplete: 2,
  /** No pages of the extent here at pin time, but the node cannot vouch that it was empty. */
  Absent: 3,
  /**
   * The version was pinned here and has been released since this node started (a snapshot
   * being deleted, or deleted): no node's answer for it can be trusted to mean zeros.
   */
  Released: 4,
} as const;

/** Human-readable name of a status, for error messages. */
export function statusName(s: number): string {
  for (const [k, v] of Object.entries(Status)) if (v === s) return k;
  return `status ${s}`;
}

/** Decoded request header. `members` are partition leaf ids, primary first. */
export interface RequestHeader {
  op: number;
  flags: number;
  id: number;
  epoch: number;
  volume: number;
  extent: number;
  partition: number;
  firstPage: number;
  pages: number;
  lease: number;
  version: number;
  members: number[];
  /** Bit i set: members[i] is not acting (0 when absent from an encoded object). */
  absent?: number;
}

/** Decoded reply header. */
export interface ReplyHeader {
  op: number;
  status: number;
  id: number;
  epoch: number;
  aux: number;
}

/** Sequence numbers one lease generation can issue (2^32); see writeVersion. */
export const VERSION_SEQ_SPAN = 0x100000000;

/**
 * The version of a write: generation × 2^32 + sequence. The volume's single writer (the
 * holder of write-lease `generation`, DESIGN promise 5) numbers its writes 1, 2, 3, … so
 * versions order every write to an extent across writer changes, restarts and clock skew —
 * no wall clock is involved. Safe integers hold generations below 2^21.
 * @throws RangeError on a generation or sequence out of range.
 */
export function writeVersion(generation: number, seq: number): number {
  if (!Number.isInteger(generation) || generation < 1 || generation >= 0x200000) throw new RangeError(`lease generation ${generation} out of range`);
  if (!Number.isInteger(seq) || seq < 1 || seq >= VERSION_SEQ_SPAN) throw new RangeError(`write sequence ${seq} out of range`);
  return generation * VERSION_SEQ_SPAN + seq;
}

/** The lease generation of a version made by writeVersion (0 for 0 or a non-integer). */
export function versionGeneration(version: number): number {
  return Number.isSafeInteger(version) && version > 0 ? Math.floor(version / VERSION_SEQ_SPAN) : 0;
}

/** The allocator key of an extent of a volume: volume × 2^32 + extent (a safe integer). */
export function extentKey(volume: number, extent: number): number {
  return volume * 0x100000000 + extent;
}

/** The volume of an allocator key made by extentKey. */
export function volumeOfKey(key: number): number {
  return Math.floor(key / 0x100000000);
}

/** The extent index of an allocator key made by extentKey. */
export function extentOfKey(key: number): number {
  return key % 0x100000000;
}

/**
 * Encodes the header of a request frame with request id `id`; the payload (`payloadLength`
 * bytes of pages) is not copied in: write it to the socket after the header. The id is a
 * parameter rather than a field so callers pass their header object as is (a spread copy
 * per request gave V8 a new object shape each time and made every field load here miss its
 * inline cache: ~9 % of the gateway's CPU at 4 KiB QD32 writes).
 */
export function encodeRequest(h: Omit<RequestHeader, 'id'>, id: number, payloadLength: number): Buffer {
  const n = h.members.length;
  const head = Buffer.allocUnsafe(REQ_HEADER + 4 * n);
  head.writeUInt32LE(REQ_HEADER + 4 * n + payloadLength, 0);
  head[4] = h.op;
  head[5] = h.flags;
  head.writeUInt16LE(n, 6);
  head.writeUInt32LE(id >>> 0, 8);
  head.writeUInt32LE(h.epoch >>> 0, 12);
  head.writeUInt32LE(h.volume >>> 0, 16);
  head.writeUInt32LE(h.extent >>> 0, 20);
  head.writeUInt32LE(h.partition >>> 0, 24);
  head.writeUInt32LE(h.firstPage >>> 0, 28);
  head.writeUInt32LE(h.pages >>> 0, 32);
  head.writeUInt32LE(h.lease >>> 0, 36);
  head.writeDoubleLE(h.version, 40);
  head.writeUInt32LE((h.absent ?? 0) >>> 0, 48);
  head.writeUInt32LE(0, 52);
  for (let i = 0; i < n; i++) head.writeUInt32LE(h.members[i] >>> 0, REQ_HEADER + 4 * i);
  return head;
}

/** Thrown by the decoders on a frame that breaks the protocol; the connection must close. */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

/**
 * Decodes a request frame's header. Returns the header and the payload view. `frame` is one
 * whole frame, or — when the frame reader placed the rest elsewhere (a pooled write buffer) —
 * its fixed REQ_HEADER bytes, with `rest` holding the member list and the payload.
 * @throws ProtocolError on a length or member count that does not fit the frame.
 */
export function decodeRequest(frame: Buffer, rest?: Buffer): { h: RequestHeader; payload: Buffer } {
  if (frame.length < REQ_HEADER) throw new ProtocolError(`request frame of ${frame.length} bytes is shorter than its header`);
  const body = rest ?? frame.subarray(REQ_HEADER);
  const n = frame.readUInt16LE(6);
  if (n > MAX_MEMBERS || 4 * n > body.length) throw new ProtocolError(`bad member count ${n}`);
  const members = new Array<number>(n);
  for (let i = 0; i < n; i++) members[i] = body.readUInt32LE(4 * i);
  return {
    h: {
      op: frame[4],
      flags: frame[5],
      id: frame.readUInt32LE(8),
      epoch: frame.readUInt32LE(12),
      volume: frame.readUInt32LE(16),
      extent: frame.readUInt32LE(20),
      partition: frame.readUInt32LE(24),
      firstPage: frame.readUInt32LE(28),
      pages: frame.readUInt32LE(32),
      lease: frame.readUInt32LE(36),
      version: frame.readDoubleLE(40),
      members,
      absent: frame.readUInt32LE(48),
    },
    payload: body.subarray(4 * n),
  };
}

/** Encodes a reply header for a payload of `payloadLength` bytes sent right after it. */
export function encodeReply(op: number, status: number, id: number, epoch: number, aux: number, payloadLength: number): Buffer {
  const b = Buffer.allocUnsafe(REP_HEADER);
  b.writeUInt32LE(REP_HEADER + payloadLength, 0);
  b[4] = op;
  b[5] = 0;
  b.writeUInt16LE(status, 6);
  b.writeUInt32LE(id >>> 0, 8);
  b.writeUInt32LE(epoch >>> 0, 12);
  b.writeUInt32LE(aux >>> 0, 16);
  b.writeUInt32LE(0, 20);
  return b;
}

/**
 * Decodes a reply frame.
 * @throws ProtocolError when the frame is shorter than a reply header.
 */
export function decodeReply(frame: Buffer): { h: ReplyHeader; payload: Buffer } {
  if (frame.length < REP_HEADER) throw new ProtocolError(`reply frame of ${frame.length} bytes is shorter than its header`);
  return {
    h: { op: frame[4], status: frame.readUInt16LE(6), id: frame.readUInt32LE(8), epoch: frame.readUInt32LE(12), aux: frame.readUInt32LE(16) },
    payload: frame.subarray(REP_HEADER),
  };
}
