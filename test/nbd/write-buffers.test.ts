/**
 * The NBD session's write payload buffers (src/nbd/transmission.ts): large writes are read
 * into buffers lent from the session's pool and reused after the write succeeded; a failed
 * write's buffer is never reused, because a retry of it may still be on its way to a member.
 * Real server, real TCP socket, raw NBD requests.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { NbdServer } from '../../src/nbd/index.ts';
import { BlockDeviceError, type BlockDevice } from '../../src/volume/index.ts';
import { CMD, ERR, RawNbd } from '../helpers/raw-nbd.ts';

const MiB = 1024 * 1024;

/**
 * A 16 MiB device that keeps every `data` buffer it is given (to check identity and later
 * contents) and fails writes at offsets in `failAt` — after the call, the way a write whose
 * retry is still in flight fails.
 */
class KeepingDevice implements BlockDevice {
  readonly size = 16 * MiB;
  readonly blockSize = 4096;
  readonly mem = Buffer.alloc(16 * MiB);
  readonly seen: Buffer[] = [];
  readonly failAt = new Set<number>();
  async read(offset: number, length: number): Promise<Buffer> {
    return Buffer.from(this.mem.subarray(offset, offset + length));
  }
  async write(offset: number, data: Buffer): Promise<void> {
    this.seen.push(data);
    if (this.failAt.has(offset)) throw new BlockDeviceError('EIO', `injected failure at ${offset}`);
    data.copy(this.mem, offset);
  }
  async flush(): Promise<void> {}
  async trim(): Promise<void> {}
  async writeZeroes(offset: number, length: number): Promise<void> {
    this.mem.fill(0, offset, offset + length);
  }
}

async function serve(dev: BlockDevice): Promise<{ c: RawNbd; close: () => Promise<void> }> {
  const nbd = new NbdServer();
  nbd.addExport('d', dev);
  const port = await nbd.listen(0, '127.0.0.1');
  const c = await RawNbd.open(port);
  await c.go('d');
  return { c, close: async () => { c.destroy(); await nbd.close(); } };
}

test('large writes reuse payload buffers once they succeeded; a failed write\'s buffer is never reused', async (t) => {
  const dev = new KeepingDevice();
  const { c, close } = await serve(dev);
  try {
    dev.failAt.add(3 * MiB);
    const data: Buffer[] = [];
    const errors: number[] = [];
    // One at a time, so each write's buffer is free again before the next arrives.
    for (let i = 0; i < 8; i++) {
      data.push(randomBytes(MiB));
      errors.push((await c.cmd(CMD.WRITE, i * MiB, MiB, 0, data[i])).error);
    }
    t.deepEqual(errors, [0, 0, 0, ERR.EIO, 0, 0, 0, 0]);
    const failed = dev.seen[3];
    t.true(failed.equals(data[3]), 'the failed write\'s buffer still holds its own bytes after later writes');
    for (let i = 4; i < 8; i++) t.not(dev.seen[i], failed, `write ${i} did not get the failed write's buffer`);
    t.true(new Set(dev.seen).size < dev.seen.length, 'successful writes\' buffers were reused');
    for (let i = 0; i < 8; i++) {
      if (i === 3) continue;
      const r = await c.cmd(CMD.READ, i * MiB, MiB);
      t.true(r.data!.equals(data[i]), `MiB ${i} reads back what was written`);
    }
    // Pipelined writes in a stream of small and large requests, with the payloads split across TCP reads.
    const small = randomBytes(4096);
    const big = randomBytes(512 * 1024);
    const all = await Promise.all([c.cmd(CMD.WRITE, 8 * MiB, 4096, 0, small), c.cmd(CMD.WRITE, 9 * MiB, big.length, 0, big), c.cmd(CMD.WRITE, 10 * MiB, 4096, 0, small)]);
    t.deepEqual(all.map((r) => r.error), [0, 0, 0]);
    t.true(dev.mem.subarray(9 * MiB, 9 * MiB + big.length).equals(big));
    t.true(dev.mem.subarray(10 * MiB, 10 * MiB + 4096).equals(small));
  } finally {
    await close();
  }
});
