/**
 * Scrub (DESIGN vocabulary: "comparing and repairing copies"): a storage node's background
 * check that every copy of every extent it holds is the same, and readable.
 *
 * - **Shallow pass.** For every extent this node holds and is the *primary* of (the first
 *   member in placement order whose node is up), the node asks every up member for the
 *   copy's digest (Op.Digest: a crc32c over the page map — page, version, mapped, data crc —
 *   see extentDigest). Equal digests: the copies hold the same pages at the same versions
 *   with the same data checksums. Different digests (asked twice, 100 ms apart, so writes
 *   still landing on some members do not count): the extent is *inconsistent*, and the
 *   members are reconciled (reconcileExtent: the newest version of each page wins, as in
 *   resync). Copies that still differ while every member holds the same versions cannot be
 *   repaired by version and are reported (logged as an error, counted `unrepaired`).
 * - **Deep pass.** Additionally, every node reads every page of every extent it holds (its
 *   own copies, primary or not) through its allocator, which checks each page's crc32c; the
 *   pages that fail are found one by one and rewritten from another up member
 *   (repairRange: read repair, keeping the page's version). Reads go through the `throttle`
 *   hook (the node's recovery rate limit).
 *
 * Like Ceph's scrub (osd_scrub_min_interval, osd_deep_scrub_interval), a pass starts when
 * the last one is older than an interval, one pass at a time, paused while the node peers;
 * extents this node is still recovering (not current) are skipped. The times of the last
 * passes persist in `<dataDir>/node<ID>/scrub.json`, so a restart does not scrub at once.
 */
import { readFile } from 'node:fs/promises';
import { writeJsonDurably } from './durable-file.ts';
import type { Logger } from 'pino';
import { ChecksumError, type Allocator } from '../../allocator/index.ts';
import { mapSettings, type ClusterMap } from '../clustermap/index.ts';
import type { PoolConfig } from '../config/index.ts';
import { ClusterView } from '../initiator/index.ts';
import { reconcileExtent, repairRange, type ExtentCopy } from '../recovery/index.ts';
import { extentOfKey, volumeOfKey, type ConnectionPool } from '../wire/index.ts';
import { extentDigest, localCopy, remoteCopy, remoteDigest, type ExtentDigest } from './extent-copies.ts';
import type { NodeStorage } from './storage.ts';

const PAGE = 4096;

/** What a node's scrub is doing, and found in its current (or last) pass. Times: ms since 1970. */
export interface ScrubStatus {
  /** A pass is under way. */
  running: boolean;
  /** The current (or last) pass is deep (reads every page) rather than shallow. */
  deep: boolean;
  /** When the current (or last) pass started; null before the first pass of this process. */
  startedAt: number | null;
  /** When the last pass ended; null while the first one runs or before it. */
  finishedAt: number | null;
  /** Extents the pass covers: primaries here (shallow), plus every copy held here (deep). */
  extentsTotal: number;
  extentsDone: number;
  /** Bytes of mapped pages of the extents done (compared by digest, or read when deep). */
  bytesDone: number;
  /** Extents whose members' digests differed. */
  inconsistent: number;
  /** Pages of copies held here that failed their crc32c when read (deep). */
  badPages: number;
  /** Inconsistent extents reconciled to equal digests, plus bad pages rewritten good. */
  repaired: number;
  /** Inconsistent extents or bad pages that could not be repaired (see the node's log). */
  unrepaired: number;
  /** Extents skipped: this node is not current for them (recovering). */
  skipped: number;
  /** Extents whose scrub failed (a member unreachable, I/O error); retried next pass. */
  errors: number;
  /** When the last completed pass (shallow or deep) ended; null when none has. */
  lastShallowAt: number | null;
  /** When the last completed deep pass ended; null when none has. */
  lastDeepAt: number | null;
  /** A deep pass was asked for while a shallow one ran: it starts when that one ends. */
  deepQueued: boolean;
}

/** What `Scrubber.start` answers: the status, and whether this call started the pass. */
export type ScrubStartResult = ScrubStatus & { started: boolean };

/**
 * Progress of a pass, for the node's recovery report (kind 'scrub'): `start` with the pass's
 * extents and bytes, `extent` once per extent done with its bytes, `end` when it stops.
 */
export type ScrubProgressEvent =
  | { kind: 'scrub'; phase: 'start'; deep: boolean; extentsTotal: number; bytesTotal: number }
  | { kind: 'scrub'; phase: 'extent'; bytes: number }
  | { kind: 'scrub'; phase: 'end'; aborted: boolean };

/** What a Scrubber needs. */
export interface ScrubberOptions {
  storage: NodeStorage;
  nodeId: number;
  /** Connections to the other nodes (Op.Digest, Op.Versions, recovery reads, Op.Put). */
  peers: ConnectionPool;
  /** The node's current map (placement, up/down). */
  map: { epoch(): number; map(): ClusterMap };
  /** cluster.json's pools (placement rules). */
  pools: PoolConfig[];
  /** Pool and page count of a volume's extents (NodeRecovery.volumeInfo). */
  volumeInfo: (volume: number) => { pool: number; extentPages: number };
  log: Logger;
  /** Whether this node holds `extent` of `volume` current (not still recovering it). */
  isCurrent: (volume: number, extent: number) => boolean;
  /** True while the node is peering: a pass waits (and none starts on schedule) meanwhile. */
  busy: () => boolean;
  /** Path of the stored pass times (`<dataDir>/node<ID>/scrub.json`); null/absent: kept in memory only. */
  statePath?: string | null;
  /**
   * Time between passes (ms; ≤ 0 or not finite: never on schedule). Default: the map's
   * settings scrubIntervalMs and deepScrubIntervalMs (mapSettings; one day and one week
   * unless changed with `cairn set`).
   */
  intervals?: () => { shallowMs: number; deepMs: number };
  /** Waits as the recovery rate limit requires before `bytes` are read (default: no wait). */
  throttle?: (bytes: number) => Promise<void>;
  /** Progress of each pass (default: none). */
  progress?: (ev: ScrubProgressEvent) => void;
  /** How often the schedule is checked (ms, default 10000). */
  checkEveryMs?: number;
  /** Clock (ms since 1970; default Date.now). */
  now?: () => number;
}

/** One extent copy a pass visits. */
interface Work {
  leaf: number;
  key: number;
  volume: number;
  extent: number;
  /** Read every page (deep). */
  verify: boolean;
  /** Compare the members' digests (this copy is the primary's). */
  compare: boolean;
}

interface StoredTimes {
  /** When this node first scheduled scrubs (the schedule counts from here until a pass ends). */
  since: number;
  lastShallowAt: number | null;
  lastDeepAt: number | null;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

function zeroCounts(): Pick<ScrubStatus, 'extentsTotal' | 'extentsDone' | 'bytesDone' | 'inconsistent' | 'badPages' | 'repaired' | 'unrepaired' | 'skipped' | 'errors'> {
  return { extentsTotal: 0, extentsDone: 0, bytesDone: 0, inconsistent: 0, badPages: 0, repaired: 0, unrepaired: 0, skipped: 0, errors: 0 };
}

/**
 * One storage node's scrub: runs shallow and deep passes on a schedule (`schedule()`) and
 * on demand (`start()`), never two at once. See the module comment for what a pass does.
 */
export class Scrubber {
  private readonly now: () => number;
  private readonly throttle: (bytes: number) => Promise<void>;
  private state: Omit<ScrubStatus, 'lastShallowAt' | 'lastDeepAt' | 'deepQueued'> = { running: false, deep: false, startedAt: null, finishedAt: null, ...zeroCounts() };
  private times: StoredTimes;
  private readonly loaded: Promise<void>;
  private pass: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private saving: Promise<void> = Promise.resolve();
  private view: ClusterView | null = null;
  private deepQueued = false;

  constructor(private readonly opts: ScrubberOptions) {
    this.now = opts.now ?? Date.now;
    this.throttle = opts.throttle ?? (async () => undefined);
    this.times = { since: this.now(), lastShallowAt: null, lastDeepAt: null };
    this.loaded = this.load();
  }

  /** Reads the stored pass times; a missing or unreadable file starts the schedule now (stored). */
  private async load(): Promise<void> {
    const path = this.opts.statePath;
    if (!path) return;
    try {
      const t = JSON.parse(await readFile(path, 'utf8')) as Partial<StoredTimes>;
      const num = (x: unknown): number | null => (typeof x === 'number' && Number.isFinite(x) ? x : null);
      this.times = { since: num(t.since) ?? this.times.since, lastShallowAt: num(t.lastShallowAt), lastDeepAt: num(t.lastDeepAt) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.opts.log.warn({ path, err: (e as Error).message }, 'scrub: stored pass times unreadable; scheduling from now');
      await this.save();
    }
  }

  /** Stores the pass times: temp file, fsync, rename, fsync of the directory. Never rejects. */
  private save(): Promise<void> {
    const path = this.opts.statePath;
    if (!path) return Promise.resolve();
    const times = { ...this.times };
    this.saving = this.saving.then(async () => {
      try {
        await writeJsonDurably(path, times);
      } catch (e) {
        this.opts.log.warn({ path, err: (e as Error).message }, 'scrub: could not store the pass times');
      }
    });
    return this.saving;
  }

  /** The current (or last) pass's state and the times of the last passes. */
  status(): ScrubStatus {
    return { ...this.state, lastShallowAt: this.times.lastShallowAt, lastDeepAt: this.times.lastDeepAt, deepQueued: this.deepQueued };
  }

  /**
   * Starts the schedule: every `checkEveryMs` a deep pass starts when the last one ended more
   * than the deep interval ago, else a shallow pass when the last pass did more than the
   * shallow interval ago (counting from the node's first schedule when none has) — unless a
   * pass runs or the node is peering. The timer does not keep the process alive.
   */
  schedule(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => void this.tick(), this.opts.checkEveryMs ?? 10000);
    this.timer.unref();
    void this.tick();
  }

  private async tick(): Promise<void> {
    await this.loaded;
    if (this.closed || this.pass || this.opts.busy()) return;
    const { shallowMs, deepMs } = this.opts.intervals?.() ?? this.mapIntervals();
    const now = this.now();
    const due = (ms: number, last: number | null): boolean => Number.isFinite(ms) && ms > 0 && now - (last ?? this.times.since) >= ms;
    if (due(deepMs, this.times.lastDeepAt)) this.begin(true);
    else if (due(shallowMs, this.times.lastShallowAt)) this.begin(false);
  }

  /**
   * Starts a pass now (deep when `opts` is true or `{deep: true}`), unless one runs: then
   * that one goes on (`started` false), and a deep pass asked for while a shallow one runs
   * starts when it ends (`deepQueued`). The pass runs in the background; follow it with
   * status(). After close() nothing starts.
   * @returns the status right after the call, with `started`.
   */
  start(opts: { deep?: boolean } | boolean = {}): ScrubStartResult {
    const deep = typeof opts === 'boolean' ? opts : opts.deep === true;
    if (!this.closed && this.pass && deep && !this.state.deep) this.deepQueued = true;
    if (this.closed || this.pass) return { ...this.status(), started: false };
    this.begin(deep);
    return { ...this.status(), started: true };
  }

  /** Resolves when the running pass (if any) has ended. */
  async idle(): Promise<void> {
    while (this.pass) await this.pass;
  }

  /**
   * Stops the schedule and the running pass (after the extent in hand); resolves when the
   * pass has ended. An interrupted pass does not count as done.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.deepQueued = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.pass;
    await this.saving;
  }

  private mapIntervals(): { shallowMs: number; deepMs: number } {
    const s = mapSettings(this.opts.map.map());
    return { shallowMs: s.scrubIntervalMs, deepMs: s.deepScrubIntervalMs };
  }

  private clusterView(): ClusterView {
    const m = this.opts.map.map();
    if (!this.view || this.view.epoch !== m.epoch) this.view = new ClusterView(m, this.opts.pools);
    return this.view;
  }

  /** Placement members of an extent (empty when it cannot be placed). */
  private members(view: ClusterView, volume: number, extent: number): number[] {
    try {
      return view.members(volume, extent, this.opts.volumeInfo(volume).pool);
    } catch {
      return [];
    }
  }

  /** The first member whose node is up (the extent's primary), or undefined. */
  private primary(view: ClusterView, members: number[]): number | undefined {
    return members.find((m) => view.isUp(view.nodeOf(m)));
  }

  /** The extent copies a pass visits, in partition and key order. */
  private plan(deep: boolean): { work: Work[]; bytes: number } {
    const view = this.clusterView();
    const work: Work[] = [];
    let bytes = 0;
    for (const [leaf, a] of [...this.opts.storage.partitions].sort((x, y) => x[0] - y[0])) {
      for (const key of [...a.keys()].sort((x, y) => x - y)) {
        const volume = volumeOfKey(key);
        const extent = extentOfKey(key);
        const compare = this.primary(view, this.members(view, volume, extent)) === leaf;
        if (!deep && !compare) continue;
        work.push({ leaf, key, volume, extent, verify: deep, compare });
        bytes += a.mappedPages(key) * PAGE;
      }
    }
    return { work, bytes };
  }

  private begin(deep: boolean): void {
    const { work, bytes } = this.plan(deep);
    this.state = { running: true, deep, startedAt: this.now(), finishedAt: this.state.finishedAt, ...zeroCounts(), extentsTotal: work.length };
    this.opts.progress?.({ kind: 'scrub', phase: 'start', deep, extentsTotal: work.length, bytesTotal: bytes });
    this.opts.log.info({ deep, extents: work.length, bytes }, `scrub: ${deep ? 'deep' : 'shallow'} pass started`);
    this.pass = this.run(work, deep).finally(() => {
      this.pass = null;
      if (this.deepQueued && !this.closed) {
        this.deepQueued = false;
        this.begin(true);
      }
    });
  }

  private async run(work: Work[], deep: boolean): Promise<void> {
    const s = this.state;
    let aborted = false;
    try {
      for (const w of work) {
        while (!this.closed && this.opts.busy()) await sleep(500);
        if (this.closed) {
          aborted = true;
          break;
        }
        const a = this.opts.storage.get(w.leaf);
        const bytes = a ? a.mappedPages(w.key) * PAGE : 0;
        try {
          if (a) await this.scrubExtent(a, w);
        } catch (e) {
          s.errors++;
          this.opts.log.warn({ volume: w.volume, extent: w.extent, partition: w.leaf, err: (e as Error).message }, 'scrub: extent not checked; retried next pass');
        }
        s.extentsDone++;
        s.bytesDone += bytes;
        this.opts.progress?.({ kind: 'scrub', phase: 'extent', bytes });
      }
    } finally {
      s.running = false;
      s.finishedAt = this.now();
      this.opts.progress?.({ kind: 'scrub', phase: 'end', aborted });
      const summary = { deep, extents: s.extentsDone, of: s.extentsTotal, bytes: s.bytesDone, inconsistent: s.inconsistent, badPages: s.badPages, repaired: s.repaired, unrepaired: s.unrepaired, skipped: s.skipped, errors: s.errors, ms: s.finishedAt - (s.startedAt ?? s.finishedAt) };
      if (aborted) this.opts.log.info(summary, 'scrub: pass interrupted');
      else {
        this.opts.log[s.unrepaired ? 'error' : s.inconsistent || s.badPages ? 'warn' : 'info'](summary, `scrub: ${deep ? 'deep' : 'shallow'} pass done`);
        await this.loaded;
        this.times.lastShallowAt = s.finishedAt;
        if (deep) this.times.lastDeepAt = s.finishedAt;
        await this.save();
      }
    }
  }

  private async scrubExtent(a: Allocator, w: Work): Promise<void> {
    if (!this.opts.isCurrent(w.volume, w.extent)) {
      this.state.skipped++;
      return;
    }
    const { extentPages } = this.opts.volumeInfo(w.volume);
    const view = this.clusterView();
    const members = this.members(view, w.volume, w.extent);
    if (w.verify) await this.verify(a, w, extentPages, view, members);
    // The map may have moved since the plan: compare only while still the primary.
    if (w.compare && this.primary(view, members) === w.leaf) await this.compare(w, extentPages, view, members);
  }

  private copyOf(leaf: number, w: Work, extentPages: number): ExtentCopy {
    return leaf === w.leaf
      ? localCopy(this.opts.storage, this.opts.nodeId, leaf, w.key, extentPages)
      : remoteCopy(this.opts.peers, () => this.opts.map.epoch(), leaf, w.volume, w.extent, extentPages);
  }

  /** Deep: reads the local copy; rewrites each page that fails its crc32c from another up member. */
  private async verify(a: Allocator, w: Work, extentPages: number, view: ClusterView, members: number[]): Promise<void> {
    await this.throttle(a.mappedPages(w.key) * PAGE);
    try {
      await a.read(w.key, 0, extentPages);
      return;
    } catch (e) {
      if (!(e instanceof ChecksumError)) throw e;
    }
    // Find every bad page: one read per mapped page.
    const bad: number[] = [];
    for (const p of [...a.pages(w.key)]) {
      if (p.page >= extentPages) break;
      try {
        await a.read(w.key, p.page, 1);
      } catch (e) {
        if (!(e instanceof ChecksumError)) throw e;
        bad.push(p.page);
      }
    }
    const sources = members.filter((m) => m !== w.leaf && view.isUp(view.nodeOf(m)));
    const target = this.copyOf(w.leaf, w, extentPages);
    const base = { volume: w.volume, extent: w.extent, partition: w.leaf };
    let rewrote = false;
    for (const page of bad) {
      this.state.badPages++;
      this.opts.log.warn({ ...base, page }, 'scrub: page failed its checksum');
      let from: number | null = null;
      let lastErr = sources.length ? 'no member holds a good copy of it at this version or newer' : 'no other up member';
      for (const s of sources) {
        try {
          const r = await repairRange(target, [this.copyOf(s, w, extentPages)], page, 1);
          rewrote ||= r.pages > 0;
          await a.read(w.key, page, 1); // good now?
          from = s;
          break;
        } catch (e) {
          lastErr = (e as Error).message;
        }
      }
      if (from !== null) {
        this.state.repaired++;
        this.opts.log.warn({ ...base, page, source: from }, 'scrub: bad page rewritten from another member');
      } else {
        this.state.unrepaired++;
        this.opts.log.error({ ...base, page, err: lastErr }, 'scrub: bad page could not be repaired');
      }
    }
    if (rewrote) await a.flush();
  }

  /** The digests of `leaves` (local or remote); a member that fails is left out and counted. */
  private async digests(w: Work, extentPages: number, leaves: number[]): Promise<Map<number, ExtentDigest>> {
    const epoch = this.opts.map.epoch();
    const got = await Promise.allSettled(leaves.map(async (m) => {
      if (m !== w.leaf) return remoteDigest(this.opts.peers, epoch, m, w.volume, w.extent, extentPages);
      const a = this.opts.storage.get(m);
      if (!a) throw new Error(`partition ${m} is gone`);
      return extentDigest(a, w.key, extentPages);
    }));
    const out = new Map<number, ExtentDigest>();
    got.forEach((r, i) => {
      if (r.status === 'fulfilled') out.set(leaves[i], r.value);
      else this.opts.log.warn({ volume: w.volume, extent: w.extent, partition: leaves[i], err: (r.reason as Error).message }, 'scrub: member did not answer its digest');
    });
    return out;
  }

  private static agree(ds: Map<number, ExtentDigest>): boolean {
    const list = [...ds.values()];
    return list.every((d) => d.digest === list[0].digest && d.mapped === list[0].mapped && d.versioned === list[0].versioned);
  }

  /** Shallow: compares every up member's digest; reconciles the members when they differ. */
  private async compare(w: Work, extentPages: number, view: ClusterView, members: number[]): Promise<void> {
    const up = members.filter((m) => view.isUp(view.nodeOf(m)));
    if (up.length < 2) return;
    let ds = await this.digests(w, extentPages, up);
    if (ds.size < up.length) this.state.errors++;
    if (ds.size < 2 || Scrubber.agree(ds)) return;
    // Writes may still be landing on some members: look again before calling it inconsistent.
    await sleep(100);
    ds = await this.digests(w, extentPages, [...ds.keys()]);
    if (ds.size < 2 || Scrubber.agree(ds)) return;
    const answered = [...ds.keys()];
    const show = (m: Map<number, ExtentDigest>): Array<{ partition: number } & ExtentDigest> => [...m].map(([partition, d]) => ({ partition, ...d }));
    const base = { volume: w.volume, extent: w.extent, members: answered };
    this.state.inconsistent++;
    this.opts.log.warn({ ...base, digests: show(ds) }, 'scrub: copies differ; reconciling (newest version of each page wins)');
    const copies = answered.map((m) => this.copyOf(m, w, extentPages));
    let pages = 0;
    for (let round = 0; round < 2; round++) {
      const r = await reconcileExtent(copies);
      pages += r.pages;
      if (r.pages) await this.throttle(r.pages * PAGE);
      ds = await this.digests(w, extentPages, answered);
      if (ds.size === answered.length && Scrubber.agree(ds)) {
        this.state.repaired++;
        this.opts.log.warn({ ...base, pages }, 'scrub: copies reconciled; digests equal');
        return;
      }
      if (r.pages === 0 && ds.size === answered.length) {
        this.state.unrepaired++;
        this.opts.log.error({ ...base, digests: show(ds) }, 'scrub: copies disagree at equal versions');
        return;
      }
    }
    this.state.unrepaired++;
    this.opts.log.error({ ...base, pages, digests: show(ds) }, 'scrub: copies still differ after reconciling');
  }
}
