/**
 * `npm run bench -- scatter-read [--extents N]`: the cost of reading 256 KiB extents whose 64
 * pages of 4 KiB are scattered over a log (what a large read costs after random overwrites),
 * from a file in the page cache, eight extents in flight. Three ways of issuing the 64 reads:
 *   - threadPool: one fs.read per page on libuv's thread pool (what the allocator does for
 *     every span that is not its process's only read in flight);
 *   - workerBatch: one message per extent to a worker thread that makes the 64 reads
 *     synchronously into a SharedArrayBuffer, then one copy into the extent's buffer;
 *   - syncMain: 64 synchronous reads on the main thread (the floor: no hand-off at all, but
 *     it blocks the event loop for the whole extent).
 * Prints JSON: MB/s and process CPU ms per MiB for each (two rounds; the second is the one
 * reported), and each one's ratio against threadPool measured in the same run. Every page
 * read is checked against the offset stamped in it.
 */
import { closeSync, openSync, read, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

const PAGE = 4096;
const EXTENT = 64 * PAGE;
const QD = 8;
const FILE_BYTES = 512 * 1024 * 1024;
const argExtents = process.argv.indexOf('--extents');
const EXTENTS = argExtents > 0 ? Number(process.argv[argExtents + 1]) : 4000;

/** One way of reading an extent's scattered pages into `out`. */
type ReadExtent = (positions: number[], out: Buffer, slot: number) => Promise<void>;

const path = join(tmpdir(), `cairn-scatter-${process.pid}.img`);
const fd = openSync(path, 'w+');
try {
  const chunk = Buffer.alloc(1024 * 1024);
  for (let o = 0; o < FILE_BYTES; o += chunk.length) {
    for (let i = 0; i < chunk.length; i += PAGE) chunk.writeUInt32LE((o + i) / PAGE, i);
    writeSync(fd, chunk, 0, chunk.length, o);
  }
  const pages = FILE_BYTES / PAGE;
  let seed = 0x9e3779b9;
  const rnd = (): number => {
    seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0;
    return seed / 4294967296;
  };

  const run = async (readExtent: ReadExtent): Promise<{ MBps: number; cpuMsPerMiB: number }> => {
    let left = EXTENTS;
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    await Promise.all(Array.from({ length: QD }, async (_, slot) => {
      const out = Buffer.alloc(EXTENT);
      while (left-- > 0) {
        const positions = Array.from({ length: 64 }, () => Math.floor(rnd() * pages) * PAGE);
        await readExtent(positions, out, slot);
        for (let i = 0; i < 64; i++) if (out.readUInt32LE(i * PAGE) !== positions[i] / PAGE) throw new Error(`page ${i} read back wrong`);
      }
    }));
    const seconds = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    const mib = (EXTENTS * EXTENT) / 1048576;
    return { MBps: Math.round((EXTENTS * EXTENT) / 1e6 / seconds), cpuMsPerMiB: +((c.user + c.system) / 1000 / mib).toFixed(3) };
  };

  const threadPool: ReadExtent = (positions, out) =>
    Promise.all(positions.map((p, i) => new Promise<void>((res, rej) => read(fd, out, i * PAGE, PAGE, p, (e) => (e ? rej(e) : res()))))).then(() => undefined);

  const arena = new SharedArrayBuffer(QD * EXTENT);
  const staging = Buffer.from(arena);
  const worker = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    const { readSync } = require('node:fs');
    const arena = Buffer.from(workerData.arena);
    parentPort.on('message', (m) => {
      try {
        for (let i = 0; i < m.positions.length; i++) readSync(workerData.fd, arena, m.slot * ${EXTENT} + i * ${PAGE}, ${PAGE}, m.positions[i]);
        parentPort.postMessage({ slot: m.slot });
      } catch (e) {
        parentPort.postMessage({ slot: m.slot, err: String(e) });
      }
    });`, { eval: true, workerData: { arena, fd } });
  const waiting = new Map<number, (err?: string) => void>();
  worker.on('message', (m: { slot: number; err?: string }) => waiting.get(m.slot)!(m.err));
  const workerBatch: ReadExtent = async (positions, out, slot) => {
    const err = await new Promise<string | undefined>((res) => {
      waiting.set(slot, res);
      worker.postMessage({ slot, positions });
    });
    if (err) throw new Error(err);
    staging.copy(out, 0, slot * EXTENT, (slot + 1) * EXTENT);
  };

  const syncMain: ReadExtent = async (positions, out) => {
    for (let i = 0; i < positions.length; i++) readSync(fd, out, i * PAGE, PAGE, positions[i]);
  };

  const ways = { threadPool, workerBatch, syncMain };
  const results: Record<string, { MBps: number; cpuMsPerMiB: number }> = {};
  for (let round = 0; round < 2; round++) {
    for (const [name, way] of Object.entries(ways)) {
      results[name] = await run(way);
      process.stderr.write(`[scatter-read] round ${round + 1} ${name}: ${JSON.stringify(results[name])}\n`);
    }
  }
  await worker.terminate();
  const ref = results.threadPool;
  const vsThreadPool = Object.fromEntries(Object.entries(results).map(([k, r]) => [k, { MBps: +(r.MBps / ref.MBps).toFixed(2), cpuPerMiB: +(r.cpuMsPerMiB / ref.cpuMsPerMiB).toFixed(2) }]));
  process.stdout.write(JSON.stringify({ suite: 'scatter-read', extents: EXTENTS, extentBytes: EXTENT, inFlight: QD, fileBytes: FILE_BYTES, results, vsThreadPool }, null, 2) + '\n');
} finally {
  closeSync(fd);
  rmSync(path, { force: true });
}
