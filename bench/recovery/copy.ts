/**
 * The machine's own reference for moving bytes: a plain sequential copy of N bytes from one
 * file to another in the same directory (1 MiB reads and writes, one fsync at the end), as
 * `dd bs=1M conv=fsync` would do. The source is written (and fsynced) first and is not
 * timed; it may still sit in the page cache, as recent data on a node's device also may.
 */
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';

/** What one reference copy took. */
export interface CopyFigures {
  bytes: number;
  seconds: number;
  /** MB/s (10^6 bytes per second). */
  MBps: number;
}

const CHUNK = 1 << 20;

/** Copies `bytes` bytes (rounded up to whole MiB) between two fresh files under `parent` and times it. */
export async function fileCopy(parent: string, bytes: number): Promise<CopyFigures> {
  const dir = mkdtempSync(join(parent, 'cairn-bench-copy-'));
  const chunks = Math.max(1, Math.ceil(bytes / CHUNK));
  const buf = Buffer.alloc(CHUNK);
  try {
    const src = await open(join(dir, 'src'), 'w');
    try {
      for (let i = 0; i < chunks; i++) {
        randomFillSync(buf);
        await src.write(buf, 0, CHUNK);
      }
      await src.sync();
    } finally {
      await src.close();
    }
    const t0 = performance.now();
    const from = await open(join(dir, 'src'), 'r');
    const to = await open(join(dir, 'dst'), 'w');
    try {
      for (let i = 0; i < chunks; i++) {
        const { bytesRead } = await from.read(buf, 0, CHUNK, i * CHUNK);
        await to.write(buf, 0, bytesRead);
      }
      await to.sync();
    } finally {
      await from.close();
      await to.close();
    }
    const seconds = (performance.now() - t0) / 1000;
    return { bytes: chunks * CHUNK, seconds, MBps: (chunks * CHUNK) / 1e6 / seconds };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
