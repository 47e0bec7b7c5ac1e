/**
 * One compliance suite for every BlockDevice (the file-backed device, the cluster Volume,
 * and later clones and snapshot views), in the style of abstract-level's test suite: an
 * implementation's test file calls `blockDeviceCompliance(test, name, factory)` and gets the
 * same ava tests as every other implementation.
 *
 * The suite opens ONE device of SUITE_BYTES (32 MiB) per call, lazily in its first test, and
 * closes it in an after hook. Its tests share that device, so they are serial and each works
 * in its own 1 MiB-aligned region (see REGION): what one test writes no other test reads.
 * Offsets are chosen for 1 MiB extents (the cluster volume's), so several tests cross an
 * extent boundary; on other devices they are ordinary offsets.
 */
import type { ExecutionContext, TestFn } from 'ava';
import { randomBytes } from 'node:crypto';
import { BlockDeviceError, type BlockDevice } from '../../src/volume/index.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const PAGE = 4096;

/** Bytes of the device every suite opens (32 one-MiB extents). */
export const SUITE_BYTES = 32 * MiB;

/** Start (MiB) of each test's region of the shared device; a region ends where the next starts. */
const REGION = {
  oorHead: 0,
  neverWritten: 1,
  aligned: 3,
  extentBoundary: 4,
  large: 6,
  unaligned: 9,
  trimPages: 11,
  trimPartial: 13,
  writeZeroes: 14,
  fua: 16,
  flush: 18,
  zeroLength: 19,
  concurrent: 20,
  overwrite: 22,
  ownership: 23,
  readOnly: 24,
  oorTail: 31,
} as const;

/** A device opened for the suite. */
export interface OpenedDevice {
  device: BlockDevice;
  /** Releases the device (and whatever the factory made for it). */
  close(): Promise<void>;
}

/** How the suite gets a device, and what the implementation declares about itself. */
export interface BlockDeviceFactory {
  /** Opens a device of exactly `sizeBytes` bytes. */
  open(sizeBytes: number): Promise<OpenedDevice>;
  /** Writes, trims and writeZeroes reject with BlockDeviceError 'EROFS'; only reads are tested. */
  readOnly?: boolean;
  /**
   * Ranges not aligned to blockSize work (reads exact, sub-block writes read-modify-write).
   * When false they must reject with BlockDeviceError 'EINVAL' and change nothing.
   */
  supportsUnalignedIo?: boolean;
}

/** Index of the first byte where `a` and `b` differ (-1 when equal, incl. length). */
function firstDiff(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** Asserts `got` equals `want`, naming the first differing byte instead of dumping megabytes. */
export function sameBytes(t: ExecutionContext, got: Buffer, want: Buffer, what: string): void {
  const i = firstDiff(got, want);
  const verdict = i < 0 ? 'equal' : `${got.length} vs ${want.length} bytes, first difference at byte ${i}: got 0x${got[i]?.toString(16) ?? 'end'}, want 0x${want[i]?.toString(16) ?? 'end'}`;
  t.is(verdict, 'equal', what);
}

/** Asserts `p()` rejects with a BlockDeviceError whose code is `code` (compared as a string). */
async function rejectsWith(t: ExecutionContext, p: () => Promise<unknown>, code: string, what: string): Promise<void> {
  const e = await t.throwsAsync(p, { instanceOf: BlockDeviceError }, `${what}: rejects with BlockDeviceError`);
  t.is(String(e?.code), code, `${what}: code`);
}

/** Bytes `data` with `patch` copied in at `at`. */
function patched(data: Buffer, at: number, patch: Buffer): Buffer {
  const out = Buffer.from(data);
  patch.copy(out, at);
  return out;
}

/**
 * Registers the compliance tests for one BlockDevice implementation on `test`. Titles start
 * with `name`. All tests are serial (they share one device); the device is opened by the
 * first test and closed by an after.always hook.
 */
export function blockDeviceCompliance(test: TestFn, name: string, factory: BlockDeviceFactory): void {
  let opened: Promise<OpenedDevice> | undefined;
  const dev = async (): Promise<BlockDevice> => (await (opened ??= factory.open(SUITE_BYTES))).device;
  const at = (region: keyof typeof REGION, plus = 0): number => REGION[region] * MiB + plus;
  const it = (title: string, fn: (t: ExecutionContext, d: BlockDevice) => Promise<void>): void => {
    test.serial(`${name}: ${title}`, async (t) => fn(t, await dev()));
  };

  test.after.always(`${name}: close the device`, async () => {
    if (opened) await (await opened.catch(() => undefined))?.close();
  });

  it('size and blockSize', async (t, d) => {
    t.is(d.blockSize, 4096, 'blockSize');
    t.is(d.size, SUITE_BYTES, 'size is what was asked for');
    t.true(Number.isSafeInteger(d.size) && d.size > 0 && d.size % d.blockSize === 0, 'size is a positive multiple of blockSize');
  });

  const outOfRange = (size: number): Array<[number, number]> => [
    [size - PAGE, 2 * PAGE],
    [size, PAGE],
    [size + PAGE, 0],
    [size - PAGE, Number.MAX_SAFE_INTEGER],
    [2 ** 53, PAGE],
    [-PAGE, 2 * PAGE],
    [-1, 1],
    [0, -1],
    [PAGE + 0.5, PAGE],
    [0, PAGE + 0.5],
    [Number.NaN, PAGE],
    [0, Number.NaN],
    [Number.POSITIVE_INFINITY, 0],
  ];

  if (factory.readOnly) {
    registerReadOnly(it, at, outOfRange);
    return;
  }

  it('never-written ranges read as zeros (aligned, across an extent boundary, and one byte)', async (t, d) => {
    sameBytes(t, await d.read(at('neverWritten'), 2 * MiB), Buffer.alloc(2 * MiB), '2 MiB over two extents');
    sameBytes(t, await d.read(at('neverWritten', MiB - PAGE), 2 * PAGE), Buffer.alloc(2 * PAGE), '8 KiB across the extent boundary');
    if (factory.supportsUnalignedIo) sameBytes(t, await d.read(at('neverWritten', 12345), 1), Buffer.alloc(1), 'one byte');
  });

  it('write then read at aligned offsets; neighbours stay zero', async (t, d) => {
    const a = randomBytes(PAGE);
    const b = randomBytes(64 * KiB);
    await d.write(at('aligned'), a);
    await d.write(at('aligned', 128 * KiB), b);
    sameBytes(t, await d.read(at('aligned'), PAGE), a, 'one page');
    sameBytes(t, await d.read(at('aligned', 128 * KiB), b.length), b, '64 KiB');
    sameBytes(t, await d.read(at('aligned', 128 * KiB + 16 * KiB), 8 * KiB), b.subarray(16 * KiB, 24 * KiB), 'an aligned piece inside a write');
    const around = await d.read(at('aligned', 124 * KiB), 72 * KiB);
    sameBytes(t, around, Buffer.concat([Buffer.alloc(PAGE), b, Buffer.alloc(PAGE)]), 'the page before and after a write are untouched');
    sameBytes(t, await d.read(at('aligned', PAGE), PAGE), Buffer.alloc(PAGE), 'the page after the one-page write');
  });

  it('write then read across an extent boundary (1 MiB − 4 KiB, 8 KiB)', async (t, d) => {
    const edge = at('extentBoundary', MiB);
    const data = randomBytes(8 * KiB);
    await d.write(edge - PAGE, data);
    sameBytes(t, await d.read(edge - PAGE, data.length), data, 'whole write');
    sameBytes(t, await d.read(edge - PAGE, PAGE), data.subarray(0, PAGE), 'the half before the boundary');
    sameBytes(t, await d.read(edge, PAGE), data.subarray(PAGE), 'the half after the boundary');
    sameBytes(t, await d.read(edge - 2 * PAGE, 4 * PAGE), Buffer.concat([Buffer.alloc(PAGE), data, Buffer.alloc(PAGE)]), 'neighbours untouched');
    // 1 MiB + 8 KiB, half in each extent.
    const wide = randomBytes(MiB + 2 * PAGE);
    await d.write(edge - MiB / 2 - PAGE, wide);
    sameBytes(t, await d.read(edge - MiB / 2 - PAGE, wide.length), wide, '1 MiB + 8 KiB across the boundary');
  });

  it('write then read 2 MiB (three extents)', async (t, d) => {
    const off = at('large', MiB / 2);
    const data = randomBytes(2 * MiB);
    await d.write(off, data);
    sameBytes(t, await d.read(off, data.length), data, '2 MiB');
    sameBytes(t, await d.read(at('large'), 3 * MiB), Buffer.concat([Buffer.alloc(MiB / 2), data, Buffer.alloc(MiB / 2)]), '3 MiB around it');
  });

  it(`unaligned ranges (offset 100, length 5000) ${factory.supportsUnalignedIo ? 'read-modify-write correctly' : 'reject with EINVAL'}`, async (t, d) => {
    const base = at('unaligned');
    const before = randomBytes(3 * PAGE);
    await d.write(base, before);
    const data = randomBytes(5000);
    const edge = at('unaligned', MiB);
    const edgeBefore = randomBytes(2 * PAGE);
    await d.write(edge - PAGE, edgeBefore);
    const small = randomBytes(300);
    if (factory.supportsUnalignedIo) {
      await d.write(base + 100, data);
      sameBytes(t, await d.read(base + 100, 5000), data, 'the unaligned range reads back');
      sameBytes(t, await d.read(base, 3 * PAGE), patched(before, 100, data), 'bytes around it in the same pages are kept');
      sameBytes(t, await d.read(base + 99, 1), before.subarray(99, 100), 'the byte before');
      sameBytes(t, await d.read(base + 5100, 1), before.subarray(5100, 5101), 'the byte after');
      await d.write(edge - 100, small);
      sameBytes(t, await d.read(edge - PAGE, 2 * PAGE), patched(edgeBefore, PAGE - 100, small), '300 bytes across an extent boundary');
      // Several sub-page writes in flight to the same pages: each byte is the last write's.
      const bytes = Array.from({ length: 16 }, () => randomBytes(1));
      await Promise.all(bytes.map((b, i) => d.write(base + 2 * PAGE + 1000 + i, b)));
      sameBytes(t, await d.read(base + 2 * PAGE + 1000, 16), Buffer.concat(bytes), 'concurrent one-byte writes into one page');
    } else {
      await rejectsWith(t, () => d.write(base + 100, data), 'EINVAL', 'unaligned write');
      await rejectsWith(t, () => d.read(base + 100, 5000), 'EINVAL', 'unaligned read');
      await rejectsWith(t, () => d.write(edge - 100, small), 'EINVAL', 'unaligned write across an extent boundary');
      sameBytes(t, await d.read(base, 3 * PAGE), before, 'nothing changed');
      sameBytes(t, await d.read(edge - PAGE, 2 * PAGE), edgeBefore, 'nothing changed at the boundary');
    }
  });

  it('trim of whole pages reads zeros; the rest is kept (incl. across an extent boundary)', async (t, d) => {
    const base = at('trimPages');
    const data = randomBytes(64 * KiB);
    await d.write(base, data);
    await d.trim(base + 16 * KiB, 16 * KiB);
    sameBytes(t, await d.read(base, data.length), patched(data, 16 * KiB, Buffer.alloc(16 * KiB)), 'a 16 KiB hole in 64 KiB');
    const edge = at('trimPages', MiB);
    const wide = randomBytes(64 * KiB);
    await d.write(edge - 32 * KiB, wide);
    await d.trim(edge - 8 * KiB, 16 * KiB);
    sameBytes(t, await d.read(edge - 32 * KiB, wide.length), patched(wide, 24 * KiB, Buffer.alloc(16 * KiB)), 'a hole across the extent boundary');
    await d.trim(base, 2 * MiB);
    sameBytes(t, await d.read(base, 2 * MiB), Buffer.alloc(2 * MiB), 'trim of two whole extents');
    await d.write(base + 16 * KiB, data.subarray(0, PAGE));
    sameBytes(t, await d.read(base + 16 * KiB, PAGE), data.subarray(0, PAGE), 'a trimmed page can be written again');
  });

  it('trim of partial pages: exactly the trimmed bytes read as zeros (BlockDevice.trim contract)', async (t, d) => {
    const base = at('trimPartial');
    const data = randomBytes(3 * PAGE);
    await d.write(base, data);
    await d.trim(base + 1000, 9000);
    sameBytes(t, await d.read(base, data.length), patched(data, 1000, Buffer.alloc(9000)), 'trim(1000, 9000) over three pages');
    const inPage = randomBytes(PAGE);
    await d.write(base + 4 * PAGE, inPage);
    await d.trim(base + 4 * PAGE + 10, 20);
    sameBytes(t, await d.read(base + 4 * PAGE, PAGE), patched(inPage, 10, Buffer.alloc(20)), 'trim of 20 bytes inside one page');
  });

  it('writeZeroes: whole pages, partial pages, across an extent boundary, with FUA', async (t, d) => {
    const base = at('writeZeroes');
    const data = randomBytes(8 * PAGE);
    await d.write(base, data);
    await d.writeZeroes(base + PAGE, 2 * PAGE);
    let want = patched(data, PAGE, Buffer.alloc(2 * PAGE));
    sameBytes(t, await d.read(base, data.length), want, 'two whole pages');
    if (factory.supportsUnalignedIo) {
      await d.writeZeroes(base + 4 * PAGE + 100, PAGE + 200);
      want = patched(want, 4 * PAGE + 100, Buffer.alloc(PAGE + 200));
      await d.writeZeroes(base + 7 * PAGE + 5, 10);
      want = patched(want, 7 * PAGE + 5, Buffer.alloc(10));
      sameBytes(t, await d.read(base, data.length), want, 'partial pages (the rest of each page kept)');
    } else {
      await rejectsWith(t, () => d.writeZeroes(base + 4 * PAGE + 100, PAGE + 200), 'EINVAL', 'unaligned writeZeroes');
      sameBytes(t, await d.read(base, data.length), want, 'nothing changed');
    }
    const edge = at('writeZeroes', MiB);
    const wide = randomBytes(4 * PAGE);
    await d.write(edge - 2 * PAGE, wide);
    await d.writeZeroes(edge - PAGE, 2 * PAGE, true);
    sameBytes(t, await d.read(edge - 2 * PAGE, wide.length), patched(wide, PAGE, Buffer.alloc(2 * PAGE)), 'across the extent boundary, FUA');
  });

  it('FUA write then read', async (t, d) => {
    const data = randomBytes(16 * KiB);
    await d.write(at('fua'), data, true);
    sameBytes(t, await d.read(at('fua'), data.length), data, 'FUA write');
    const edge = at('fua', MiB);
    const wide = randomBytes(8 * KiB);
    await d.write(edge - PAGE, wide, true);
    sameBytes(t, await d.read(edge - PAGE, wide.length), wide, 'FUA write across an extent boundary');
  });

  it('flush resolves (also with nothing to flush) and the data reads back', async (t, d) => {
    const writes = Array.from({ length: 4 }, (_, i) => ({ off: at('flush', i * 256 * KiB), data: randomBytes(8 * KiB) }));
    for (const w of writes) await d.write(w.off, w.data);
    await t.notThrowsAsync(() => d.flush(), 'flush after writes');
    await t.notThrowsAsync(() => d.flush(), 'flush with nothing new');
    for (const w of writes) sameBytes(t, await d.read(w.off, w.data.length), w.data, `write at +${w.off - at('flush')}`);
  });

  it('zero-length read, write, trim and writeZeroes succeed and change nothing', async (t, d) => {
    const base = at('zeroLength');
    const data = randomBytes(2 * PAGE);
    await d.write(base, data);
    const empty = await d.read(base, 0);
    t.true(Buffer.isBuffer(empty), 'read(…, 0) gives a Buffer');
    t.is(empty.length, 0, 'of length 0');
    t.is((await d.read(d.size, 0)).length, 0, 'read(size, 0) is inside the device');
    await d.write(base + PAGE, Buffer.alloc(0));
    await d.write(d.size, Buffer.alloc(0));
    await d.trim(base, 0);
    await d.trim(base + PAGE, 0);
    await d.writeZeroes(base, 0);
    await d.writeZeroes(base + PAGE, 0, true);
    sameBytes(t, await d.read(base, data.length), data, 'data unchanged');
  });

  it('concurrent writes to disjoint ranges all land', async (t, d) => {
    const base = at('concurrent');
    // 24 writes of 16..88 KiB with 4 KiB gaps, from 1.25 MiB before the extent boundary on.
    const writes: Array<{ off: number; data: Buffer }> = [];
    let off = base + MiB - 640 * KiB;
    for (let i = 0; i < 24; i++) {
      const len = (4 + (i % 19)) * PAGE;
      writes.push({ off, data: randomBytes(len) });
      off += len + PAGE;
    }
    t.true(writes[0].off < base + MiB && off > base + MiB, 'the writes cross the extent boundary');
    await Promise.all(writes.map((w) => d.write(w.off, w.data)));
    for (const w of writes) sameBytes(t, await d.read(w.off, w.data.length), w.data, `write at +${w.off - base}`);
    const whole = await d.read(writes[0].off, off - writes[0].off);
    const want = Buffer.alloc(whole.length);
    for (const w of writes) w.data.copy(want, w.off - writes[0].off);
    sameBytes(t, whole, want, 'the gaps between them read as zeros');
    const reads = await Promise.all(writes.map((w) => d.read(w.off, w.data.length)));
    reads.forEach((r, i) => sameBytes(t, r, writes[i].data, `concurrent read ${i}`));
  });

  it('overwriting the same range returns the last write', async (t, d) => {
    const off = at('overwrite', MiB / 2);
    let last = Buffer.alloc(0);
    for (let i = 0; i < 5; i++) {
      last = randomBytes(8 * KiB);
      await d.write(off, last);
      sameBytes(t, await d.read(off, last.length), last, `after write ${i + 1}`);
    }
    const small = randomBytes(PAGE);
    await d.write(off + PAGE, small);
    sameBytes(t, await d.read(off, 2 * PAGE), Buffer.concat([last.subarray(0, PAGE), small]), 'a smaller overwrite replaces only its page');
  });

  it('buffers belong to the caller: changing them after a call changes nothing stored', async (t, d) => {
    const base = at('ownership');
    const data = randomBytes(8 * KiB);
    const copy = Buffer.from(data);
    await d.write(base, data);
    data.fill(0xee);
    sameBytes(t, await d.read(base, copy.length), copy, 'the written buffer was changed after write resolved');
    const r = await d.read(base, copy.length);
    r.fill(0x11);
    sameBytes(t, await d.read(base, copy.length), copy, 'a returned buffer was changed');
  });

  it('out-of-range, negative and non-integer ranges reject with EINVAL and touch nothing', async (t, d) => {
    const head = randomBytes(8 * KiB);
    const tail = randomBytes(8 * KiB);
    await d.write(0, head);
    await d.write(d.size - tail.length, tail);
    for (const [off, len] of outOfRange(d.size)) {
      const what = `(${off}, ${len})`;
      await rejectsWith(t, () => d.read(off, len), 'EINVAL', `read${what}`);
      await rejectsWith(t, () => d.trim(off, len), 'EINVAL', `trim${what}`);
      await rejectsWith(t, () => d.writeZeroes(off, len), 'EINVAL', `writeZeroes${what}`);
      if (Number.isSafeInteger(len) && len >= 0 && len <= 8 * KiB) {
        await rejectsWith(t, () => d.write(off, Buffer.alloc(len, 0x5a)), 'EINVAL', `write${what}`);
        await rejectsWith(t, () => d.write(off, Buffer.alloc(len, 0x5a), true), 'EINVAL', `FUA write${what}`);
      }
    }
    sameBytes(t, await d.read(0, head.length), head, 'the first 8 KiB are untouched');
    sameBytes(t, await d.read(d.size - tail.length, tail.length), tail, 'the last 8 KiB are untouched');
    await d.flush();
    sameBytes(t, await d.read(d.size - tail.length, tail.length), tail, 'and still after a flush');
  });
}

/** The tests of a read-only device (a snapshot view): reads work, every change is refused. */
function registerReadOnly(
  it: (title: string, fn: (t: ExecutionContext, d: BlockDevice) => Promise<void>) => void,
  at: (region: keyof typeof REGION, plus?: number) => number,
  outOfRange: (size: number) => Array<[number, number]>,
): void {
  it('read-only: reads work and are stable (aligned, across an extent boundary, 2 MiB)', async (t, d) => {
    for (const [off, len] of [[0, PAGE], [at('readOnly', MiB - PAGE), 2 * PAGE], [at('readOnly'), 2 * MiB], [d.size - PAGE, PAGE]]) {
      const a = await d.read(off, len);
      t.is(a.length, len, `read(${off}, ${len}) length`);
      sameBytes(t, await d.read(off, len), a, `read(${off}, ${len}) twice gives the same bytes`);
    }
  });

  it('read-only: write, FUA write, trim and writeZeroes reject with EROFS and change nothing', async (t, d) => {
    const off = at('readOnly', MiB - PAGE);
    const before = await d.read(off, 2 * PAGE);
    await rejectsWith(t, () => d.write(off, randomBytes(2 * PAGE)), 'EROFS', 'write');
    await rejectsWith(t, () => d.write(off, randomBytes(2 * PAGE), true), 'EROFS', 'FUA write');
    await rejectsWith(t, () => d.trim(off, 2 * PAGE), 'EROFS', 'trim');
    await rejectsWith(t, () => d.writeZeroes(off, 2 * PAGE), 'EROFS', 'writeZeroes');
    await rejectsWith(t, () => d.writeZeroes(off, 2 * PAGE, true), 'EROFS', 'FUA writeZeroes');
    sameBytes(t, await d.read(off, 2 * PAGE), before, 'nothing changed');
  });

  it('read-only: out-of-range reads reject with EINVAL', async (t, d) => {
    for (const [off, len] of outOfRange(d.size)) await rejectsWith(t, () => d.read(off, len), 'EINVAL', `read(${off}, ${len})`);
  });
}
