/**
 * The protocol-neutral frontend scenario (test/helpers/frontend-scenario.ts) through both
 * frontends, each over both kinds of device: NBD (src/nbd NbdServer, driven by the raw NBD
 * client of test/helpers/raw-nbd.ts) and NVMe/TCP (src/nvmf NvmfTarget, driven by the test
 * host of test/nvmf/helpers/host.ts), over a FileBlockDevice on a temporary file and over the
 * cluster Volume of a real 3-node LocalCluster (one cluster for both protocols).
 */
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalCluster } from '../../src/cluster/index.ts';
import { Volume } from '../../src/initiator/index.ts';
import { NbdServer } from '../../src/nbd/index.ts';
import { buildSqe, IoOpc, SglId } from '../../src/nvmf/command.ts';
import { LBA_SIZE, MAX_TRANSFER, NvmeStatus, NvmfTarget } from '../../src/nvmf/index.ts';
import { FileBlockDevice, type BlockDevice } from '../../src/volume/index.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';
import { CMD, ERR, RawNbd, type CmdReply } from '../helpers/raw-nbd.ts';
import { FrontendError, frontendScenario, type FrontendClient } from '../helpers/frontend-scenario.ts';
import { openSession } from '../nvmf/helpers/host.ts';
import { HOSTNQN, SUBNQN } from '../nvmf/helpers/fixture.ts';

const MiB = 1024 * 1024;
const SIZE = 32 * MiB;

/** A client that also ends its connection. */
type Closable = FrontendClient & { close(): void };

/** NBD over RawNbd: fixed newstyle, NBD_OPT_GO with structured replies. */
async function nbdClient(port: number): Promise<Closable> {
  const c = await RawNbd.open(port);
  const go = await c.go('vol0');
  if (go[go.length - 1].type !== 1) throw new Error(`NBD_OPT_GO refused: 0x${go[go.length - 1].type.toString(16)}`);
  const ok = (r: CmdReply, what: string): CmdReply => {
    if (r.error) throw new FrontendError('nbd', r.error, `${what}: NBD error ${r.error}${r.message ? ` (${r.message})` : ''}`);
    return r;
  };
  return {
    sizeBytes: Number(c.size),
    read: async (off, len) => ok(await c.cmd(CMD.READ, off, len), `read ${off}+${len}`).data!,
    write: async (off, buf) => void ok(await c.cmd(CMD.WRITE, off, buf.length, 0, buf), `write ${off}+${buf.length}`),
    flush: async () => void ok(await c.cmd(CMD.FLUSH, 0, 0), 'flush'),
    trim: async (off, len) => void ok(await c.cmd(CMD.TRIM, off, len), `trim ${off}+${len}`),
    close: () => c.destroy(),
  };
}

/** NVMe/TCP over the test host: admin + one I/O queue, namespace 1; requests split at MDTS. */
async function nvmeClient(port: number): Promise<Closable> {
  const s = await openSession(port, SUBNQN, HOSTNQN);
  const ns = (await s.admin.identify(0, 1)).data!;
  const ok = (status: number, what: string): void => {
    if (status !== 0) throw new FrontendError('nvme', status, `${what}: NVMe status 0x${status.toString(16)}`);
  };
  const lba = (off: number): number => {
    if (off % LBA_SIZE !== 0) throw new Error(`offset ${off} is not a multiple of the LBA size`);
    return off / LBA_SIZE;
  };
  return {
    sizeBytes: Number(ns.readBigUInt64LE(0)) * LBA_SIZE,
    read: async (off, len) => {
      const parts: Buffer[] = [];
      for (let done = 0; done < len; done += MAX_TRANSFER) {
        const n = Math.min(MAX_TRANSFER, len - done);
        const r = await s.io.read(1, lba(off + done), n / LBA_SIZE);
        ok(r.cqe.status, `read ${off + done}+${n}`);
        parts.push(r.data!);
      }
      return Buffer.concat(parts);
    },
    write: async (off, buf) => {
      for (let done = 0; done < buf.length; done += MAX_TRANSFER) {
        const part = buf.subarray(done, done + MAX_TRANSFER);
        ok((await s.io.write(1, lba(off + done), part)).status, `write ${off + done}+${part.length}`);
      }
    },
    flush: async () => ok((await s.io.submit(buildSqe({ opcode: IoOpc.FLUSH, cid: s.io.cid(), nsid: 1 }))).cqe.status, 'flush'),
    trim: async (off, len) => {
      const range = Buffer.alloc(16);
      range.writeUInt32LE(len / LBA_SIZE, 4);
      range.writeBigUInt64LE(BigInt(lba(off)), 8);
      const sqe = buildSqe({ opcode: IoOpc.DSM, cid: s.io.cid(), nsid: 1, sglId: SglId.IN_CAPSULE, sglLength: 16, cdw: { 10: 0, 11: 4 } });
      ok((await s.io.submit(sqe, { h2c: range, inCapsule: true })).cqe.status, `deallocate ${off}+${len}`);
    },
    close: () => s.close(),
  };
}

/** Serves `device` over NBD, runs the scenario through it, stops the server. */
async function overNbd(t: ExecutionContext, device: BlockDevice): Promise<void> {
  const server = new NbdServer();
  server.addExport('vol0', device);
  const port = await server.listen(0);
  const c = await nbdClient(port);
  try {
    t.is(c.sizeBytes, device.size, 'export size');
    await frontendScenario(t, c, { outOfRange: { read: ERR.EINVAL, write: ERR.ENOSPC, trim: ERR.EINVAL }, device });
  } finally {
    c.close();
    await server.close();
  }
}

/** Serves `device` over NVMe/TCP, runs the scenario through it, stops the target. */
async function overNvme(t: ExecutionContext, device: BlockDevice): Promise<void> {
  const target = new NvmfTarget();
  target.addSubsystem({ nqn: SUBNQN, allowHosts: [HOSTNQN], namespaces: [{ nsid: 1, device }] });
  const port = await target.listen({ portId: 1, port: 0 });
  const c = await nvmeClient(port.trsvcid);
  try {
    t.is(c.sizeBytes, device.size, 'namespace size');
    const oor = NvmeStatus.LBA_OUT_OF_RANGE;
    await frontendScenario(t, c, { outOfRange: { read: oor, write: oor, trim: oor }, device });
  } finally {
    c.close();
    await target.close();
  }
}

/** A FileBlockDevice of SIZE on a temporary file, removed when the test ends. */
async function fileDevice(t: ExecutionContext): Promise<FileBlockDevice> {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-frontend-'));
  const device = await FileBlockDevice.open(join(dir, 'vol0.img'), { size: SIZE });
  t.teardown(async () => {
    await device.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return device;
}

test('NBD over a FileBlockDevice', async (t) => overNbd(t, await fileDevice(t)));
test('NVMe/TCP over a FileBlockDevice', async (t) => overNvme(t, await fileDevice(t)));

let cluster: LocalCluster | undefined;
let volume: Volume | undefined;
let cleanup: (() => void) | undefined;

test.before(async () => {
  const d = tempDataDir();
  cleanup = d.cleanup;
  cluster = await LocalCluster.start({
    dataDir: d.dir,
    layout: { nodes: 3, devicesPerNode: 1, deviceBytes: 64 * MiB, replicas: 3, volumeBytes: SIZE, extentBytes: MiB },
  });
  volume = await cluster.attach('vol0', { ioTimeoutMs: 10000 });
});

test.after.always(async () => {
  volume?.close();
  await cluster?.stop();
  cleanup?.();
});

// Both cluster tests serve the same volume: one after the other.
test.serial('NBD over the cluster Volume', async (t) => overNbd(t, volume!));
test.serial('NVMe/TCP over the cluster Volume', async (t) => overNvme(t, volume!));
