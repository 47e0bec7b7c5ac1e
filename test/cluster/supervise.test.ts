/**
 * Node-process supervision (LocalClusterOptions.supervise): a node killed with SIGKILL is
 * restarted after the first backoff with one supervisor line per step; a node stopped through
 * stopNode() stays down; stop() leaves no process or timer behind.
 */
import test from 'ava';
import { LocalCluster, type NodeRestartEvent } from '../../src/cluster/index.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';
import { leaked, processGone, resourceCounts, until } from '../helpers/cluster.ts';

const VICTIM = 1;

test.serial('a killed node is restarted; one stopped by the operator is not', async (t) => {
  t.timeout(60000);
  const baseline = resourceCounts();
  const { dir, cleanup } = tempDataDir();
  const lines: string[] = [];
  const cluster = await LocalCluster.start({
    dataDir: dir,
    layout: { nodes: 3, devicesPerNode: 1, deviceBytes: 16 << 20, partitionsPerDevice: 2, replicas: 2, volumeBytes: 0 },
    initiator: false,
    startTimeoutMs: 30000,
    supervise: true,
    onSupervisor: (line) => lines.push(line),
  });
  try {
    const events: NodeRestartEvent[] = [];
    cluster.events.on('restart', (e: NodeRestartEvent) => events.push(e));
    const oldPid = cluster.pidOf(VICTIM)!;
    t.truthy(oldPid);
    t.is(cluster.restarts(VICTIM), 0);

    const killedAt = Date.now();
    process.kill(oldPid, 'SIGKILL');
    t.true(await until(() => cluster.restarts(VICTIM) === 1, 20000), `not restarted; supervisor said: ${JSON.stringify(lines)}`);
    const newPid = cluster.pidOf(VICTIM);
    t.log(`node ${VICTIM} restarted ${Date.now() - killedAt} ms after kill -9 (pid ${oldPid} -> ${newPid})`);
    t.true(processGone(oldPid), 'the killed process is gone');
    t.truthy(newPid);
    t.not(newPid, oldPid);
    t.false(processGone(newPid!), 'the new process is alive');
    t.deepEqual(cluster.runningNodes(), [0, 1, 2]);
    t.deepEqual(events, [{ node: VICTIM, restarts: 1 }]);
    t.deepEqual(lines, [
      `node ${VICTIM} exited (signal SIGKILL); restarting in 0.5 s (restart 1)`,
      `node ${VICTIM} restarted (restart 1)`,
    ]);
    t.true(Date.now() - killedAt >= 500, 'waited the first backoff');

    // An operator's stop is final: nothing restarts it, even well past the next backoff (1 s).
    await cluster.stopNode(VICTIM, 'SIGKILL');
    t.true(processGone(newPid!));
    t.false(await until(() => cluster.restarts(VICTIM) === 2 || cluster.pidOf(VICTIM) !== undefined, 1500), 'restarted after stopNode()');
    t.deepEqual(cluster.runningNodes(), [0, 2]);
    t.is(lines.length, 2, `no supervisor line after stopNode(): ${JSON.stringify(lines)}`);
  } finally {
    const pids = cluster.runningNodes().map((n) => cluster.pidOf(n)!);
    await cluster.stop();
    t.deepEqual(pids.filter((p) => !processGone(p)), [], 'processes still running after stop()');
    cleanup();
  }
  // Child-process handles close a moment after 'exit'; give them a few ticks.
  await until(() => leaked(baseline, resourceCounts()).length === 0, 1000);
  t.deepEqual(leaked(baseline, resourceCounts()), [], 'handles or timers left in this process');
});

test.serial('stop() cancels a pending restart', async (t) => {
  t.timeout(60000);
  const baseline = resourceCounts();
  const { dir, cleanup } = tempDataDir();
  const lines: string[] = [];
  const cluster = await LocalCluster.start({
    dataDir: dir,
    layout: { nodes: 2, devicesPerNode: 1, deviceBytes: 16 << 20, partitionsPerDevice: 2, replicas: 2, volumeBytes: 0 },
    initiator: false,
    supervise: true,
    onSupervisor: (line) => lines.push(line),
  });
  try {
    process.kill(cluster.pidOf(0)!, 'SIGKILL');
    t.true(await until(() => lines.length === 1, 5000), 'no supervisor line after kill -9');
    t.regex(lines[0], /^node 0 exited \(signal SIGKILL\); restarting in 0\.5 s \(restart 1\)$/);
  } finally {
    await cluster.stop(); // within the 500 ms backoff: the restart must not happen
    cleanup();
  }
  // Checked at once: a restart timer left pending would still be there now.
  t.true((resourceCounts().Timeout ?? 0) <= (baseline.Timeout ?? 0), 'a timer is left after stop()');
  t.false(await until(() => cluster.restarts(0) > 0 || cluster.pidOf(0) !== undefined, 1000), 'restarted after stop()');
  t.is(lines.length, 1);
  await until(() => leaked(baseline, resourceCounts()).length === 0, 1000);
  t.deepEqual(leaked(baseline, resourceCounts()), [], 'handles or timers left in this process (the restart timer?)');
});
