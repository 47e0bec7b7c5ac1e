/**
 * A node's recovery report (GET /v1/recovery) says `peering` from the moment its map's
 * placement changes until it has marked the extents newly placed on it stale. Before that
 * mark, nothing else in the report shows that data will move, so a report with nothing stale
 * and no active pass looked settled while the placement round was still asking its peers
 * what they hold (CI once saw the device-out backfill test compare members before any copy
 * was made). Here the round is held open by a stopped peer (SIGSTOP, and a down-detection
 * time far longer than the test) and the report must say peering all along; once the peer
 * runs again the round completes and the flag clears.
 */
import test from 'ava';
import { ApiClient } from '../../src/api/index.ts';
import { LocalCluster } from '../../src/cluster/index.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';
import { recoveryReport } from '../helpers/recovery.ts';
import { eventually } from '../helpers/cluster.ts';

const MiB = 1024 * 1024;


test('a node reports peering while its placement round waits for a peer, and not after', async (t) => {
  t.timeout(180000);
  const { dir, cleanup } = tempDataDir();
  const cluster = await LocalCluster.start({
    dataDir: dir,
    layout: { nodes: 3, deviceBytes: 64 * MiB, volumeBytes: 8 * MiB, membership: { heartbeatMs: 250, downAfterMs: 120000, digestMs: 250 } },
    startTimeoutMs: 90000,
  });
  let stopped: number | undefined;
  try {
    const volume = await cluster.attach('vol0');
    await volume.write(0, Buffer.alloc(8 * MiB, 7));
    await volume.flush();
    volume.close();
    t.true(await eventually(async () => (await recoveryReport(cluster, 0))?.peering === false, 30000), 'node 0 settles after start');
    stopped = cluster.pidOf(2)!;
    process.kill(stopped, 'SIGSTOP');
    const api = new ApiClient(`http://127.0.0.1:${cluster.config.nodes[0].apiPort}`, cluster.config.token);
    const { epoch } = await api.call<{ epoch: number }>('POST', '/v1/map/changes', { type: 'reweight', node: 1, weight: 0.5 });
    t.true(await eventually(async () => ((await recoveryReport(cluster, 0))?.epoch ?? 0) >= epoch, 30000), 'node 0 reaches the new epoch');
    // Node 0's placement round cannot finish: it keeps asking the stopped node 2 what it holds.
    for (let i = 0; i < 6; i++) {
      const r = await recoveryReport(cluster, 0);
      t.truthy(r);
      t.true(r!.peering, `report ${i} at epoch ${r!.epoch}: peering while the placement round is open (stale ${r!.stale.length})`);
      await new Promise((res) => setTimeout(res, 250));
    }
    process.kill(stopped, 'SIGCONT');
    stopped = undefined;
    t.true(await eventually(async () => (await recoveryReport(cluster, 0))?.peering === false, 60000), 'the flag clears once node 2 answers');
  } finally {
    if (stopped !== undefined) process.kill(stopped, 'SIGCONT');
    await cluster.stop();
    cleanup();
  }
});
