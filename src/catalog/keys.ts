/**
 * Where catalog records live. The catalog is the reserved volume CATALOG_VOLUME (id 0): a
 * record named K is the extent `catalogExtent(K)` of that volume (xxHash32 of K's UTF-8
 * bytes), so it is placed by the same function as data and replicated like it — there is
 * no directory (DESIGN.md, "Catalog"). Names are prefixed by kind so kinds never collide.
 */
import { hashBytes } from '../../placement/index.ts';

/** Volume id of the catalog. Data volumes start at 1 (VolumeSchema). */
export const CATALOG_VOLUME = 0;
/** Pool the catalog is placed in (the cluster's first pool). */
export const CATALOG_POOL = 0;
/** Most 4 KiB pages one record may span (64 KiB with its header). */
export const RECORD_MAX_PAGES = 16;
/** Index shards the volume listing is spread over. */
export const INDEX_SHARDS = 16;

/** Seed of the catalog's name hash, distinct from placement's so the two never correlate. */
const SEED = 0x43524e31; // "CRN1"

/** Extent index (u32) of the catalog record named `key`. */
export function catalogExtent(key: string): number {
  return hashBytes(Buffer.from(key, 'utf8'), SEED);
}

/** Record name of volume `name`. */
export function volumeKey(name: string): string {
  return `volume/${name}`;
}

/** Record name of snapshot `snap` of the volume with id `volumeId` (by id: a rename moves nothing). */
export function snapshotKey(volumeId: number, snap: string): string {
  return `snapshot/${volumeId}@${snap}`;
}

/** Record name of the index shard that lists volume `name`. */
export function indexKeyOf(name: string): string {
  return indexKey(hashBytes(Buffer.from(name, 'utf8')) % INDEX_SHARDS);
}

/** Record name of index shard `shard` (0..INDEX_SHARDS-1). */
export function indexKey(shard: number): string {
  return `index/${shard}`;
}

/** Record name of the volume id counter. */
export const VOLUME_ID_COUNTER = 'counter/volume-id';
