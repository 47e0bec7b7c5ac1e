/**
 * Recovery of one partition at open: newest checkpoint + roll-forward over the record
 * headers written after its cut, in seq order, applying the same map-update rule as at
 * run time (partition-state.ts).
 *
 * 1. Load the checkpoint (tables, pins, cut seq, host clock, seal clocks). A formatted
 *    region always has one (it is written before the superblock); none, or one of another
 *    region, means the database was lost: FormatError, unless `rebuild` asks to rebuild
 *    the map from the log alone (see Allocator.open).
 * 2. Read the first header of every segment; roll forward over segments whose first record
 *    is newer than the cut, and over those open at the cut.
 * 3. Walk each such segment's header chain, reading only header blocks (one 4 KiB read per
 *    record, 32 segments at a time, the first one kept from step 2) — not the data pages.
 * 4. Apply the records after the cut in seq order. Data pages are read and their crc32c
 *    checked only for records newer than the durable horizon D, the highest "durable seq"
 *    stamped in any header read, or recorded in the database after an fdatasync, and at
 *    least the cut: each says "every record with seq ≤ d was covered by a completed
 *    fdatasync" (a header: when it was built), so records ≤ D were on
 *    stable storage, whole, before the crash and cannot be torn. Their bytes may still rot
 *    later, but then reads catch it with the crc from the summary (ChecksumError) instead of
 *    recovery dropping them and every later record of their segment. Records above D can be
 *    torn appends: the first one whose pages do not match its summary ends its segment's
 *    roll-forward.
 * 5. A dropped record's header is zeroed and synced before the allocator opens: otherwise a
 *    later header's durable seq could exceed its seq and a later recovery would trust it.
 *    Segments that end up with no live block are free, except those holding trims newer
 *    than the cut, which wait (dying) for the next checkpoint.
 *
 * Records of an earlier use of a reused segment can survive only as a valid first header
 * whose successor was never written; replaying them is harmless: each of their pages was
 * superseded by a record that is durable and still present (the segment was reused only
 * after that), and that record has a higher seq, so it is replayed later.
 */
import { crc32c } from '@node-rs/crc32';
import { FormatError } from './errors.ts';
import { NONE, PAGE, parseHeader } from './layout.ts';
import { RunTable } from './summary.ts';
import { DYING, FREE, SEALED } from './segments.ts';
import { datasync, pread, preadFully, pwritevFully } from './device-io.ts';
import type { CheckpointStore } from './checkpoint-store.ts';
import type { PartitionState } from './partition-state.ts';

/** What recovery did (for stats and the bench). */
export interface RecoveryReport {
  /** A checkpoint was found (false: fresh region, or rebuilt from the log). */
  fromCheckpoint: boolean;
  /** Segments whose header chains were walked. */
  segmentsScanned: number;
  /** Header blocks read (first blocks of all segments included). */
  headerReads: number;
  /** Records after the cut applied to the map. */
  recordsReplayed: number;
  /** Pages those records carried. */
  pagesReplayed: number;
  /** Records newer than the durable horizon whose pages were read and checked. */
  recordsVerified: number;
  /** Torn records dropped (with their segment's later records). */
  recordsDropped: number;
  /** Bytes of log after the cut (headers + data blocks of the replayed records). */
  logBytesReplayed: number;
  /** Wall time of recovery in seconds. */
  seconds: number;
}

/** Concurrent reads while scanning. */
const PARALLEL = 32;

/**
 * Recovers `st` (empty) from the checkpoint database and the log. `fresh`: the region was
 * just formatted (nothing to scan). `rebuild`: without a checkpoint, rebuild from the log.
 * @throws FormatError when the checkpoint database is missing or of another region.
 */
export async function recover(st: PartitionState, store: CheckpointStore, where: string, fresh: boolean, rebuild: boolean): Promise<RecoveryReport> {
  const t0 = performance.now();
  const { geo, segs } = st;
  const { S, segments: nSeg, fd, offset, uuidTag } = geo;
  const report: RecoveryReport = {
    fromCheckpoint: false, segmentsScanned: 0, headerReads: 0, recordsReplayed: 0, pagesReplayed: 0,
    recordsVerified: 0, recordsDropped: 0, logBytesReplayed: 0, seconds: 0,
  };
  const loaded = await store.load(geo.uuidHex);
  let cut = 0;
  let dbHorizon = 0;
  let open: number[] = [];
  if (loaded === null || typeof loaded === 'string') {
    if (!rebuild) {
      const why = loaded === null ? 'holds no checkpoint' : `holds the checkpoint of another region (${loaded})`;
      throw new FormatError(`${where}: the checkpoint database ${why}; it was lost or replaced. ` +
        'Reopen with rebuildFromLog: true to rebuild the page map from the log alone ' +
        '(pages trimmed by trim records that were already recycled may reappear, and snapshot pins are forgotten).');
    }
    await store.clear();
  } else {
    report.fromCheckpoint = !fresh;
    for (const [k, t] of loaded.tables) st.tables.set(k, t);
    for (const p of loaded.pins) {
      st.pins.set(p.id, p);
      if (p.id >= st.nextPinId) st.nextPinId = p.id + 1;
    }
    cut = loaded.meta.cutSeq;
    dbHorizon = loaded.horizon;
    st.clock = loaded.meta.clock;
    st.clockAtCut = loaded.meta.clock;
    open = loaded.meta.openSegments;
    if (loaded.sealedAt && loaded.sealedAt.length === nSeg) segs.sealedAt.set(loaded.sealedAt);
  }

  // 2. First header of every segment; those of the candidates are kept for step 3.
  const firstSeq = new Float64Array(nSeg);
  const openSet = new Set(open);
  const firstHeader = new Map<number, Buffer>();
  if (!fresh) {
    let next = 0;
    await Promise.all(Array.from({ length: PARALLEL }, async () => {
      let h = Buffer.allocUnsafe(PAGE);
      while (next < nSeg) {
        const s = next++;
        const n = await pread(fd, h, 0, PAGE, offset + (1 + s * S) * PAGE);
        report.headerReads++;
        if (n < PAGE) continue;
        const r = parseHeader(h, uuidTag, s, 0, S, 0);
        if (!r) continue;
        firstSeq[s] = r.seq;
        if (r.seq > cut || openSet.has(s)) {
          firstHeader.set(s, h);
          h = Buffer.allocUnsafe(PAGE);
        }
      }
    }));
  }
  const cands = [...firstHeader.keys()];
  report.segmentsScanned = cands.length;

  // 3. Walk the header chains of the candidates (header blocks only). The headers are kept
  // for step 4 unless there are very many.
  const keep = cands.length <= 65536;
  const dSeg: number[] = [];
  const dPos: number[] = [];
  const dSeq: number[] = [];
  const dData: number[] = [];
  const dRuns: number[] = [];
  const dBody: number[] = [];
  const dAge: number[] = [];
  const dHdr: Array<Buffer | null> = [];
  let maxSeq = cut;
  let horizon = Math.max(cut, dbHorizon);
  for (let s = 0; s < nSeg; s++) if (firstSeq[s] > maxSeq) maxSeq = firstSeq[s];
  let ci = 0;
  await Promise.all(Array.from({ length: PARALLEL }, async () => {
    const runs = new RunTable();
    while (ci < cands.length) {
      const s = cands[ci++];
      let pos = 0;
      let prev = 0;
      let last = -1;
      let h = firstHeader.get(s)!;
      firstHeader.delete(s);
      while (pos < S) {
        if (pos > 0) {
          h = Buffer.allocUnsafe(PAGE);
          const n = await pread(fd, h, 0, PAGE, offset + (1 + s * S + pos) * PAGE);
          report.headerReads++;
          if (n < PAGE) break;
        }
        const r = parseHeader(h, uuidTag, s, pos, S, prev);
        if (!r || r.seq <= last || !runs.decode(h, r.runs, r.bodyBytes, r.dataBlocks)) break;
        dSeg.push(s);
        dPos.push(pos);
        dSeq.push(r.seq);
        dData.push(r.dataBlocks);
        dRuns.push(r.runs);
        dBody.push(r.bodyBytes);
        dAge.push(r.age);
        dHdr.push(keep && r.seq > cut ? h : null);
        if (r.seq > maxSeq) maxSeq = r.seq;
        if (r.durable > horizon) horizon = r.durable;
        if (r.age > st.clock) st.clock = r.age;
        last = r.seq;
        prev = r.crc;
        pos += 1 + r.dataBlocks;
      }
    }
  }));

  // 4. Apply the records after the cut in seq order; check pages only above the horizon.
  const order: number[] = [];
  for (let i = 0; i < dSeq.length; i++) if (dSeq[i] > cut) order.push(i);
  order.sort((a, b) => dSeq[a] - dSeq[b]);
  const stopped = new Set<number>();
  const dropped: Array<[number, number]> = [];
  const trimSeq = new Map<number, number>();
  const sealedAt = new Map<number, number>();
  let aboveHorizon = false;
  const read = async (i: number): Promise<Buffer> => {
    const verify = dSeq[i] > horizon;
    const kept = dHdr[i];
    if (kept && !verify) return kept;
    const blocks = verify ? 1 + dData[i] : 1;
    const b = Buffer.allocUnsafe(blocks * PAGE);
    const n = await preadFully(fd, b, 0, blocks * PAGE, offset + (1 + dSeg[i] * S + dPos[i]) * PAGE);
    if (n < blocks * PAGE) b.fill(0, n);
    return b;
  };
  const inflight: Array<Promise<Buffer> | null> = new Array(order.length).fill(null);
  for (let k = 0; k < Math.min(PARALLEL, order.length); k++) inflight[k] = read(order[k]);
  const runs = new RunTable();
  for (let k = 0; k < order.length; k++) {
    const buf = await inflight[k]!;
    inflight[k] = null;
    if (k + PARALLEL < order.length) inflight[k + PARALLEL] = read(order[k + PARALLEL]);
    const i = order[k];
    dHdr[i] = null;
    const s = dSeg[i];
    if (stopped.has(s)) continue;
    const seq = dSeq[i];
    const h = buf.subarray(0, PAGE);
    if (!runs.decode(h, dRuns[i], dBody[i], dData[i])) {
      stopped.add(s);
      dropped.push([s, dPos[i]]);
      continue;
    }
    if (seq > horizon) {
      report.recordsVerified++;
      let ok = true;
      for (let r = 0; r < runs.n && ok; r++) {
        if (runs.trim[r]) continue;
        for (let j = 0, c = runs.count[r]; j < c; j++) {
          const o = (1 + runs.block[r] + j) * PAGE;
          if (crc32c(buf.subarray(o, o + PAGE)) !== h.readUInt32LE(runs.crcAt[r] + 4 * j)) {
            ok = false;
            break;
          }
        }
      }
      if (!ok) {
        stopped.add(s);
        dropped.push([s, dPos[i]]);
        continue;
      }
      aboveHorizon = true;
    }
    const base = 1 + s * S + dPos[i] + 1;
    for (let r = 0; r < runs.n; r++) {
      const key = runs.key[r];
      const first = runs.first[r];
      const count = runs.count[r];
      const version = runs.version[r];
      if (runs.trim[r]) {
        st.applyTrim(key, first, count, version, seq);
        trimSeq.set(s, seq);
        continue;
      }
      const t = st.table(key);
      const b0 = base + runs.block[r];
      const c0 = runs.crcAt[r];
      for (let j = 0; j < count; j++) st.applyPage(t, key, first + j, version, b0 + j, h.readUInt32LE(c0 + 4 * j), seq);
      st.dirty.add(key);
      report.pagesReplayed += count;
    }
    report.recordsReplayed++;
    report.logBytesReplayed += (1 + dData[i]) * PAGE;
    sealedAt.set(s, Math.max(sealedAt.get(s) ?? 0, dAge[i]));
  }
  report.recordsDropped = dropped.length;

  // 5. Log positions, live counts, segment states.
  st.seq = maxSeq;
  st.appliedSeq = maxSeq;
  st.committedCutSeq = cut;
  segs.live.fill(0);
  st.mappedPages = 0;
  st.retainedPages = 0;
  for (const t of st.tables.values()) {
    let mapped = 0;
    const slots = t.slots;
    for (let i = 0; i < slots.length; i += 3) {
      const b = slots[i];
      if (b !== NONE) {
        mapped++;
        segs.live[((b - 1) / S) | 0]++;
      }
    }
    t.mapped = mapped;
    st.mappedPages += mapped;
    if (t.retained) {
      for (const r of t.retained) st.incLive(r.block);
      st.retainedPages += t.retained.length;
    }
  }
  // Kept versions no pin needs any more go (their blocks die now).
  for (let s = 0; s < nSeg; s++) segs.state[s] = SEALED;
  st.dropUnneededRetained(maxSeq);
  st.dying.clear();
  for (const [s, a] of sealedAt) if (a > segs.sealedAt[s]) segs.sealedAt[s] = a;
  for (const [s, q] of trimSeq) segs.trimSeq[s] = q;
  for (let s = 0; s < nSeg; s++) {
    if (segs.live[s] > 0) segs.state[s] = SEALED;
    else if (segs.trimSeq[s] > cut) {
      segs.state[s] = DYING;
      segs.killSeq[s] = 0;
      st.dying.add(s);
    } else segs.state[s] = FREE;
  }
  segs.rebuildFree();

  if (dropped.length > 0) {
    const zero = Buffer.alloc(PAGE);
    for (const [s, pos] of dropped) await pwritevFully(fd, [zero], offset + (1 + s * S + pos) * PAGE);
  }
  // Records above the horizon are whole but perhaps only in the page cache; make them, and
  // the zeroed headers, durable before anything new is appended.
  if (dropped.length > 0 || aboveHorizon) await datasync(fd);
  st.durableSeq = maxSeq;
  report.seconds = (performance.now() - t0) / 1000;
  return report;
}
