/**
 * Canonical encoding of a cluster map and its checksum: the bytes the authority signs and
 * every peer verifies. Canonical = JSON with object keys sorted and no whitespace, so that
 * equal maps encode to equal bytes on every peer. Swap point: when placement/ grows its
 * own canonical map encoding, only this file changes.
 */
import { crc32c } from '@node-rs/crc32';
import { validateMap } from '../../placement/index.ts';
import { ClusterMapSchema, type ClusterMap } from './types.ts';
import { checkTopology } from './topology.ts';

/** Thrown when bytes do not decode to a valid cluster map. */
export class MapDecodeError extends Error {
  override name = 'MapDecodeError';
}

/**
 * Canonical JSON of `v`: object keys sorted, undefined members dropped, no whitespace, so
 * that equal values give equal strings whatever order their keys were set in (a map built
 * in memory and the same map decoded from the wire).
 * @throws TypeError on a non-finite number.
 */
export function canonical(v: unknown): string {
  if (v === null || typeof v !== 'object') {
    if (typeof v === 'number' && !Number.isFinite(v)) throw new TypeError('non-finite number in map');
    return JSON.stringify(v);
  }
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  const keys = Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
}

/** Canonical bytes of `map` (UTF-8 JSON, sorted keys). */
export function encodeMap(map: ClusterMap): Buffer {
  return Buffer.from(canonical(map), 'utf8');
}

/** Checksum of canonical map bytes: crc32c (unsigned 32-bit). */
export function mapChecksum(bytes: Uint8Array): number {
  return crc32c(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)) >>> 0;
}

/**
 * Decodes and validates canonical map bytes: schema, topology structure, topology
 * consistent with the nodes (checkTopology), and bytes
 * that are canonical (re-encoding gives the same bytes).
 * @throws MapDecodeError naming the problem.
 */
export function decodeMap(bytes: Uint8Array): ClusterMap {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (e) {
    throw new MapDecodeError(`map is not JSON: ${(e as Error).message}`);
  }
  const parsed = ClusterMapSchema.safeParse(json);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new MapDecodeError(`map: ${i.path.join('.') || '(root)'}: ${i.message}`);
  }
  const map = parsed.data;
  try {
    validateMap(map.topology);
  } catch (e) {
    throw new MapDecodeError(`map topology: ${(e as Error).message}`);
  }
  const mismatch = checkTopology(map);
  if (mismatch !== null) throw new MapDecodeError(`map topology does not match its nodes: ${mismatch}`);
  if (!encodeMap(map).equals(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))) {
    throw new MapDecodeError('map bytes are not canonical');
  }
  return map;
}
