/**
 * Thin promise wrappers over positioned file I/O on a raw fd (fs.read / fs.writev /
 * fs.fdatasync with callbacks: cheaper per call than FileHandle). Positions and lengths
 * are bytes. Short reads past the end of file leave the rest of the buffer untouched;
 * short writes are completed with further writes.
 */
import { read, readSync, readv, readvSync, writev, write, fdatasync } from 'node:fs';

let reads = 0;
/** Reads of this process on libuv's thread pool that have not completed (see takeIdleTurn). */
let poolReads = 0;

/** Reads up to `length` bytes at `position` into `buf[offset..]`; resolves with bytes read. */
export function pread(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  reads++;
  poolReads++;
  return new Promise((resolve, reject) => {
    read(fd, buf, offset, length, position, (err, n) => {
      poolReads--;
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
  poolReads++;
  return new Promise((resolve, reject) => {
    readv(fd, bufs, position, (err, n) => {
      poolReads--;
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

function pwrite1(fd: number, buf: Buffer, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    write(fd, buf, 0, buf.length, position, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

/** IOV_MAX on Linux. */
const IOV_MAX = 1024;

/** Writes all of `bufs` back to back starting at `position` (pwritev, ≤ 1024 buffers per call). */
export async function pwritevFully(fd: number, bufs: Buffer[], position: number): Promise<void> {
  for (let i = 0; i < bufs.length; i += IOV_MAX) {
    const part = bufs.length <= IOV_MAX ? bufs : bufs.slice(i, i + IOV_MAX);
    let total = 0;
    for (const b of part) total += b.length;
    const n = await pwritev1(fd, part, position);
    if (n < total) {
      const rest = Buffer.concat(part).subarray(n);
      let off = 0;
      while (off < rest.length) off += await pwrite1(fd, rest.subarray(off), position + n + off);
    }
    position += total;
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

/*
 * Host reads when the process is otherwise idle. A read handed to libuv's thread pool costs
 * two thread wake-ups (the worker, then the event loop through its eventfd) on top of the
 * system call; for a 4 KiB page in the page cache those wake-ups are most of the time, and at
 * queue depth 1 nothing else can use the loop meanwhile. So a small host read made while no
 * read of this process is in flight on the thread pool (host, cleaner or recovery), and no
 * other read was made synchronously in this turn of the event loop, is made synchronously:
 * at most one blocking read per turn, never behind or in front of queued ones (a batch of
 * requests parsed in one turn makes its first read synchronously and the others on the
 * pool, as before).
 */

/** Largest host read made synchronously when idle, bytes. */
export const IDLE_SYNC_MAX_BYTES = 128 * 1024;
let idleSync = true;
let syncTurn = false;
let syncReads = 0;
const endTurn = (): void => {
  syncTurn = false;
};

/** Turns synchronous idle host reads on or off for this process (default on). */
export function setIdleSyncReads(on: boolean): void {
  idleSync = on;
}

/** Host reads this process made synchronously (see hostPreadFully). */
export function idleSyncReadCount(): number {
  return syncReads;
}

/** Whether a host read of `bytes` is to be made synchronously now; claims this turn if so. */
function takeIdleTurn(bytes: number): boolean {
  if (!idleSync || poolReads > 0 || syncTurn || bytes > IDLE_SYNC_MAX_BYTES) return false;
  syncTurn = true;
  setImmediate(endTurn);
  syncReads++;
  reads++;
  return true;
}

/**
 * preadFully for a host read: synchronous when the process is idle (see above), else on
 * the thread pool. Same results and errors (a failed synchronous read rejects).
 */
export function hostPreadFully(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  if (!takeIdleTurn(length)) return preadFully(fd, buf, offset, length, position);
  return preadWith(readNow, fd, buf, offset, length, position);
}

/** preadvFully for a host read: synchronous when the process is idle (see above), else on the thread pool. */
export function hostPreadvFully(fd: number, bufs: Buffer[], position: number): Promise<void> {
  let bytes = 0;
  for (const b of bufs) bytes += b.length;
  if (!takeIdleTurn(bytes)) return preadvFully(fd, bufs, position);
  return preadvWith(readvNow, fd, bufs, position);
}

/** pread's shape over readSync (a failure rejects). */
function readNow(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  try {
    return Promise.resolve(readSync(fd, buf, offset, length, position));
  } catch (e) {
    return Promise.reject(e);
  }
}

/** preadv1's shape over readvSync (a failure rejects). */
function readvNow(fd: number, bufs: Buffer[], position: number): Promise<number> {
  try {
    return Promise.resolve(readvSync(fd, bufs, position));
  } catch (e) {
    return Promise.reject(e);
  }
}
