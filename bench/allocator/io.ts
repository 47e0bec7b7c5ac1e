/**
 * Throughput of the allocator next to fio on a plain file of the same size, in one run:
 * 4 KiB random writes and reads (32 in flight) and 1 MiB sequential writes and reads.
 * fio runs with --ioengine=psync (one job, queue depth 1 by nature) and io_uring
 * (iodepth 32); no job uses O_DIRECT or fsync, as the allocator only syncs on flush.
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Allocator, PAGE } from '../../allocator/index.ts';

/** Measured rates. */
export interface IoRates {
  randWriteIops: number;
  randReadIops: number;
  seqWriteMBps: number;
  seqReadMBps: number;
}

const MB = 1e6;

/** Runs the allocator side: `bytes` region, data over 3/4 of it, `seconds` per random phase. */
export async function allocatorRates(dir: string, bytes: number, seconds: number): Promise<IoRates> {
  const path = join(dir, 'io.img');
  rmSync(path, { force: true });
  rmSync(path + '.meta', { recursive: true, force: true });
  const a = await Allocator.open({ path, offset: 0, size: bytes + PAGE });
  const dataPages = Math.floor((a.stats().capacityBytes / PAGE) * 0.8 / 256) * 256;
  const mib = Buffer.alloc(1024 * 1024, 0x77);
  let v = 1;
  // 1 MiB sequential writes, 16 in flight.
  let t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < dataPages) {
      const p = next;
      next += 256;
      await a.write(p / 256, 0, mib, v++);
    }
  }));
  await a.flush();
  const seqWriteMBps = (dataPages * PAGE) / MB / ((performance.now() - t0) / 1000);
  // 1 MiB sequential reads, 16 in flight.
  t0 = performance.now();
  next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < dataPages) {
      const p = next;
      next += 256;
      await a.read(p / 256, 0, 256);
    }
  }));
  const seqReadMBps = (dataPages * PAGE) / MB / ((performance.now() - t0) / 1000);
  const timed = async (op: (p: number) => Promise<unknown>): Promise<number> => {
    let n = 0;
    const end = performance.now() + seconds * 1000;
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (performance.now() < end) {
        await op(Math.floor(Math.random() * dataPages));
        n++;
      }
    }));
    return n / seconds;
  };
  const page = mib.subarray(0, PAGE);
  const randWriteIops = await timed((p) => a.write(Math.floor(p / 256), p % 256, page, v++));
  await a.flush();
  const randReadIops = await timed((p) => a.read(Math.floor(p / 256), p % 256, 1));
  await a.close();
  rmSync(path, { force: true });
  rmSync(path + '.meta', { recursive: true, force: true });
  return { randWriteIops: Math.round(randWriteIops), randReadIops: Math.round(randReadIops), seqWriteMBps: Math.round(seqWriteMBps), seqReadMBps: Math.round(seqReadMBps) };
}

function fio(file: string, bytes: number, rw: string, bs: string, engine: string, depth: number, seconds: number): { iops: number; MBps: number } {
  const out = execFileSync('fio', [
    '--name=ref', `--filename=${file}`, `--size=${bytes}`, `--rw=${rw}`, `--bs=${bs}`, `--ioengine=${engine}`, `--iodepth=${depth}`,
    '--direct=0', '--time_based', `--runtime=${seconds}`, '--numjobs=1', '--randrepeat=0', '--output-format=json',
  ], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const job = JSON.parse(out.slice(out.indexOf('{'))).jobs[0];
  const side = rw.includes('read') ? job.read : job.write;
  return { iops: Math.round(side.iops), MBps: Math.round(side.bw_bytes / MB) };
}

/** Runs fio on a prefilled plain file of `bytes` with engine `engine`. */
export function fioRates(dir: string, bytes: number, engine: 'psync' | 'io_uring', seconds: number): IoRates {
  const file = join(dir, 'fio.img');
  const depth = engine === 'psync' ? 1 : 32;
  execFileSync('fio', ['--name=fill', `--filename=${file}`, `--size=${bytes}`, '--rw=write', '--bs=1M', '--ioengine=psync', '--output-format=json'], { encoding: 'utf8' });
  const rates: IoRates = {
    randWriteIops: fio(file, bytes, 'randwrite', '4k', engine, depth, seconds).iops,
    randReadIops: fio(file, bytes, 'randread', '4k', engine, depth, seconds).iops,
    seqWriteMBps: fio(file, bytes, 'write', '1M', engine, depth, seconds).MBps,
    seqReadMBps: fio(file, bytes, 'read', '1M', engine, depth, seconds).MBps,
  };
  rmSync(file, { force: true });
  return rates;
}
