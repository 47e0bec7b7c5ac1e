/**
 * The checkpoint database of one partition: a `level` (LevelDB) store holding the page
 * map as of a log position, so that recovery reads the map and rolls forward only over
 * later records instead of over the whole log.
 *
 * Keys (utf8) and values (bytes):
 *   "m"             meta JSON: uuid, cut seq, host clock, segments open at the cut
 *   "a"             host clock at which each segment was sealed (Float64Array)
 *   "k<14 hex>"     one KeyTable (see KeyTable.encode) per owner key
 *   "p<8 hex>"      one snapshot pin JSON
 *   "d"             durable horizon: uuid (16 B) + f64 seq; every record with seq ≤ it was
 *                   covered by a completed fdatasync. Written without sync after some
 *                   fdatasyncs (losing it only makes recovery check more pages).
 * Key records are written first and the meta record last, with `sync: true`; LevelDB
 * batches are atomic, and a batch split in chunks leaves key records that are only newer
 * than the meta's cut, which roll-forward tolerates (replaying a record twice is idempotent).
 * A region is formatted only after its first (empty) checkpoint is committed, so a valid
 * superblock without a matching meta record means the database was lost or replaced.
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
  /** Host clock (pages written by hosts since format) at the cut. */
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
  /** Host clock at which each segment was sealed, or null. */
  sealedAt: Float64Array | null;
  tables: Map<number, KeyTable>;
  pins: PinRecord[];
  /** Durable horizon recorded for this region (0 when none). */
  horizon: number;
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
   * Loads the newest checkpoint of region `uuid`. Returns null when there is none, or a
   * string naming the other region the stored one belongs to.
   * @throws Error when a stored record is malformed.
   */
  async load(uuid: string): Promise<LoadedCheckpoint | null | string> {
    const m = await this.db.get('m');
    if (!m) return null;
    const meta = JSON.parse(m.toString('utf8')) as CheckpointMeta;
    if (meta.uuid !== uuid) return meta.uuid;
    const a = await this.db.get('a');
    let sealedAt: Float64Array | null = null;
    if (a && a.length % 8 === 0) {
      sealedAt = new Float64Array(a.length / 8);
      new Uint8Array(sealedAt.buffer).set(a);
    }
    const tables = new Map<number, KeyTable>();
    for await (const [k, v] of this.db.iterator({ gte: 'k', lt: 'l' })) tables.set(parseInt(k.slice(1), 16), KeyTable.decode(v));
    const pins: PinRecord[] = [];
    for await (const [, v] of this.db.iterator({ gte: 'p', lt: 'q' })) pins.push(JSON.parse(v.toString('utf8')) as PinRecord);
    const d = await this.db.get('d');
    const horizon = d && d.length === 24 && d.subarray(0, 16).toString('hex') === uuid ? d.readDoubleLE(16) : 0;
    return { meta, sealedAt, tables, pins, horizon };
  }

  /**
   * Writes key records (null value: delete) then the meta and the segments' seal clocks,
   * durably. Returns the bytes handed to the database (keys + values).
   */
  async save(records: Array<[number, Buffer | null]>, meta: CheckpointMeta, sealedAt: Float64Array): Promise<number> {
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
    const a = Buffer.from(sealedAt.buffer, sealedAt.byteOffset, sealedAt.byteLength);
    ops.push({ type: 'put', key: 'a', value: Buffer.from(a) });
    ops.push({ type: 'put', key: 'm', value: m });
    chunk += m.length + a.length + 2;
    await this.db.batch(ops, { sync: true });
    return bytes + chunk;
  }

  /**
   * Records (without waiting for stable storage) that every record of region `uuid` with
   * seq ≤ `seq` is durable. Returns the bytes handed to the database.
   */
  async putHorizon(uuid: string, seq: number): Promise<number> {
    const v = Buffer.alloc(24);
    Buffer.from(uuid, 'hex').copy(v, 0, 0, 16);
    v.writeDoubleLE(seq, 16);
    await this.db.put('d', v);
    return 25;
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
