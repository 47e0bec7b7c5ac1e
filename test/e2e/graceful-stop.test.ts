/**
 * A graceful node stop (SIGTERM) has the map mark the node down before its connections
 * close (src/node/main.ts stop, ControlPlane.leave, the authority's `leaving` heartbeat),
 * so host I/O goes on with the other copies at once instead of waiting out membership's
 * downAfterMs. Set to 15 s here: any mark-down or write faster than that is the leave's.
 * The node is marked up again when it restarts, and catches up on what it missed.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { ApiClient } from '../../src/api/index.ts';
import { LocalCluster } from '../../src/cluster/index.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';
import { nodeLog, waitMarkedDown } from '../helpers/device.ts';
import { compareMembers } from '../helpers/recovery.ts';

const MiB = 1024 * 1024;
const DOWN_AFTER_MS = 15000;

test('SIGTERM: the map marks the node down before it exits, writes go on at once, and it comes back', async (t) => {
  t.timeout(180000);
  const { dir, cleanup } = tempDataDir();
  const cluster = await LocalCluster.start({
    dataDir: dir,
    layout: { nodes: 3, deviceBytes: 128 * MiB, volumeBytes: 16 * MiB, membership: { heartbeatMs: 500, downAfterMs: DOWN_AFTER_MS, digestMs: 500 } },
  });
  try {
    const volume = await cluster.attach('vol0');
    const extents = (16 * MiB) / cluster.config.volumes.find((v) => v.name === 'vol0')!.extentBytes;
    const a = randomBytes(16 * MiB);
    await volume.write(0, a);
    await volume.flush();
    const api = (id: number): ApiClient => {
      const n = cluster.config.nodes.find((x) => x.id === id)!;
      return new ApiClient(`http://${n.host}:${n.apiPort}`, cluster.config.token, 5000);
    };
    const VICTIM = 1; // node 0 runs the map authority

    const t0 = Date.now();
    await cluster.stopNode(VICTIM);
    const stopMs = Date.now() - t0;
    t.true(await waitMarkedDown(cluster, [VICTIM], 2000), 'the other nodes\' maps show it down right after it exited');
    const downMs = Date.now() - t0;
    t.log(`stop took ${stopMs} ms; marked down in the others' maps ${downMs} ms after SIGTERM (downAfterMs ${DOWN_AFTER_MS})`);
    t.true(downMs < DOWN_AFTER_MS / 3, `marked down by the leave, not by missed heartbeats (${downMs} ms)`);
    const history = (await api(0).call<{ epochs: Array<{ epoch: number; change: string }> }>('GET', '/v1/map/history')).epochs;
    t.true(history.some((h) => h.change === `mark node ${VICTIM} down (stopping)`), `history names the stop: ${history.slice(-3).map((h) => h.change).join('; ')}`);
    t.true((await nodeLog(dir, VICTIM)).some((l) => l.msg === 'marked down in the map before stopping'), 'the node logged its leave');

    // Host I/O does not wait for the stopped node.
    const b = randomBytes(4 * MiB);
    const w0 = Date.now();
    await volume.write(2 * MiB, b);
    await volume.flush();
    const writeMs = Date.now() - w0;
    t.log(`4 MiB write + flush with node ${VICTIM} stopped: ${writeMs} ms, ${volume.counters.degradedWrites} degraded writes`);
    t.true(writeMs < 5000, `the write did not stall (${writeMs} ms)`);
    t.true(volume.counters.degradedWrites > 0, 'written to the two up copies');
    b.copy(a, 2 * MiB);
    t.true((await volume.read(0, 16 * MiB)).equals(a), 'reads return the new data');

    // Back: marked up by its first heartbeat (sent after its leaving one), then it catches up.
    await cluster.startNode(VICTIM);
    t.true(await cluster.waitPeered([VICTIM], 60000), 'peered after the restart');
    const map = await api(0).call<{ nodes: Array<{ id: number; up: boolean }> }>('GET', '/v1/map');
    t.true(map.nodes.find((n) => n.id === VICTIM)!.up, 'up again');
    let diff: string[] = ['not compared'];
    for (const end = Date.now() + 60000; Date.now() < end && diff.length > 0;) {
      diff = await compareMembers(cluster, volume, extents);
      if (diff.length) await new Promise((r) => setTimeout(r, 200));
    }
    t.deepEqual(diff, [], 'every extent identical on its three members, the restarted one included');
    volume.close();
  } finally {
    const s0 = Date.now();
    await cluster.stop();
    t.log(`cluster stop: ${Date.now() - s0} ms (no node waits for a mark-down)`);
    cleanup();
  }
});
