/**
 * The BlockDevice compliance suite (test/helpers/block-device-compliance.ts) against every
 * implementation we have: the file-backed device on a temporary file, and the initiator's
 * cluster Volume through a real 3-node LocalCluster (1 device of 64 MiB per node, a 32 MiB
 * 3-replica volume with 1 MiB extents), started once for all its tests.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalCluster } from '../../src/cluster/index.ts';
import { FileBlockDevice } from '../../src/volume/index.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';
import { SUITE_BYTES, blockDeviceCompliance } from '../helpers/block-device-compliance.ts';

const MiB = 1024 * 1024;

// (a) FileBlockDevice: pread/pwrite take any range, so unaligned I/O works.
blockDeviceCompliance(test, 'FileBlockDevice', {
  supportsUnalignedIo: true,
  async open(sizeBytes) {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-compliance-'));
    const device = await FileBlockDevice.open(join(dir, 'dev.img'), { size: sizeBytes });
    return {
      device,
      close: async () => {
        await device.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
});

// (b) The cluster Volume: sub-page writes are read-modify-write, reads are sliced from pages.
let cluster: LocalCluster | undefined;
let cleanup: (() => void) | undefined;

test.before(async () => {
  const d = tempDataDir();
  cleanup = d.cleanup;
  cluster = await LocalCluster.start({
    dataDir: d.dir,
    layout: { nodes: 3, devicesPerNode: 1, deviceBytes: 64 * MiB, replicas: 3, volumeBytes: SUITE_BYTES, extentBytes: MiB },
  });
});

test.after.always(async () => {
  await cluster?.stop();
  cleanup?.();
});

blockDeviceCompliance(test, 'cluster Volume', {
  supportsUnalignedIo: true,
  async open(sizeBytes) {
    if (!cluster) throw new Error('the cluster did not start');
    const device = await cluster.attach('vol0', { ioTimeoutMs: 10000 });
    if (device.size !== sizeBytes) throw new Error(`vol0 has ${device.size} bytes, the suite asked for ${sizeBytes}`);
    return { device, close: async () => device.close() };
  },
});
