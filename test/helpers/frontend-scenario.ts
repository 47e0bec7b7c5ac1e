/**
 * One protocol-neutral scenario for the frontends (NBD, NVMe/TCP): a test wraps its protocol
 * client in FrontendClient and runs `frontendScenario`. It writes known patterns at a few
 * offsets (including across 1 MiB extent boundaries and the last pages of the export),
 * flushes, reads them back, checks that neighbours were not touched, trims and reads zeros,
 * and checks that out-of-range requests get the protocol's own error while the connection
 * keeps serving and nothing is changed. Offsets and lengths are multiples of 4 KiB (the
 * logical block size of both protocols). Each request is at most 1 MiB (NVMe/TCP's MDTS).
 * It reads neighbours before writing instead of assuming zeros, so it can run on a device
 * that an earlier scenario already wrote.
 */
import type { ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { sameBytes } from './block-device-compliance.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const PAGE = 4096;

/** An error reply of the protocol: `status` is its own code (NBD errno, NVMe status field). */
export class FrontendError extends Error {
  override name = 'FrontendError';
  constructor(readonly protocol: string, readonly status: number, message: string) {
    super(message);
  }
}

/** The tiny client a scenario needs. Methods reject with FrontendError on an error reply. */
export interface FrontendClient {
  /** Export / namespace size in bytes. */
  readonly sizeBytes: number;
  /** Reads `len` bytes at byte offset `off`. */
  read(off: number, len: number): Promise<Buffer>;
  /** Writes `buf` at byte offset `off`. */
  write(off: number, buf: Buffer): Promise<void>;
  /** Makes completed writes durable. */
  flush(): Promise<void>;
  /** Deallocates `len` bytes at `off` (NBD_CMD_TRIM, NVMe Dataset Management deallocate). */
  trim(off: number, len: number): Promise<void>;
}

/** What the protocol answers to out-of-range requests, and an optional look behind the frontend. */
export interface ScenarioOptions {
  /** The protocol's status for a read, a write and a trim that end beyond the export. */
  outOfRange: { read: number; write: number; trim: number };
  /** The device the frontend serves: when given, writes are also checked on it directly. */
  device?: { read(off: number, len: number): Promise<Buffer> };
  /** Extent size of the device below (default 1 MiB). */
  extentBytes?: number;
}

/** Asserts `p()` rejects with a FrontendError of status `status`. */
async function refused(t: ExecutionContext, p: () => Promise<unknown>, status: number, what: string): Promise<void> {
  const e = await t.throwsAsync(p, { instanceOf: FrontendError }, `${what}: error reply`);
  t.is(e?.status, status, `${what}: status`);
}

/** Runs the scenario on `c` (see the module comment). */
export async function frontendScenario(t: ExecutionContext, c: FrontendClient, o: ScenarioOptions): Promise<void> {
  const ext = o.extentBytes ?? MiB;
  t.true(c.sizeBytes >= 4 * ext && c.sizeBytes % PAGE === 0, `export of ${c.sizeBytes} bytes holds four extents`);
  const end = c.sizeBytes;
  const writes = [
    { what: 'first 16 KiB', off: 0, len: 16 * KiB },
    { what: '8 KiB across the first extent boundary', off: ext - PAGE, len: 8 * KiB },
    { what: '256 KiB inside extent 2', off: 2 * ext + 64 * KiB, len: 256 * KiB },
    { what: '1 MiB across the third extent boundary', off: 3 * ext - 512 * KiB, len: MiB },
    { what: 'last 8 KiB', off: end - 8 * KiB, len: 8 * KiB },
  ].map((w) => ({ ...w, data: randomBytes(w.len) }));

  // Neighbours: the page before and after each write (where inside the export).
  const around = (w: { off: number; len: number }): Array<[number, number]> =>
    [[w.off - PAGE, PAGE], [w.off + w.len, PAGE]].filter(([off]) => off >= 0 && off + PAGE <= end) as Array<[number, number]>;
  const neighbours = new Map<number, Buffer>();
  for (const w of writes) for (const [off, len] of around(w)) neighbours.set(off, await c.read(off, len));

  await Promise.all(writes.map((w) => c.write(w.off, w.data)));
  await c.flush();
  for (const w of writes) sameBytes(t, await c.read(w.off, w.len), w.data, `read back: ${w.what}`);
  for (const [off, before] of neighbours) {
    if (writes.some((w) => off < w.off + w.len && off + PAGE > w.off)) continue; // a neighbour that another write covers
    sameBytes(t, await c.read(off, PAGE), before, `page at ${off} next to a write is untouched`);
  }
  if (o.device) for (const w of writes) sameBytes(t, await o.device.read(w.off, w.len), w.data, `on the device: ${w.what}`);

  // Trim whole pages: the middle of the first write, and the write across the first boundary.
  await c.trim(4 * KiB, 8 * KiB);
  await c.trim(ext - PAGE, 8 * KiB);
  await c.flush();
  const first = Buffer.from(writes[0].data);
  first.fill(0, 4 * KiB, 12 * KiB);
  sameBytes(t, await c.read(0, 16 * KiB), first, 'the first 16 KiB with 8 KiB trimmed');
  sameBytes(t, await c.read(ext - PAGE, 8 * KiB), Buffer.alloc(8 * KiB), 'trimmed across the extent boundary');
  sameBytes(t, await c.read(2 * ext + 64 * KiB, 256 * KiB), writes[2].data, 'other writes are kept');
  if (o.device) sameBytes(t, await o.device.read(ext - PAGE, 8 * KiB), Buffer.alloc(8 * KiB), 'trimmed on the device');

  // Out of range: the protocol's error, nothing changed, the connection still serves.
  await refused(t, () => c.read(end - PAGE, 2 * PAGE), o.outOfRange.read, 'read crossing the end');
  await refused(t, () => c.read(end, PAGE), o.outOfRange.read, 'read past the end');
  await refused(t, () => c.write(end - PAGE, randomBytes(2 * PAGE)), o.outOfRange.write, 'write crossing the end');
  await refused(t, () => c.write(end, randomBytes(PAGE)), o.outOfRange.write, 'write past the end');
  await refused(t, () => c.trim(end - PAGE, 2 * PAGE), o.outOfRange.trim, 'trim crossing the end');
  sameBytes(t, await c.read(end - 8 * KiB, 8 * KiB), writes[4].data, 'the last 8 KiB are untouched');
  const again = randomBytes(PAGE);
  await c.write(end - PAGE, again);
  sameBytes(t, await c.read(end - PAGE, PAGE), again, 'the connection still serves');
}
