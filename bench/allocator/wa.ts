/**
 * Write-amplification simulation on the real allocator over a real file: fill a region to
 * a target utilisation (live pages ÷ all segment blocks), then overwrite random 4 KiB
 * pages (uniform, or hot/cold: 90 % of writes to 10 % of pages) with 128 writes in flight,
 * and measure WA = log bytes appended ÷ host bytes, and metadata (record headers +
 * checkpoint bytes) ÷ host bytes. After a warm-up of overwriteFactor / 2 × live pages, the
 * window runs from one checkpoint to the next, so that it holds exactly one checkpoint
 * interval (a window shorter than the interval counts one checkpoint over too few host
 * bytes, or none); without a checkpoint in 8 × live pages it is the warm-up's end to there.
 * Method after Rosenblum & Ousterhout, SOSP 1991, §5.3 (simulation of cleaning policies).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Allocator, PAGE, type CleanerPolicy } from '../../allocator/index.ts';

/** One simulated configuration's result. */
export interface WaResult {
  utilization: number;
  workload: 'uniform' | 'hot-cold';
  policy: CleanerPolicy;
  writeAmplification: number;
  metadataRatio: number;
  /** Parts of metadataRatio: host record headers, cleaner record headers, checkpoints. */
  metadataParts: { hostSummary: number; cleanerSummary: number; checkpoint: number };
  /** Mean live fraction of the segments the cleaner emptied while measuring. */
  cleanedUtilization: number;
  /** Mean segments not holding sealed data while measuring (free, open, being cleaned, dying), as a fraction of all. */
  idleSegmentFraction: number;
  /** Overwrites issued in all (warm-up included). */
  hostWrites: number;
  /** Host pages written in the measured window, and checkpoints completed in it. */
  windowHostWrites: number;
  windowCheckpoints: number;
  seconds: number;
}

/** Runs one configuration in directory `dir`; see the module comment for the window. */
export async function simulate(dir: string, regionBytes: number, segmentBytes: number, utilization: number, workload: 'uniform' | 'hot-cold', policy: CleanerPolicy, overwriteFactor: number): Promise<WaResult> {
  const path = join(dir, `wa-${utilization}-${workload}-${policy}.img`);
  rmSync(path, { force: true });
  rmSync(path + '.meta', { recursive: true, force: true });
  const t0 = Date.now();
  const a = await Allocator.open({ path, offset: 0, size: regionBytes, segmentBytes, cleaner: policy, maxUtilization: 0.95, cleanerBytesPerSec: 0 });
  const st0 = a.stats();
  const S = segmentBytes / PAGE;
  const live = Math.floor(utilization * st0.segments * S);
  const data = Buffer.alloc(64 * PAGE, 0x5a);
  let v = 1;
  for (let p = 0; p < live; p += 64) {
    const n = Math.min(64, live - p);
    await a.write(Math.floor(p / 256), p % 256, data.subarray(0, n * PAGE), v++);
  }
  // xorshift PRNG
  let x = 0x9e3779b9 ^ Math.floor(utilization * 1000);
  const rnd = (): number => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x / 4294967296;
  };
  const hot = Math.max(1, Math.floor(live / 10));
  const pickPage = (): number => {
    if (workload === 'uniform') return Math.floor(rnd() * live);
    return rnd() < 0.9 ? Math.floor(rnd() * hot) : hot + Math.floor(rnd() * (live - hot));
  };
  const warmUp = Math.floor((overwriteFactor / 2) * live);
  const cap = warmUp + 8 * live;
  const page = data.subarray(0, PAGE);
  let issued = 0;
  let warm: ReturnType<Allocator['stats']> | null = null;
  let mark: ReturnType<Allocator['stats']> | null = null;
  let end: ReturnType<Allocator['stats']> | null = null;
  let idleSum = 0;
  let samples = 0;
  const sampler = setInterval(() => {
    if (!warm || end) return;
    const s = a.stats();
    if (!mark && s.checkpoints > warm.checkpoints) mark = s;
    else if (mark && s.checkpoints > mark.checkpoints) end = s;
    if (!mark) return;
    const c = s.segmentStates;
    idleSum += c.free + c.open + c.cleaning + c.dying;
    samples++;
  }, 20);
  const worker = async (): Promise<void> => {
    while (!end && issued < cap) {
      if (!warm && issued >= warmUp) warm = a.stats();
      issued++;
      const p = pickPage();
      await a.write(Math.floor(p / 256), p % 256, page, v++);
    }
  };
  await Promise.all(Array.from({ length: 128 }, worker));
  clearInterval(sampler);
  if (!end) {
    end = a.stats();
    mark = warm;
  }
  const m = mark ?? st0;
  const host = end.hostBytesWritten - m.hostBytesWritten;
  const res: WaResult = {
    utilization,
    workload,
    policy,
    writeAmplification: round((end.deviceBytesWritten - m.deviceBytesWritten) / host),
    metadataRatio: round((end.metadataBytesWritten - m.metadataBytesWritten) / host, 4),
    metadataParts: {
      hostSummary: round((end.summaryBytesWritten - end.cleanerSummaryBytesWritten - (m.summaryBytesWritten - m.cleanerSummaryBytesWritten)) / host, 4),
      cleanerSummary: round((end.cleanerSummaryBytesWritten - m.cleanerSummaryBytesWritten) / host, 4),
      checkpoint: round((end.checkpointBytesWritten - m.checkpointBytesWritten) / host, 4),
    },
    cleanedUtilization: end.segmentsCleaned > m.segmentsCleaned
      ? round((end.cleanedUtilization * end.segmentsCleaned - m.cleanedUtilization * m.segmentsCleaned) / (end.segmentsCleaned - m.segmentsCleaned))
      : 0,
    idleSegmentFraction: samples ? round(idleSum / samples / end.segments, 4) : 0,
    hostWrites: issued,
    windowHostWrites: Math.round(host / PAGE),
    windowCheckpoints: end.checkpoints - m.checkpoints,
    seconds: round((Date.now() - t0) / 1000, 1),
  };
  await a.close();
  rmSync(path, { force: true });
  rmSync(path + '.meta', { recursive: true, force: true });
  return res;
}

function round(x: number, d = 3): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}
