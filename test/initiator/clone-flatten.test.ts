/**
 * An attached clone (ClonedVolume, as `cairn up`'s gateway holds it) while the catalog
 * flattens it and the parent snapshot is deleted, before the gateway's catalog poll has
 * seen either (this VolumeSet never polls). The clone had read its parent-backed extents
 * first, so it remembers them as "not mine"; reads and copy-up writes must still find the
 * flattened data instead of failing on the released snapshot. A real 3-node LocalCluster
 * (child processes, TCP), changes made through the REST API like the CLI makes them.
 */
import test from 'ava';
import { ApiClient } from '../../src/api/index.ts';
import { LocalCluster } from '../../src/cluster/index.ts';
import type { VolumeSet } from '../../src/gateway/index.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';

const MiB = 1024 * 1024;

/** `pages` 4 KiB pages of byte `b`, each stamped with its page index from `firstPage` (so a misplaced page shows). */
function pattern(b: number, pages: number, firstPage: number): Buffer {
  const out = Buffer.alloc(pages * 4096, b);
  for (let p = 0; p < pages; p++) out.writeUInt32LE(firstPage + p, p * 4096);
  return out;
}

test('a flattened clone reads and writes its copied extents after the snapshot is deleted, before the gateway hears of it', async (t) => {
  t.timeout(240000);
  const d = tempDataDir();
  const cluster = await LocalCluster.start({
    dataDir: d.dir,
    layout: { nodes: 3, devicesPerNode: 1, deviceBytes: 128 * MiB, replicas: 3, volumeBytes: 8 * MiB, extentBytes: MiB },
  });
  let set: VolumeSet | undefined;
  try {
    const n = cluster.config.nodes[1];
    const api = new ApiClient(`http://${n.host}:${n.apiPort}`, cluster.config.token);
    await api.call('POST', '/v1/volumes', { name: 'base', size: 4 * MiB });
    set = cluster.volumeSet({ ioTimeoutMs: 10000 });
    const base = (await set.open('base'))!.device;
    const A = pattern(0xaa, 1024, 0);
    await base.write(0, A);
    await base.flush();
    await api.call('POST', '/v1/volumes/base/snapshots', { name: 's' });
    // The volume moves on after the snapshot: its first 2 MiB differ from the snapshot's.
    await base.write(0, pattern(0xbb, 512, 0));
    await base.flush();
    await api.call('POST', '/v1/volumes/base/snapshots/s/clone', { name: 'c' });
    const c = (await set.open('c'))!;
    t.truthy(c.clone, 'c attaches as a clone');
    t.true((await c.device.read(0, 4 * MiB)).equals(A), 'the clone reads its parent snapshot');

    const job = await api.call<{ id: string }>('POST', '/v1/volumes/c/flatten');
    for (;;) {
      const j = await api.call<{ state: string; error?: string }>('GET', `/v1/jobs/${job.id}`);
      if (j.state === 'succeeded') break;
      t.not(j.state, 'failed', `flatten failed: ${j.error}`);
      if (j.state === 'failed') return;
      await new Promise((r) => setTimeout(r, 100));
    }
    await api.call('DELETE', '/v1/volumes/base/snapshots/s');

    // The gateway still believes extents 0–3 come from base@s, which no node pins now. A
    // write into one copies up first: it must not need the released parent.
    const C = pattern(0xcc, 16, 768);
    await c.device.write(3 * MiB, C);
    // A read of the others must find the flattened bytes, not fail on the parent.
    t.true((await c.device.read(0, 3 * MiB)).equals(A.subarray(0, 3 * MiB)), 'the flattened clone reads its copied bytes');
    const after = await c.device.read(0, 4 * MiB);
    t.true(after.subarray(0, 3 * MiB).equals(A.subarray(0, 3 * MiB)), 'extents 0–2 unchanged');
    t.true(after.subarray(3 * MiB, 3 * MiB + C.length).equals(C), 'the new write');
    t.true(after.subarray(3 * MiB + C.length).equals(A.subarray(3 * MiB + C.length)), 'the rest of extent 3 as flattened');
    t.true((await base.read(0, 2 * MiB)).equals(pattern(0xbb, 512, 0)), 'the parent volume keeps its own bytes');
  } finally {
    await set?.close();
    await cluster.stop();
    d.cleanup();
  }
});
