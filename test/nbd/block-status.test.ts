/**
 * Issue 11 items 5 (NBD) and 6, with real clients: `nbdinfo --map` and `qemu-img map` see the
 * holes and data a device reports through NBD_CMD_BLOCK_STATUS (`base:allocation`); on a
 * 3-node cluster volume the map is exactly the pages written (a trimmed range is a hole
 * again), and nbdcopy / qemu-img convert copy it reading only the data; `nbdinfo --list`
 * shows the static exports and an export provider serves exports that appear after listen;
 * a read-only export refuses writes with NBD_EPERM.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalCluster } from '../../src/cluster/index.ts';
import { NbdServer, type NbdExport } from '../../src/nbd/index.ts';
import type { BlockDevice, BlockExtent } from '../../src/volume/block-device.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';
import { until } from '../helpers/cluster.ts';
import { CMD, ERR, OPT, RawNbd } from '../helpers/raw-nbd.ts';
import { have, run } from '../helpers/tools.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const PAGE = 4096;

/** One line of `nbdinfo --map --json`. */
interface MapEntry {
  offset: number;
  length: number;
  type: number;
  description: string;
}

/** Runs of equal `hole` in a per-page model, as [offset, length, hole] (bytes). */
function runsOf(pages: Uint8Array): Array<[number, number, boolean]> {
  const out: Array<[number, number, boolean]> = [];
  for (let p = 0; p < pages.length; p++) {
    const hole = pages[p] === 0;
    const last = out[out.length - 1];
    if (last && last[2] === hole) last[1] += PAGE;
    else out.push([p * PAGE, PAGE, hole]);
  }
  return out;
}

/** `nbdinfo --map` of `uri`, adjacent entries of one type merged, as [offset, length, hole]. */
async function nbdMap(uri: string): Promise<Array<[number, number, boolean]>> {
  const r = await run('nbdinfo', ['--map', '--json', uri], 60000);
  if (r.code !== 0) throw new Error(`nbdinfo --map failed: ${r.stderr}`);
  const out: Array<[number, number, boolean]> = [];
  for (const e of JSON.parse(r.stdout) as MapEntry[]) {
    const hole = (e.type & 3) === 3;
    if ((e.type & 3) !== 0 && !hole) throw new Error(`unexpected map type ${e.type} (${e.description})`);
    const last = out[out.length - 1];
    if (last && last[2] === hole && last[0] + last[1] === e.offset) last[1] += e.length;
    else out.push([e.offset, e.length, hole]);
  }
  return out;
}

/** An in-memory device with a per-page allocation map; counts the bytes read from it. */
class PatternDevice implements BlockDevice {
  readonly blockSize = PAGE;
  readonly data: Buffer;
  readonly pages: Uint8Array;
  bytesRead = 0;
  constructor(readonly size: number, readonly readOnly = false) {
    this.data = Buffer.alloc(size);
    this.pages = new Uint8Array(size / PAGE);
  }
  async read(offset: number, length: number): Promise<Buffer> {
    this.bytesRead += length;
    return Buffer.from(this.data.subarray(offset, offset + length));
  }
  async write(offset: number, data: Buffer): Promise<void> {
    data.copy(this.data, offset);
    for (let p = Math.floor(offset / PAGE); p * PAGE < offset + data.length; p++) this.pages[p] = 1;
  }
  async flush(): Promise<void> {}
  async trim(): Promise<void> {}
  async writeZeroes(offset: number, length: number): Promise<void> {
    this.data.fill(0, offset, offset + length);
  }
  async blockStatus(offset: number, length: number): Promise<BlockExtent[]> {
    const out: BlockExtent[] = [];
    for (let p = offset; p < offset + length;) {
      const m = this.pages[Math.floor(p / PAGE)];
      let e = (Math.floor(p / PAGE) + 1) * PAGE;
      while (e < offset + length && this.pages[e / PAGE] === m) e += PAGE;
      e = Math.min(e, offset + length);
      out.push({ offset: p, length: e - p, hole: !m, zero: !m });
      p = e;
    }
    return out;
  }
}

/** A BlockDevice that passes everything to `inner` and counts the bytes read through it. */
function counting(inner: BlockDevice): BlockDevice & { bytesRead: number } {
  const d = {
    bytesRead: 0,
    size: inner.size,
    blockSize: inner.blockSize,
    read: (o: number, l: number) => {
      d.bytesRead += l;
      return inner.read(o, l);
    },
    write: (o: number, b: Buffer, fua?: boolean) => inner.write(o, b, fua),
    flush: () => inner.flush(),
    trim: (o: number, l: number) => inner.trim(o, l),
    writeZeroes: (o: number, l: number, fua?: boolean) => inner.writeZeroes(o, l, fua),
    blockStatus: (o: number, l: number) => inner.blockStatus!(o, l),
  };
  return d;
}

/** Option data of NBD_OPT_*_META_CONTEXT: export name and queries. */
function metaRequest(name: string, queries: string[]): Buffer {
  const parts = [Buffer.alloc(4), Buffer.from(name), Buffer.alloc(4)];
  parts[0].writeUInt32BE(parts[1].length);
  parts[2].writeUInt32BE(queries.length);
  for (const q of queries) {
    const l = Buffer.alloc(4);
    l.writeUInt32BE(Buffer.byteLength(q));
    parts.push(l, Buffer.from(q));
  }
  return Buffer.concat(parts);
}

/** NBD_OPT_GO data for `name` with no information requests. */
function goRequest(name: string): Buffer {
  const n = Buffer.from(name);
  const b = Buffer.alloc(4 + n.length + 2);
  b.writeUInt32BE(n.length);
  n.copy(b, 4);
  return b;
}

/** Sends one transmission request by hand (the helper's reply parser knows no block-status chunks). */
function request(c: RawNbd, type: number, flags: number, cookie: number, offset: number, length: number): void {
  const h = Buffer.alloc(28);
  h.writeUInt32BE(0x25609513, 0);
  h.writeUInt16BE(flags, 4);
  h.writeUInt16BE(type, 6);
  h.writeBigUInt64BE(BigInt(cookie), 8);
  h.writeBigUInt64BE(BigInt(offset), 16);
  h.writeUInt32BE(length, 24);
  c.raw(h);
}

/** Reads one structured reply chunk by hand. */
async function chunk(c: RawNbd): Promise<{ flags: number; type: number; cookie: number; payload: Buffer }> {
  const h = await c.read(20);
  if (h.readUInt32BE(0) !== 0x668e33ef) throw new Error(`not a structured reply: magic 0x${h.readUInt32BE(0).toString(16)}`);
  const len = h.readUInt32BE(16);
  return { flags: h.readUInt16BE(4), type: h.readUInt16BE(6), cookie: Number(h.readBigUInt64BE(8)), payload: Buffer.from(await c.read(len)) };
}

test('nbdinfo --map and qemu-img map show the holes and data a device reports; protocol corners', async (t) => {
  for (const tool of ['nbdinfo', 'qemu-img']) t.true(await have(tool), `${tool} is not installed (.ci/run installs it)`);
  const dev = new PatternDevice(16 * MiB);
  for (const [off, len] of [[0, 3 * PAGE], [100 * PAGE, PAGE], [1 * MiB - PAGE, 2 * PAGE], [16 * MiB - PAGE, PAGE]]) await dev.write(off, randomBytes(len));
  const nbd = new NbdServer();
  nbd.addExport('pattern', dev);
  const port = await nbd.listen(0);
  try {
    const uri = `nbd://127.0.0.1:${port}/pattern`;
    const expected = runsOf(dev.pages);
    t.deepEqual(await nbdMap(uri), expected, 'nbdinfo --map: holes and data at the right offsets');
    // qemu's own NBD client (not libnbd) reads the same map.
    const q = await run('qemu-img', ['map', '--output=json', '-f', 'raw', uri]);
    t.is(q.code, 0, q.stderr);
    const qmap = (JSON.parse(q.stdout) as Array<{ start: number; length: number; data: boolean; zero: boolean }>).map((e) => [e.start, e.length, !e.data && e.zero]);
    t.deepEqual(qmap, expected, 'qemu-img map agrees');

    // By hand: LIST_META_CONTEXT, SET_META_CONTEXT, REQ_ONE, and the errors.
    const c = await RawNbd.open(port);
    t.is((await c.option(OPT.STRUCTURED_REPLY))[0].type, 1);
    const listed = await c.option(9, metaRequest('pattern', []));
    t.deepEqual(listed.map((r) => [r.type, r.data.toString('utf8', 4)]), [[4, 'base:allocation'], [1, '']], 'LIST_META_CONTEXT offers base:allocation');
    t.deepEqual((await c.option(9, metaRequest('pattern', ['x-other:thing'])))[0].type, 1, 'other namespaces are ignored');
    t.is((await c.option(10, metaRequest('nope', ['base:allocation'])))[0].type, 0x80000006, 'unknown export: NBD_REP_ERR_UNKNOWN');
    const set = await c.option(10, metaRequest('pattern', ['base:allocation', 'base:']));
    t.deepEqual(set.map((r) => r.type), [4, 1], 'SET_META_CONTEXT selects exactly base:allocation');
    const id = set[0].data.readUInt32BE(0);
    const go = await c.option(OPT.GO, goRequest('pattern'));
    t.is(go[go.length - 1].type, 1);
    const flags = go.find((r) => r.type === 3 && r.data.readUInt16BE(0) === 0)!.data.readUInt16BE(10);
    t.truthy(flags & (1 << 7), 'NBD_FLAG_SEND_DF once structured replies are negotiated');

    request(c, CMD.BLOCK_STATUS, 1 << 3, 1, 0, 8 * MiB);
    let r = await chunk(c);
    t.deepEqual([r.cookie, r.flags, r.type, r.payload.readUInt32BE(0), r.payload.length], [1, 1, 5, id, 12], 'REQ_ONE: one descriptor, DONE');
    t.deepEqual([r.payload.readUInt32BE(4), r.payload.readUInt32BE(8)], [3 * PAGE, 0], 'the first three pages are data');
    request(c, CMD.BLOCK_STATUS, 1 << 3, 2, 4 * PAGE, 2 * PAGE);
    r = await chunk(c);
    t.deepEqual([r.payload.readUInt32BE(4), r.payload.readUInt32BE(8)], [2 * PAGE, 3], 'REQ_ONE never exceeds the request; hole+zero');
    request(c, CMD.BLOCK_STATUS, 0, 3, 16 * MiB - PAGE, 2 * PAGE);
    r = await chunk(c);
    t.deepEqual([r.type, r.payload.readUInt32BE(0)], [0x8001, ERR.EINVAL], 'beyond the end: EINVAL error chunk');
    request(c, CMD.BLOCK_STATUS, 0, 4, 0, 0);
    t.is((await chunk(c)).payload.readUInt32BE(0), ERR.EINVAL, 'zero length: EINVAL');
    request(c, CMD.READ, 1, 5, 0, PAGE);
    r = await chunk(c);
    t.deepEqual([r.type, r.flags, r.payload.length], [1, 1, 8 + PAGE], 'FUA on a read is accepted (one OFFSET_DATA chunk)');
    c.destroy();

    // Structured replies but no context selected: block status is EINVAL.
    const d = await RawNbd.open(port);
    await d.option(OPT.STRUCTURED_REPLY);
    t.is((await d.option(OPT.GO, goRequest('pattern'))).at(-1)!.type, 1);
    request(d, CMD.BLOCK_STATUS, 0, 9, 0, PAGE);
    r = await chunk(d);
    t.deepEqual([r.type, r.payload.readUInt32BE(0)], [0x8001, ERR.EINVAL]);
    d.destroy();
  } finally {
    await nbd.close();
  }
});

test('nbdinfo --list shows the static exports; a provider export added after listen is served; read-only refuses writes with EPERM', async (t) => {
  t.true(await have('nbdinfo'), 'nbdinfo is not installed (.ci/run installs it)');
  const late = new Map<string, NbdExport>();
  const nbd = new NbdServer({
    exports: {
      list: async () => [...late.values()].map((e) => ({ name: e.name, description: e.description })),
      open: async (name) => late.get(name),
    },
  });
  const ro = new PatternDevice(4 * MiB, true);
  await ro.write(0, Buffer.alloc(PAGE, 7));
  nbd.addExport('one', new PatternDevice(4 * MiB), 'first');
  nbd.addExport('snap', ro, 'read-only view');
  const port = await nbd.listen(0);
  try {
    const base = `nbd://127.0.0.1:${port}`;
    let r = await run('nbdinfo', ['--list', '--json', base]);
    t.is(r.code, 0, r.stderr);
    let list = JSON.parse(r.stdout) as { exports: Array<{ 'export-name': string; is_read_only: boolean; contexts: string[] }> };
    t.deepEqual(list.exports.map((e) => [e['export-name'], e.is_read_only, e.contexts]), [['one', false, ['base:allocation']], ['snap', true, ['base:allocation']]]);

    r = await run('nbdinfo', [`${base}/vol7`]);
    t.not(r.code, 0, 'an export that does not exist yet is refused');
    t.regex(r.stderr, /vol7/, 'the refusal names it');
    late.set('vol7', { name: 'vol7', description: 'new volume', device: new PatternDevice(8 * MiB) });
    r = await run('nbdinfo', ['--json', `${base}/vol7`]);
    t.is(r.code, 0, r.stderr);
    t.is((JSON.parse(r.stdout) as { exports: Array<{ 'export-size': number }> }).exports[0]['export-size'], 8 * MiB, 'served without a restart');
    r = await run('nbdinfo', ['--list', '--json', base]);
    list = JSON.parse(r.stdout) as typeof list;
    t.deepEqual(list.exports.map((e) => e['export-name']), ['one', 'snap', 'vol7']);

    const c = await RawNbd.open(port);
    t.is((await c.go('snap')).at(-1)!.type, 1);
    t.truthy(c.flags & 2, 'NBD_FLAG_READ_ONLY');
    t.is(c.flags & ((1 << 5) | (1 << 6)), 0, 'no trim or write-zeroes offered');
    const w = await c.cmd(CMD.WRITE, 0, PAGE, 0, Buffer.alloc(PAGE, 1));
    t.is(w.error, ERR.EPERM, `write: ${w.message}`);
    t.is((await c.cmd(CMD.TRIM, 0, PAGE)).error, ERR.EPERM, 'trim');
    t.is((await c.cmd(CMD.WRITE_ZEROES, 0, PAGE)).error, ERR.EPERM, 'write-zeroes');
    const back = await c.cmd(CMD.READ, 0, PAGE);
    t.is(back.error, 0);
    t.true(back.data!.equals(Buffer.alloc(PAGE, 7)), 'the data is untouched and still readable');
    c.destroy();
  } finally {
    await nbd.close();
  }
});

test('cluster volume: nbdinfo --map shows exactly the written pages; nbdcopy and qemu-img convert read only the data; an unanswering member makes data, not holes', async (t) => {
  t.timeout(120000);
  for (const tool of ['nbdinfo', 'nbdcopy', 'qemu-img']) t.true(await have(tool), `${tool} is not installed (.ci/run installs it)`);
  const size = 32 * MiB;
  const { dir, cleanup } = tempDataDir();
  const cluster = await LocalCluster.start({
    dataDir: dir,
    layout: { nodes: 3, devicesPerNode: 1, deviceBytes: 256 * MiB, partitionsPerDevice: 2, volumeBytes: size, membership: { heartbeatMs: 250, downAfterMs: 1200, digestMs: 250 } },
    startTimeoutMs: 60000,
  });
  const nbd = new NbdServer();
  let volume: Awaited<ReturnType<LocalCluster['attach']>> | undefined;
  try {
    volume = await cluster.attach('vol0');
    const model = Buffer.alloc(size);
    const pages = new Uint8Array(size / PAGE);
    const write = async (offset: number, length: number): Promise<void> => {
      const b = randomBytes(length);
      await volume!.write(offset, b);
      b.copy(model, offset);
      pages.fill(1, offset / PAGE, (offset + length) / PAGE);
    };
    const trim = async (offset: number, length: number): Promise<void> => {
      await volume!.trim(offset, length);
      model.fill(0, offset, offset + length);
      pages.fill(0, offset / PAGE, (offset + length) / PAGE);
    };
    await write(0, PAGE); // the first page
    await write(1 * MiB + 8 * KiB, 64 * KiB); // inside extent 1
    await write(3 * MiB - PAGE, 3 * PAGE); // across the extent 2/3 boundary
    await write(10 * MiB, 1 * MiB); // a whole extent ...
    await trim(10 * MiB + 256 * KiB, 256 * KiB); // ... with a trimmed hole in it
    await write(20 * MiB, 8 * KiB);
    await trim(20 * MiB, 8 * KiB); // written, then trimmed away entirely
    await write(size - PAGE, PAGE); // the last page
    await volume.flush();

    const dev = counting(volume);
    nbd.addExport('vol0', dev);
    const port = await nbd.listen(0);
    const uri = `nbd://127.0.0.1:${port}/vol0`;
    const map = await nbdMap(uri);
    t.log('nbdinfo --map:\n' + (await run('nbdinfo', ['--map', uri])).stdout.trimEnd());
    t.deepEqual(map, runsOf(pages), 'data exactly where written (and not trimmed), holes elsewhere');
    const dataBytes = pages.reduce((a, p) => a + p, 0) * PAGE;

    dev.bytesRead = 0;
    let r = await run('nbdcopy', [uri, join(dir, 'copy.raw')]);
    t.is(r.code, 0, r.stderr);
    t.true(readFileSync(join(dir, 'copy.raw')).equals(model), 'nbdcopy: the copy matches');
    t.log(`nbdcopy read ${dev.bytesRead} bytes of a ${size}-byte volume holding ${dataBytes} bytes of data`);
    t.true(dev.bytesRead < size / 8, `nbdcopy skipped the holes (read ${dev.bytesRead} bytes)`);

    dev.bytesRead = 0;
    r = await run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', uri, join(dir, 'convert.raw')]);
    t.is(r.code, 0, r.stderr);
    t.true(readFileSync(join(dir, 'convert.raw')).equals(model), 'qemu-img convert: the copy matches');
    t.log(`qemu-img convert read ${dev.bytesRead} bytes`);
    t.true(dev.bytesRead < size / 8, `qemu-img convert skipped the holes (read ${dev.bytesRead} bytes)`);

    // A member that does not answer: its extents are reported as data (never a wrong hole);
    // once the map marks it down, the two others give the exact map again.
    await cluster.stopNode(2, 'SIGKILL');
    const unsure = await volume.blockStatus(0, size);
    const hiddenData = unsure.filter((e) => e.hole && pages.subarray(e.offset / PAGE, (e.offset + e.length) / PAGE).some((p) => p === 1));
    t.deepEqual(hiddenData, [], 'no written page is ever reported as a hole');
    t.log(`right after the kill: ${unsure.length === 1 && !unsure[0].hole ? 'all data (node 2 not answering, not yet marked down)' : `${unsure.length} runs (node 2 already marked down)`}`);
    t.true(await until(() => !cluster.view.isUp(2), 20000), 'node 2 marked down');
    const degraded = await volume.blockStatus(0, size);
    t.deepEqual(degraded.map((e): [number, number, boolean] => [e.offset, e.length, e.hole]), runsOf(pages), 'exact again from the up members');
  } finally {
    await nbd.close();
    volume?.close();
    await cluster.stop();
    cleanup();
  }
});
