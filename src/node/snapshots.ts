/**
 * A storage node's snapshot pins (Op.Pin, Op.Unpin, Op.Read + Flag.AsOf; issue 11).
 *
 * A snapshot of a volume is version V = g' × 2^32 after the orchestrator fenced the writer
 * with generation g': every write of an older generation, nothing of g' or later. Pin asks
 * each partition allocator of this node to keep, durably, each page's newest version ≤ V for
 * the volume's keys (Allocator.pin), and records — in `<dataDir>/node<ID>/snapshots.json`,
 * written atomically — the pin ids and which copies the node can vouch for: per partition,
 * the extents of the volume it held pages of *and* was current for at pin time
 * (NodeRecovery.current). A snapshot read
 * (Op.Read + Flag.AsOf) is served only from such a copy; for any other it answers NoSnapshot
 * with a NoSnapshotReason, because zeros or a stale copy would be a lie:
 *
 *   NotPinned   no record of (volume, V), or the partition was not pinned;
 *   Incomplete  the node held or was pulling the extent but was not current for it (or was
 *               peering). (Misplaced copies under a pin are kept, not trimmed: the trim
 *               would be at each page's own version ≤ V, which the pinned view would show.)
 *   Empty       no pages of the extent here at pin time, and the node vouches for it: it was
 *               caught up with its placement and not peering when it pinned, the extent was
 *               not on its work list, placement has not changed since, and the reader names
 *               this partition as a placed member;
 *   Absent      no pages here, without that guarantee.
 *
 * Pins survive restarts: allocator pins are durable, and so is the record (written after the
 * pins; released before them). A crash in between leaves allocator pins no record names;
 * they are released when the registry loads (only pins covering exactly one volume's key
 * range, the shape this file makes). Snapshot reads are not fenced by lease and never refused
 * as NotCurrent: what the node could vouch for was settled when it pinned.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Allocator } from '../../allocator/index.ts';
import type { ClusterMap } from '../clustermap/index.ts';
import { Flag, NoSnapshotReason, extentKey, extentOfKey, volumeOfKey, type RequestHeader } from '../wire/index.ts';
import { writeJsonDurably } from './durable-file.ts';
import { placementFingerprint } from './placement-state.ts';
import type { NodeStorage } from './storage.ts';

/** The last extent index of a volume's key range (allocator keys are extentKey(volume, extent)). */
const LAST_EXTENT = 0xffffffff;
/** Most pages an extent has (1 MiB extents of 4 KiB pages; version() is 0 past a key's pages). */
const EXTENT_PAGES = 256;

/** A snapshot read this node cannot serve: `reason` is one of NoSnapshotReason (the reply's aux). */
export class NoSnapshotError extends Error {
  override name = 'NoSnapshotError';
  constructor(readonly reason: number, message: string) {
    super(message);
  }
}

/** One pinned snapshot as stored in snapshots.json. Partition leaf ids are the object keys. */
export interface SnapshotRecord {
  volume: number;
  version: number;
  /** Allocator pin id per partition leaf. */
  pins: Record<string, number>;
  /** Per partition leaf: sorted extent indexes of a current copy with pages at pin time. */
  held: Record<string, number[]>;
  /** Records written before misplaced copies under a pin were kept: per-copy trimmed page counts (ignored). */
  trimmed?: Record<string, number[]>;
  /** Sorted extent indexes this node held or was pulling but was not current for. */
  incomplete: number[];
  /** The node was peering when it pinned (it vouches for no extent). */
  peering: boolean;
  /** The node had pulled every extent of its placement and was not peering when it pinned. */
  settled: boolean;
  /** placementFingerprint of the node's map when it pinned. */
  placement: number;
  /** When it pinned (ms since 1970; informational). */
  pinnedAt: number;
}

/** What Op.Pin reports (its 12-byte reply payload). */
export interface PinSummary {
  /** Extent copies this node vouches for. */
  held: number;
  /** Extents it held or was pulling but was not current for. */
  incomplete: number;
  /** It was peering (vouches for nothing not listed in `held`). */
  peering: boolean;
}

/** Op.Pin's reply payload: u32 held, u32 incomplete, u32 flags (bit 0: peering). */
export function encodePinSummary(s: PinSummary): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt32LE(s.held, 0);
  b.writeUInt32LE(s.incomplete, 4);
  b.writeUInt32LE(s.peering ? 1 : 0, 8);
  return b;
}

/** What SnapshotPins needs of its node. */
export interface SnapshotPinsOptions {
  storage: NodeStorage;
  nodeId: number;
  /** Where the record lives (null: in memory only, for tests). */
  path: string | null;
  log: Logger;
  /** The node's current map (for the placement fingerprint). */
  map(): ClusterMap;
  /** Whether a host read of `extent` of `volume` from partition `leaf` may be served here (NodeRecovery.current). */
  current(volume: number, extent: number, leaf: number): boolean;
  /** Whether the node may lack writes it has not heard about yet (NodeRecovery.peering). */
  peering(): boolean;
  /** Extent indexes of `volume` on the node's recovery work list. */
  pulling(volume: number): number[];
  /** placementFingerprint of the placement whose extents the node has all pulled (NodeRecovery.peeringState), null when unknown. */
  caughtUp(): number | null;
}

/** A record with its lookup tables. */
interface Entry {
  rec: SnapshotRecord;
  /** leaf -> extents held at pin time (the values are unused, 0). */
  held: Map<number, Map<number, number>>;
  incomplete: Set<number>;
}

function entryOf(rec: SnapshotRecord): Entry {
  const held = new Map<number, Map<number, number>>();
  for (const [leaf, extents] of Object.entries(rec.held)) {
    const counts: number[] = [];
    held.set(Number(leaf), new Map(extents.map((e, i) => [e, counts[i] ?? 0])));
  }
  return { rec, held, incomplete: new Set(rec.incomplete) };
}

const keyOf = (volume: number, version: number): string => `${volume}@${version}`;

/** Whether allocator pin `p` covers exactly one volume's key range (the shape pin() makes). */
function volumeRangeOf(p: { firstKey: number; lastKey: number }): number | null {
  const v = volumeOfKey(p.firstKey);
  return extentOfKey(p.firstKey) === 0 && p.lastKey === extentKey(v, LAST_EXTENT) ? v : null;
}

/** The registry of one node's snapshot pins (see the module comment). */
export class SnapshotPins {
  private readonly entries = new Map<string, Entry>();
  /** Snapshots released since this node started (answered Released, not NotPinned; memory only). */
  private readonly released = new Set<string>();
  private readonly loading: Promise<void>;
  private loadError: Error | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private fp = { epoch: -1, value: 0 };

  /** Starts loading the record (a missing file is an empty one) and releasing leaked pins. */
  constructor(private readonly opts: SnapshotPinsOptions) {
    this.loading = this.load().catch((e: Error) => {
      this.loadError = e;
      opts.log.error({ err: e.message, path: opts.path }, 'snapshot pins could not be loaded; snapshot requests fail until the node restarts');
    });
  }

  /** Every pinned snapshot (copies of the records). */
  async list(): Promise<SnapshotRecord[]> {
    await this.loaded();
    return [...this.entries.values()].map((e) => structuredClone(e.rec));
  }

  /**
   * Pins `version` of `volume` on every partition (idempotent: an existing pin is reported
   * again). Makes what the node applied durable first.
   * @throws Error from the flush, an allocator or the record's write (the pins made are released).
   */
  async pin(volume: number, version: number): Promise<PinSummary> {
    await this.loaded();
    return this.serial(async () => {
      const known = this.entries.get(keyOf(volume, version));
      if (known) return this.summary(known);
      const t0 = performance.now();
      await this.opts.storage.flushDirty();
      const t1 = performance.now();
      const range = { firstKey: extentKey(volume, 0), lastKey: extentKey(volume, LAST_EXTENT) };
      const parts = [...this.opts.storage.partitions];
      const made = await Promise.allSettled(parts.map(([, a]) => a.pin(version, range)));
      const pins: Record<string, number> = {};
      made.forEach((r, i) => {
        if (r.status === 'fulfilled') pins[parts[i][0]] = r.value;
      });
      const failed = made.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) {
        await this.release(pins);
        throw failed.reason;
      }
      const t2 = performance.now();
      // What this node can vouch for, now that nothing ≤ version can be superseded unseen.
      const peering = this.opts.peering();
      const incomplete = new Set<number>(peering ? [] : this.opts.pulling(volume));
      const held: Record<string, number[]> = {};
      for (const [leaf, a] of parts) {
        const here: Array<[number, number]> = [];
        for (const k of a.keys()) {
          if (volumeOfKey(k) !== volume) continue;
          const extent = extentOfKey(k);
          if (!peering && this.opts.current(volume, extent, leaf)) here.push([extent, 0]);
          else incomplete.add(extent);
        }
        here.sort((x, y) => x[0] - y[0]);
        held[leaf] = here.map((x) => x[0]);
      }
      const placement = this.placement();
      const rec: SnapshotRecord = {
        volume, version, pins, held, incomplete: [...incomplete].sort((x, y) => x - y), peering,
        settled: !peering && this.opts.caughtUp() === placement, placement, pinnedAt: Date.now(),
      };
      const entry = entryOf(rec);
      this.entries.set(keyOf(volume, version), entry);
      this.released.delete(keyOf(volume, version));
      const t3 = performance.now();
      try {
        await this.save();
      } catch (e) {
        this.entries.delete(keyOf(volume, version));
        await this.release(pins);
        throw e;
      }
      const s = this.summary(entry);
      const ms = (a: number, b: number): number => Math.round((b - a) * 10) / 10;
      this.opts.log.info({ volume, version, partitions: parts.length, ...s, settled: rec.settled, flushMs: ms(t0, t1), pinMs: ms(t1, t2), scanMs: ms(t2, t3), saveMs: ms(t3, performance.now()) }, 'snapshot pinned');
      return s;
    });
  }

  /**
   * Releases `version` of `volume`: drops the record (durably), then the allocator pins.
   * Resolves false when it was not pinned here.
   * @throws Error when the record cannot be written (nothing is released then).
   */
  async unpin(volume: number, version: number): Promise<boolean> {
    await this.loaded();
    return this.serial(async () => {
      const k = keyOf(volume, version);
      const e = this.entries.get(k);
      if (!e) return false;
      this.entries.delete(k);
      this.released.add(k);
      try {
        await this.save();
      } catch (err) {
        this.entries.set(k, e);
        throw err;
      }
      await this.release(e.rec.pins);
      this.opts.log.info({ volume, version }, 'snapshot released');
      return true;
    });
  }

  /**
   * Op.Read + Flag.AsOf: the pages `h` names as of snapshot `h.version`, from partition
   * `h.partition` — or, with Flag.AnyPartition, from any partition that holds a copy this
   * node vouches for (one `h.members` names first).
   * @throws NoSnapshotError when this node cannot serve it (see the module comment);
   *         ChecksumError when the copy fails its crc32c; Error when the registry did not load.
   */
  async read(h: RequestHeader): Promise<Buffer> {
    await this.loaded();
    const e = this.entries.get(keyOf(h.volume, h.version));
    const what = `extent ${h.extent} of volume ${h.volume} as of version ${h.version}`;
    if (!e && this.released.has(keyOf(h.volume, h.version))) throw new NoSnapshotError(NoSnapshotReason.Released, `${what}: released on node ${this.opts.nodeId}`);
    if (!e) throw new NoSnapshotError(NoSnapshotReason.NotPinned, `${what}: not pinned on node ${this.opts.nodeId}`);
    const key = extentKey(h.volume, h.extent);
    const stale = e.rec.peering || e.incomplete.has(h.extent);
    if (h.flags & Flag.AnyPartition) {
      const leaves = [...e.held.keys()].filter((l) => e.held.get(l)!.has(h.extent)).sort((x, y) => Number(h.members.includes(y)) - Number(h.members.includes(x)));
      let lost = false;
      for (const leaf of leaves) {
        const data = await this.readLeaf(e, leaf, key, h);
        if (data) return data;
        lost = true;
      }
      if (stale || lost) throw new NoSnapshotError(NoSnapshotReason.Incomplete, `${what}: node ${this.opts.nodeId} had no complete copy`);
      throw new NoSnapshotError(NoSnapshotReason.Absent, `${what}: node ${this.opts.nodeId} held none`);
    }
    const leaf = h.partition;
    if (e.rec.pins[leaf] === undefined) throw new NoSnapshotError(NoSnapshotReason.NotPinned, `${what}: partition ${leaf} is not pinned on node ${this.opts.nodeId}`);
    if (e.held.get(leaf)?.has(h.extent)) {
      const data = await this.readLeaf(e, leaf, key, h);
      if (data) return data;
      throw new NoSnapshotError(NoSnapshotReason.Incomplete, `${what}: partition ${leaf} is no longer on this node`);
    }
    if (stale) throw new NoSnapshotError(NoSnapshotReason.Incomplete, `${what}: partition ${leaf} was not current for it at pin time`);
    const now = this.placement();
    if (e.rec.settled && e.rec.placement === now && h.members.includes(leaf)) {
      throw new NoSnapshotError(NoSnapshotReason.Empty, `${what}: empty on partition ${leaf}`);
    }
    const why = !e.rec.settled ? 'the node was not settled when it pinned'
      : e.rec.placement !== now ? `placement changed since the pin (fingerprint ${e.rec.placement} then, ${now} at epoch ${this.opts.map().epoch})`
        : `the reader's members [${h.members.join(',')}] do not name it`;
    throw new NoSnapshotError(NoSnapshotReason.Absent, `${what}: partition ${leaf} held none, and cannot vouch that it was empty: ${why}`);
  }

  /** Waits for the load and for any pin or unpin in progress. */
  async close(): Promise<void> {
    await this.loading;
    await this.chain.catch(() => undefined);
  }

  /**
   * Reads the held copy of `key` on `leaf` as of the snapshot (null when the partition is
   * gone). The copy keeps its pinned view: host trims after the pin carry newer versions, and
   * the trim of misplaced copies (src/node/misplaced.ts) skips keys under a pin.
   */
  private async readLeaf(e: Entry, leaf: number, key: number, h: RequestHeader): Promise<Buffer | null> {
    const a: Allocator | undefined = this.opts.storage.get(leaf);
    if (!a) return null;
    return a.read(key, h.firstPage, h.pages, e.rec.version);
  }

  private summary(e: Entry): PinSummary {
    let held = 0;
    for (const m of e.held.values()) held += m.size;
    return { held, incomplete: e.incomplete.size, peering: e.rec.peering };
  }

  /** placementFingerprint of the node's current map, computed once per epoch. */
  private placement(): number {
    const m = this.opts.map();
    if (this.fp.epoch !== m.epoch) this.fp = { epoch: m.epoch, value: placementFingerprint(m) };
    return this.fp.value;
  }

  private async loaded(): Promise<void> {
    await this.loading;
    if (this.loadError) throw new Error(`snapshot pins of node ${this.opts.nodeId} did not load: ${this.loadError.message}`);
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const p = this.chain.then(f, f);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Releases allocator pins (leaf -> id), logging the ones that fail (released at the next load). */
  private async release(pins: Record<string, number>): Promise<void> {
    await Promise.all(Object.entries(pins).map(async ([leaf, id]) => {
      const a = this.opts.storage.get(Number(leaf));
      if (!a || !a.listPins().some((p) => p.id === id)) return;
      await a.unpin(id).catch((err: Error) => this.opts.log.warn({ partition: Number(leaf), pin: id, err: err.message }, 'snapshot pin not released; retried at the next start'));
    }));
  }

  private async save(): Promise<void> {
    if (!this.opts.path) return;
    await writeJsonDurably(this.opts.path, { format: 1, snapshots: [...this.entries.values()].map((e) => e.rec) });
  }

  /**
   * Loads the record (none when the file is missing), drops partitions whose allocator pin
   * is gone, and releases allocator pins of the volume-range shape that no record names.
   */
  private async load(): Promise<void> {
    let stored: { snapshots?: SnapshotRecord[] } = {};
    if (this.opts.path) {
      const text = await readFile(this.opts.path, 'utf8').catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return null;
        throw e;
      });
      if (text !== null) stored = JSON.parse(text) as { snapshots?: SnapshotRecord[] };
    }
    let changed = false;
    const named = new Set<string>();
    for (const rec of stored.snapshots ?? []) {
      for (const [leaf, id] of Object.entries(rec.pins)) {
        const a = this.opts.storage.get(Number(leaf));
        if (a && a.listPins().some((p) => p.id === id && p.version === rec.version)) {
          named.add(`${leaf}:${id}`);
          continue;
        }
        this.opts.log.warn({ volume: rec.volume, version: rec.version, partition: Number(leaf) }, 'snapshot pin missing on a partition; its copies are no longer served');
        delete rec.pins[leaf];
        delete rec.held[leaf];
        if (rec.trimmed) delete rec.trimmed[leaf];
        changed = true;
      }
      this.entries.set(keyOf(rec.volume, rec.version), entryOf(rec));
    }
    for (const [leaf, a] of this.opts.storage.partitions) {
      for (const p of a.listPins()) {
        if (named.has(`${leaf}:${p.id}`) || volumeRangeOf(p) === null) continue;
        await a.unpin(p.id);
        this.opts.log.info({ partition: leaf, volume: volumeRangeOf(p), version: p.version }, 'snapshot pin without a record released (a pin or unpin was cut short)');
      }
    }
    if (changed) await this.save();
  }
}
