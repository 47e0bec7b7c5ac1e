/**
 * A signed map as it travels (gossip, the map-fetch protocol) and rests on disk.
 *
 * Wire format (little-endian):
 *   0  4 bytes magic "CMAP"     4  u8 format (1)      5  u8 0      6  u16 signature length
 *   8  u32 epoch                12 u32 checksum (crc32c of the map bytes)
 *   16 u32 map length           20 signature (Ed25519, 64 bytes)   then the map bytes
 * The map bytes are the canonical encoding (codec.ts); the header repeats epoch and
 * checksum so a peer can drop stale or duplicate copies before verifying anything.
 */
import type { KeyObject } from 'node:crypto';
import { decodeMap, encodeMap, mapChecksum, MapDecodeError } from './codec.ts';
import { signMapBytes, verifyMapBytes } from './signing.ts';
import type { ClusterMap } from './types.ts';

const MAGIC = 0x50414d43; // "CMAP" read as u32 LE
const HEADER = 20;
/** Largest signed map accepted (bytes). */
export const MAX_SIGNED_MAP = 8 * 1024 * 1024;

/** A verified map with its wire bytes. */
export interface SignedMap {
  map: ClusterMap;
  epoch: number;
  checksum: number;
  /** The whole wire encoding (header, signature, map bytes). */
  wire: Buffer;
}

/** Why a map was refused. */
export type MapRejectReason = 'malformed' | 'checksum' | 'signature' | 'cluster' | 'stale' | 'duplicate' | 'conflict';

/** A map that failed a check; `reason` says which. */
export class MapRejectedError extends Error {
  override name = 'MapRejectedError';
  constructor(readonly reason: MapRejectReason, message: string, readonly epoch = 0) {
    super(message);
  }
}

/** Signs `map` (canonical bytes, checksum, Ed25519) and returns it with its wire bytes. */
export function signMap(map: ClusterMap, key: KeyObject): SignedMap {
  const bytes = encodeMap(map);
  const checksum = mapChecksum(bytes);
  const sig = signMapBytes(bytes, key);
  const head = Buffer.alloc(HEADER);
  head.writeUInt32LE(MAGIC, 0);
  head[4] = 1;
  head.writeUInt16LE(sig.length, 6);
  head.writeUInt32LE(map.epoch, 8);
  head.writeUInt32LE(checksum, 12);
  head.writeUInt32LE(bytes.length, 16);
  return { map, epoch: map.epoch, checksum, wire: Buffer.concat([head, sig, bytes]) };
}

/**
 * Reads the header of a signed map without verifying it.
 * @throws MapRejectedError('malformed') when the header or lengths are wrong.
 */
export function peekSignedMap(wire: Uint8Array): { epoch: number; checksum: number } {
  const b = Buffer.from(wire.buffer, wire.byteOffset, wire.byteLength);
  if (b.length < HEADER || b.readUInt32LE(0) !== MAGIC || b[4] !== 1) throw new MapRejectedError('malformed', 'not a signed map (bad magic or format)');
  const sigLen = b.readUInt16LE(6);
  const mapLen = b.readUInt32LE(16);
  if (b.length !== HEADER + sigLen + mapLen || b.length > MAX_SIGNED_MAP) throw new MapRejectedError('malformed', 'signed map lengths do not add up');
  return { epoch: b.readUInt32LE(8), checksum: b.readUInt32LE(12) };
}

/**
 * Verifies a signed map: header, checksum, authority signature, map decoding, cluster id
 * and that the header's epoch is the map's.
 * @throws MapRejectedError with reason 'malformed' | 'checksum' | 'signature' | 'cluster'.
 */
export function openSignedMap(wire: Uint8Array, key: KeyObject, clusterId: string): SignedMap {
  const { epoch, checksum } = peekSignedMap(wire);
  const b = Buffer.from(wire);
  const sigLen = b.readUInt16LE(6);
  const sig = b.subarray(HEADER, HEADER + sigLen);
  const bytes = b.subarray(HEADER + sigLen);
  if (mapChecksum(bytes) !== checksum) throw new MapRejectedError('checksum', `map of epoch ${epoch}: checksum mismatch (corrupted)`, epoch);
  if (!verifyMapBytes(bytes, sig, key)) throw new MapRejectedError('signature', `map of epoch ${epoch}: signature does not verify with the authority key (forged)`, epoch);
  let map: ClusterMap;
  try {
    map = decodeMap(bytes);
  } catch (e) {
    if (e instanceof MapDecodeError) throw new MapRejectedError('malformed', `map of epoch ${epoch}: ${e.message}`, epoch);
    throw e;
  }
  if (map.clusterId !== clusterId) throw new MapRejectedError('cluster', `map of cluster ${map.clusterId}, not ${clusterId}`, epoch);
  if (map.epoch !== epoch) throw new MapRejectedError('malformed', `map header says epoch ${epoch}, the map ${map.epoch}`, epoch);
  return { map, epoch, checksum, wire: b };
}
