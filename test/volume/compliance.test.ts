/**
 * The BlockDevice compliance suite (test/helpers/block-device-compliance.ts) against every
 * implementation we have: the file-backed device on a temporary file, and — through a real
 * 3-node LocalCluster (1 device of 128 MiB per node, 3 replicas, 1 MiB extents) started once
 * for all of them — the initiator's cluster Volume, a clone (ClonedVolume: every write copies
 * up from its parent snapshot first) and a snapshot view (SnapshotView, read-only), the last
 * two made through the catalog's REST API.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '../../src/api/index.ts';
import { LocalCluster } from '../../src/cluster/index.ts';
import type { VolumeSet } from '../../src/gateway/index.ts';
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
    layout: { nodes: 3, devicesPerNode: 1, deviceBytes: 128 * MiB, replicas: 3, volumeBytes: SUITE_BYTES, extentBytes: MiB },
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

// (c) A clone of a snapshot of an empty volume, and (d) that snapshot, read-only: made once
// through the API, attached by name like `cairn up` does.
let set: VolumeSet | undefined;
let made: Promise<void> | undefined;
function catalogDevices(): Promise<void> {
  made ??= (async () => {
    if (!cluster) throw new Error('the cluster did not start');
    const n = cluster.config.nodes[1];
    const api = new ApiClient(`http://${n.host}:${n.apiPort}`, cluster.config.token);
    await api.call('POST', '/v1/volumes', { name: 'base', size: SUITE_BYTES });
    await api.call('POST', '/v1/volumes/base/snapshots', { name: 'empty' });
    await api.call('POST', '/v1/volumes/base/snapshots/empty/clone', { name: 'clone1' });
    set = cluster.volumeSet({ ioTimeoutMs: 10000 });
  })();
  return made;
}
test.after.always(async () => {
  await set?.close();
});

blockDeviceCompliance(test, 'clone (ClonedVolume)', {
  supportsUnalignedIo: true,
  async open(sizeBytes) {
    await catalogDevices();
    const a = await set!.open('clone1');
    if (!a?.clone) throw new Error('clone1 did not attach as a clone');
    if (a.device.size !== sizeBytes) throw new Error(`clone1 has ${a.device.size} bytes, the suite asked for ${sizeBytes}`);
    return { device: a.device, close: async () => undefined };
  },
});

blockDeviceCompliance(test, 'snapshot view (SnapshotView)', {
  readOnly: true,
  supportsUnalignedIo: true,
  async open(sizeBytes) {
    await catalogDevices();
    const a = await set!.open('base@empty');
    if (!a?.device.readOnly) throw new Error('base@empty did not attach read-only');
    if (a.device.size !== sizeBytes) throw new Error(`base@empty has ${a.device.size} bytes, the suite asked for ${sizeBytes}`);
    return { device: a.device, close: async () => undefined };
  },
});
