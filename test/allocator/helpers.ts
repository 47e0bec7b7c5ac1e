/** Shared helpers of the allocator tests: temp regions and recognisable page contents. */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PAGE } from '../../allocator/index.ts';

/** A fresh temp directory with a device file path in it; `cleanup` removes it. */
export function tempDevice(): { dir: string; path: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-alloc-'));
  return { dir, path: join(dir, 'dev.img'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Deterministic 4 KiB content of (key, page, version): the three numbers in the first
 * 24 bytes, then a byte pattern derived from them.
 */
export function pageData(key: number, page: number, version: number): Buffer {
  const b = Buffer.alloc(PAGE, (key * 31 + page * 7 + version * 13) & 255);
  b.writeDoubleLE(key, 0);
  b.writeDoubleLE(page, 8);
  b.writeDoubleLE(version, 16);
  b.writeUInt32LE((version * 2654435761) >>> 0, 100);
  return b;
}

/** Content of `count` consecutive pages written as one write of `version`. */
export function pagesData(key: number, first: number, count: number, version: number): Buffer {
  return Buffer.concat(Array.from({ length: count }, (_, i) => pageData(key, first + i, version)));
}

/** Small deterministic PRNG (mulberry32); returns floats in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Whether the runner asked for the long variants. */
export const SLOW = process.env.CAIRN_SLOW === '1';

/** Polls `cond` every 20 ms; resolves true once it holds, false after `ms`. */
export async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

/** Flips bits of the byte at `pos` of the file at `path` (XOR 0x5a): a corrupted device byte. */
export function flip(path: string, pos: number): void {
  const fd = openSync(path, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, pos);
  b[0] ^= 0x5a;
  writeSync(fd, b, 0, 1, pos);
  closeSync(fd);
}
