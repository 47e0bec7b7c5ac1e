/**
 * Write-amplification simulation on the real allocator over a real file: fill a region to
 * a target utilisation (live pages ÷ all segment blocks), then overwrite random 4 KiB
 * pages (uniform, or hot/cold: 90 % of writes to 10 % of pages) with 128 writes in flight,
 * and measure over the second half of the run: WA = log bytes appended ÷ host bytes, and
 * metadata (record headers + checkpoint bytes) ÷ host bytes.
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
  /** Mean live fraction of the segments the cleaner emptied. */
  cleanedUtilization: number;
  hostWrites: number;
  seconds: number;
}

/** Runs one configuration in directory `dir`; `overwriteFactor` × live pages are written. */
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
  const total = Math.floor(overwriteFactor * live);
  const page = data.subarray(0, PAGE);
  let issued = 0;
  let mark: ReturnType<Allocator['stats']> | null = null;
  const worker = async (): Promise<void> => {
    while (issued < total) {
      if (!mark && issued >= total / 2) mark = a.stats();
      issued++;
      const p = pickPage();
      await a.write(Math.floor(p / 256), p % 256, page, v++);
    }
  };
  await Promise.all(Array.from({ length: 128 }, worker));
  const end = a.stats();
  const m = mark ?? st0;
  const host = end.hostBytesWritten - m.hostBytesWritten;
  const res: WaResult = {
    utilization,
    workload,
    policy,
    writeAmplification: round((end.deviceBytesWritten - m.deviceBytesWritten) / host),
    metadataRatio: round((end.metadataBytesWritten - m.metadataBytesWritten) / host, 4),
    cleanedUtilization: round(end.cleanedUtilization),
    hostWrites: total,
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
