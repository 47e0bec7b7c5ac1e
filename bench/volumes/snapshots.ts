/**
 * Part 2 of the volumes bench: snapshot latency of an attached, written volume. The volume is
 * created through the API, attached in this process (VolumeSet: the catalog's record and a
 * write lease, as a gateway attaches it) and written whole (sequential 1 MiB writes, 8 in
 * flight, then a flush). Then, per round: random 4 KiB writes and a flush, a snapshot
 * (`POST /v1/volumes/:name/snapshots`, timed at the client from request to reply), random
 * 4 KiB writes acknowledged but NOT flushed, another timed snapshot. Alternating the two kinds
 * keeps drift (a shared machine, a growing snapshot count) out of their difference.
 *
 * A snapshot fences the attached writer (a new lease generation), makes the members agree on
 * every unsettled extent, and pins; the writer's next write resumes under a newer generation,
 * so the first write after each snapshot is timed apart (`firstWriteAfterMs`). The authority
 * node's log line per snapshot ('snapshot taken': lease, peering, pin ms and extents
 * reconciled) gives the server's side of each.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pMap from 'p-map';
import type { ApiClient } from '../../src/api/index.ts';
import type { VolumeSet } from '../../src/gateway/index.ts';
import { median, ratio, round, summarize, timed, type Summary } from './stats.ts';

const MiB = 1 << 20;
const PAGE = 4096;

/** Options of measureSnapshots. */
export interface SnapshotOptions {
  api: ApiClient;
  set: VolumeSet;
  /** The cluster's data directory (node logs). */
  dataDir: string;
  name: string;
  volumeBytes: number;
  /** Snapshots of each kind. */
  snapshots: number;
  /** Random 4 KiB writes before each snapshot. */
  writesPerRound: number;
  /** Median 4 KiB FUA write of part 1 (reference), ms. */
  write4kFuaMs: number | null;
  log: (line: string) => void;
}

/** Server-side phases of one kind of snapshot (medians, from the authority node's log). */
export interface ServerSide {
  leaseMs: number;
  peeringMs: number;
  pinMs: number;
  /** Extents reconciled per snapshot (unsettled writes made to agree). */
  reconciledExtents: number;
}

/** What part 2 measured. */
export interface SnapshotFigures {
  volumeBytes: number;
  fill: { seconds: number; MBps: number };
  writesPerRound: number;
  /** Snapshot after the writes were flushed. */
  flushed: { ms: Summary; firstWriteAfterMs: Summary; server: ServerSide | null };
  /** Snapshot after writes acknowledged but not flushed. */
  unflushed: { ms: Summary; firstWriteAfterMs: Summary; server: ServerSide | null };
  ratios: {
    /** Median unflushed ÷ median flushed snapshot. */
    unflushedOverFlushed: number | null;
    /** Median flushed snapshot ÷ median 4 KiB FUA write (part 1's reference). */
    flushedOverWrite4kFua: number | null;
  };
}

/** See the module comment. */
export async function measureSnapshots(o: SnapshotOptions): Promise<SnapshotFigures> {
  await o.api.call('POST', '/v1/volumes', { name: o.name, size: o.volumeBytes });
  const a = await o.set.open(o.name);
  if (!a) throw new Error(`volume ${o.name} did not open`);
  const dev = a.device;

  o.log(`filling ${o.name} (${o.volumeBytes / MiB} MiB): sequential 1 MiB writes, 8 in flight, then flush`);
  const chunk = randomBytes(MiB);
  const t0 = performance.now();
  await pMap(Array.from({ length: o.volumeBytes / MiB }, (_, i) => i), (i) => dev.write(i * MiB, chunk), { concurrency: 8 });
  await dev.flush();
  const fillSeconds = (performance.now() - t0) / 1000;
  o.log(`filled at ${(o.volumeBytes / 1e6 / fillSeconds).toFixed(1)} MB/s`);

  const page = randomBytes(PAGE);
  const slots = o.volumeBytes / PAGE;
  const off = (): number => Math.floor(Math.random() * slots) * PAGE;
  /** Random 4 KiB writes, the first alone (timed: it resumes the lease after a snapshot), the rest 8 in flight. */
  const writes = async (): Promise<number> => {
    const first = await timed(() => dev.write(off(), page));
    await pMap(Array.from({ length: o.writesPerRound - 1 }), () => dev.write(off(), page), { concurrency: 8 });
    return first;
  };
  const snap = async (name: string): Promise<number> => timed(async () => {
    const r = await o.api.call<{ name: string }>('POST', `/v1/volumes/${o.name}/snapshots`, { name });
    if (r.name !== name) throw new Error(`snapshot ${name}: the reply names ${r.name}`);
  });

  const flushed: number[] = [];
  const unflushed: number[] = [];
  const firstAfterFlushed: number[] = [];
  const firstAfterUnflushed: number[] = [];
  for (let i = 0; i < o.snapshots; i++) {
    // Flushed: writes, flush, snapshot.
    const w1 = await writes();
    if (i > 0) firstAfterUnflushed.push(w1);
    await dev.flush();
    flushed.push(await snap(`f${i}`));
    // Unflushed: writes acknowledged, no flush, snapshot.
    const w2 = await writes();
    firstAfterFlushed.push(w2);
    unflushed.push(await snap(`u${i}`));
    o.log(`round ${i + 1}/${o.snapshots}: flushed ${flushed[i].toFixed(1)} ms, unflushed ${unflushed[i].toFixed(1)} ms`);
  }
  firstAfterUnflushed.push(await writes());
  await dev.flush();

  const server = await serverSide(o.dataDir, o.name, o.snapshots);
  const f = summarize(flushed);
  const u = summarize(unflushed);
  return {
    volumeBytes: o.volumeBytes,
    fill: { seconds: round(fillSeconds), MBps: round(o.volumeBytes / 1e6 / fillSeconds, 1) },
    writesPerRound: o.writesPerRound,
    flushed: { ms: f, firstWriteAfterMs: summarize(firstAfterFlushed), server: server?.flushed ?? null },
    unflushed: { ms: u, firstWriteAfterMs: summarize(firstAfterUnflushed), server: server?.unflushed ?? null },
    ratios: {
      unflushedOverFlushed: ratio(u.median, f.median),
      flushedOverWrite4kFua: o.write4kFuaMs === null ? null : ratio(f.median, o.write4kFuaMs),
    },
  };
}

/**
 * The authority node's 'snapshot taken' lines for volume `name`, in order f0, u0, f1, u1, ...
 * reduced to medians per kind; null when the log does not hold exactly 2 × `rounds` of them.
 */
async function serverSide(dataDir: string, name: string, rounds: number): Promise<{ flushed: ServerSide; unflushed: ServerSide } | null> {
  const text = await readFile(join(dataDir, 'logs', 'node0.log'), 'utf8').catch(() => '');
  const lines = text.split('\n').flatMap((l) => {
    try {
      const j = JSON.parse(l) as { msg?: string; volume?: string; leaseMs?: number; peeringMs?: number; pinMs?: number; reconciled?: number };
      return j.msg === 'snapshot taken' && j.volume === name ? [j] : [];
    } catch {
      return [];
    }
  });
  if (lines.length !== 2 * rounds) return null;
  const reduce = (xs: typeof lines): ServerSide => ({
    leaseMs: round(median(xs.map((x) => x.leaseMs ?? NaN))),
    peeringMs: round(median(xs.map((x) => x.peeringMs ?? NaN))),
    pinMs: round(median(xs.map((x) => x.pinMs ?? NaN))),
    reconciledExtents: median(xs.map((x) => x.reconciled ?? NaN)),
  });
  return { flushed: reduce(lines.filter((_, i) => i % 2 === 0)), unflushed: reduce(lines.filter((_, i) => i % 2 === 1)) };
}
