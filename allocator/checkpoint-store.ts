/**
 * The checkpoint database of one partition: a `level` (LevelDB) store holding the page
 * map as of a log position, so that recovery reads the map and rolls forward only over
 * later records instead of over the whole log.
 *
 * Keys (utf8) and values (bytes):
 *   "m"             meta JSON: uuid, cut seq, log clock, segments open at the cut
 *   "a"             segment ages (Float64Array, one per segment, log-clock units)
 *   "k<14 hex>"     one KeyTable (see KeyTable.encode) per owner key
 *   "p<8 hex>"      one snapshot pin JSON
 * Key records are written first and the meta record last, with `sync: true`; LevelDB
 * batches are atomic, and a batch split in chunks leaves key records that are only newer
 * than the meta's cut, which roll-forward tolerates (see Allocator docs).
 */
import { mkdir } from 'node:fs/promises';
import { Level } from 'level';
import { KeyTable } from './page-map.ts';

/** Meta record of the newest checkpoint. */
export interface CheckpointMeta {
  /** Hex uuid of the region this checkpoint belongs to. */
  uuid: string;
  /** Every record with seq ≤ cutSeq is reflected in the stored map. */
  cutSeq: number;
  /** Log clock (blocks appended since format) at the cut. */
  clock: number;
  /** Segments that were open for appends at the cut (they may hold records after it). */
  openSegments: number[];
}

/** A snapshot pin as stored. */
export interface PinRecord {
  id: number;
  version: number;
  firstKey: number;
  lastKey: number;
  /** Supersessions by records with seq > sinceSeq keep the old version. */
  sinceSeq: number;
}

/** What `load` found. */
export interface LoadedCheckpoint {
  meta: CheckpointMeta;
  ages: Float64Array | null;
  tables: Map<number, KeyTable>;
  pins: PinRecord[];
}

const CHUNK_BYTES = 16 * 1024 * 1024;

function keyName(key: number): string {
  return 'k' + key.toString(16).padStart(14, '0');
}
function pinName(id: number): string {
  return 'p' + id.toString(16).padStart(8, '0');
}

/** Opens, reads and writes a partition's checkpoint database. */
export class CheckpointStore {
  private constructor(private readonly db: Level<string, Buffer>) {}

  /** Opens (creating) the database in directory `dir`. */
  static async open(dir: string): Promise<CheckpointStore> {
    await mkdir(dir, { recursive: true });
    const db = new Level<string, Buffer>(dir, { valueEncoding: 'buffer' });
    await db.open();
    return new CheckpointStore(db);
  }

  /** Deletes everything (used when the region is formatted anew). */
  async clear(): Promise<void> {
    await this.db.clear();
  }

  /**
   * Loads the newest checkpoint of region `uuid`. Returns null when there is none or it
   * belongs to another region (then the database is cleared).
   * @throws Error when a stored record is malformed.
   */
  async load(uuid: string): Promise<LoadedCheckpoint | null> {
    const m = await this.db.get('m');
    if (!m) {
      await this.db.clear();
      return null;
    }
    const meta = JSON.parse(m.toString('utf8')) as CheckpointMeta;
    if (meta.uuid !== uuid) {
      await this.db.clear();
      return null;
    }
    const a = await this.db.get('a');
    let ages: Float64Array | null = null;
    if (a && a.length % 8 === 0) {
      ages = new Float64Array(a.length / 8);
      new Uint8Array(ages.buffer).set(a);
    }
    const tables = new Map<number, KeyTable>();
    for await (const [k, v] of this.db.iterator({ gte: 'k', lt: 'l' })) tables.set(parseInt(k.slice(1), 16), KeyTable.decode(v));
    const pins: PinRecord[] = [];
    for await (const [, v] of this.db.iterator({ gte: 'p', lt: 'q' })) pins.push(JSON.parse(v.toString('utf8')) as PinRecord);
    return { meta, ages, tables, pins };
  }

  /**
   * Writes key records (null value: delete) then the meta and ages, durably.
   * Returns the bytes handed to the database (keys + values).
   */
  async save(records: Array<[number, Buffer | null]>, meta: CheckpointMeta, ages: Float64Array): Promise<number> {
    let bytes = 0;
    let ops: Array<{ type: 'put'; key: string; value: Buffer } | { type: 'del'; key: string }> = [];
    let chunk = 0;
    for (const [key, value] of records) {
      const name = keyName(key);
      if (value) {
        ops.push({ type: 'put', key: name, value });
        chunk += name.length + value.length;
      } else {
        ops.push({ type: 'del', key: name });
        chunk += name.length;
      }
      if (chunk >= CHUNK_BYTES) {
        await this.db.batch(ops);
        bytes += chunk;
        ops = [];
        chunk = 0;
      }
    }
    const m = Buffer.from(JSON.stringify(meta));
    const a = Buffer.from(ages.buffer, ages.byteOffset, ages.byteLength);
    ops.push({ type: 'put', key: 'a', value: Buffer.from(a) });
    ops.push({ type: 'put', key: 'm', value: m });
    chunk += m.length + a.length + 2;
    await this.db.batch(ops, { sync: true });
    return bytes + chunk;
  }

  /** Stores a pin durably. */
  async putPin(p: PinRecord): Promise<void> {
    await this.db.put(pinName(p.id), Buffer.from(JSON.stringify(p)), { sync: true });
  }

  /** Removes a pin durably. */
  async delPin(id: number): Promise<void> {
    await this.db.del(pinName(id), { sync: true });
  }

  /** Closes the database. */
  async close(): Promise<void> {
    await this.db.close();
  }
}
