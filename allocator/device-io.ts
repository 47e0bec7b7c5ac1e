/**
 * Thin promise wrappers over positioned file I/O on a raw fd (fs.read / fs.writev /
 * fs.fdatasync with callbacks: cheaper per call than FileHandle). Positions and lengths
 * are bytes. Short reads past the end of file leave the rest of the buffer untouched;
 * short writes are completed with further writes.
 */
import { read, readSync, readv, readvSync, writev, writevSync, fdatasync } from 'node:fs';
import { syncReads, syncWrites, type SyncIoPolicy } from './sync-io.ts';

let reads = 0;

/** Reads up to `length` bytes at `position` into `buf[offset..]`; resolves with bytes read. */
export function pread(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  reads++;
  return new Promise((resolve, reject) => {
    read(fd, buf, offset, length, position, (err, n) => {
      if (err) reject(err);
      else resolve(n);
    });
  });
}

/** Reads `length` bytes at `position` into `buf[offset..]`, looping over short reads until EOF. */
export function preadFully(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  return preadWith(pread, fd, buf, offset, length, position);
}

async function preadWith(call: typeof pread, fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  let done = 0;
  while (done < length) {
    const n = await call(fd, buf, offset + done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

function preadv1(fd: number, bufs: Buffer[], position: number): Promise<number> {
  reads++;
  return new Promise((resolve, reject) => {
    readv(fd, bufs, position, (err, n) => {
      if (err) reject(err);
      else resolve(n);
    });
  });
}

/**
 * Reads device bytes from `position` into `bufs` back to back (preadv(2), one system call
 * for up to IOV_MAX buffers), looping over short reads; stops at EOF (the rest untouched).
 */
export function preadvFully(fd: number, bufs: Buffer[], position: number): Promise<void> {
  return preadvWith(preadv1, fd, bufs, position);
}

async function preadvWith(call: (fd: number, bufs: Buffer[], position: number) => Promise<number>, fd: number, bufs: Buffer[], position: number): Promise<void> {
  let i = 0;
  let skip = 0; // bytes of bufs[i] already filled
  while (i < bufs.length) {
    const part = bufs.slice(i, i + IOV_MAX);
    if (skip) part[0] = part[0].subarray(skip);
    const n = await call(fd, part, position);
    if (n === 0) return;
    position += n;
    let left = n;
    while (left > 0 && i < bufs.length) {
      const room = bufs[i].length - skip;
      if (left >= room) {
        left -= room;
        i++;
        skip = 0;
      } else {
        skip += left;
        left = 0;
      }
    }
  }
}

/** Read system calls (pread, preadv) made by every allocator of this process since it started. */
export function readCount(): number {
  return reads;
}

function pwritev1(fd: number, bufs: Buffer[], position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    writev(fd, bufs, position, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

/** IOV_MAX on Linux. */
const IOV_MAX = 1024;

/** Bytes in `bufs` together. */
function byteLength(bufs: Buffer[]): number {
  let n = 0;
  for (const b of bufs) n += b.length;
  return n;
}

/** Writes all of `bufs` back to back starting at `position` (pwritev, ≤ 1024 buffers per call). */
export function pwritevFully(fd: number, bufs: Buffer[], position: number): Promise<void> {
  return pwritevWith(pwritev1, fd, bufs, position);
}

/**
 * pwritevFully for the write path's batches: synchronous while the policy allows
 * (sync-io.ts), else on the thread pool. Same results and errors (a failed synchronous write
 * rejects).
 */
export function hostPwritevFully(fd: number, bufs: Buffer[], position: number): Promise<void> {
  if (!syncWrites.take(byteLength(bufs))) return pwritevFully(fd, bufs, position);
  return pwritevWith(writevNow, fd, bufs, position);
}

async function pwritevWith(call: (fd: number, bufs: Buffer[], position: number) => Promise<number>, fd: number, bufs: Buffer[], position: number): Promise<void> {
  for (let i = 0; i < bufs.length; i += IOV_MAX) {
    const part = bufs.length <= IOV_MAX ? bufs : bufs.slice(i, i + IOV_MAX);
    const total = byteLength(part);
    const n = await call(fd, part, position);
    if (n < total) {
      const rest = Buffer.concat(part).subarray(n);
      let off = 0;
      while (off < rest.length) off += await call(fd, [rest.subarray(off)], position + n + off);
    }
    position += total;
  }
}

/** pwritev1's shape over writevSync, timed for the policy (a failure rejects). */
function writevNow(fd: number, bufs: Buffer[], position: number): Promise<number> {
  return timedNow(syncWrites, () => writevSync(fd, bufs, position));
}

/** Runs a synchronous system call, records its time in `policy`; its result or error as a promise. */
function timedNow(policy: SyncIoPolicy, call: () => number): Promise<number> {
  try {
    const t0 = performance.now();
    const n = call();
    policy.record((performance.now() - t0) * 1000);
    return Promise.resolve(n);
  } catch (e) {
    return Promise.reject(e);
  }
}

let syncs = 0;

/** fdatasync(2); counted (see syncCount). */
export function datasync(fd: number): Promise<void> {
  syncs++;
  return new Promise((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

/** fdatasync calls made through datasync() by every allocator of this process since it started. */
export function syncCount(): number {
  return syncs;
}

/**
 * preadFully for a host read: synchronous while the policy allows (sync-io.ts), else on
 * the thread pool. Same results and errors (a failed synchronous read rejects).
 */
export function hostPreadFully(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  if (!syncReads.take(length)) return preadFully(fd, buf, offset, length, position);
  return preadWith(readNow, fd, buf, offset, length, position);
}

/** preadvFully for a host read: synchronous while the policy allows (sync-io.ts), else on the thread pool. */
export function hostPreadvFully(fd: number, bufs: Buffer[], position: number): Promise<void> {
  if (!syncReads.take(byteLength(bufs))) return preadvFully(fd, bufs, position);
  return preadvWith(readvNow, fd, bufs, position);
}

/** pread's shape over readSync, timed for the policy (a failure rejects). */
function readNow(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  reads++;
  return timedNow(syncReads, () => readSync(fd, buf, offset, length, position));
}

/** preadv1's shape over readvSync, timed for the policy (a failure rejects). */
function readvNow(fd: number, bufs: Buffer[], position: number): Promise<number> {
  reads++;
  return timedNow(syncReads, () => readvSync(fd, bufs, position));
}
