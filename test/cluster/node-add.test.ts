/**
 * Growing a running cluster: LocalCluster.addNode() adds a node to the map (new epoch, its
 * partitions in the topology) and runs it, and a restart on the same data directory runs it
 * again; `cairn node add` against a running `cairn up` gets the node started by that `cairn up`;
 * `cairn node add --no-start` + `cairn node start --join` runs a node from another data
 * directory (as on another machine); with no running cluster `cairn node add` fails in one line.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ApiClient } from '../../src/api/client.ts';
import { LocalCluster } from '../../src/cluster/index.ts';
import type { ClusterMap } from '../../src/clustermap/index.ts';
import { decodePartitionLeafId } from '../../placement/index.ts';
import { CAIRN, cairnUp, tempDataDir } from '../helpers/cairn-up.ts';
import { processGone, until } from '../helpers/cluster.ts';
import { slowSerial } from '../helpers/slow.ts';

const LAYOUT = { nodes: 3, devicesPerNode: 1, deviceBytes: 16 << 20, partitionsPerDevice: 2, replicas: 2, volumeBytes: 0 };

/** Runs `cairn ARGS` to completion: exit code and output. */
function cairn(args: string[], timeoutMs = 90000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CAIRN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

type MapReply = Pick<ClusterMap, 'epoch' | 'nodes' | 'topology'>;

/** Polls `GET /v1/map` until `cond` holds (resolves the map) or `timeoutMs` passes (the last map). */
async function mapWhen(api: ApiClient, cond: (m: MapReply) => boolean, timeoutMs: number): Promise<MapReply | null> {
  const end = Date.now() + timeoutMs;
  let last: MapReply | null = null;
  while (Date.now() < end) {
    last = await api.call<MapReply>('GET', '/v1/map').catch(() => last);
    if (last && cond(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  return last;
}

function authorityApi(cluster: LocalCluster): ApiClient {
  const a = cluster.config.nodes.find((n) => n.id === cluster.config.authority!.node)!;
  return new ApiClient(`http://${a.host}:${a.apiPort}`, cluster.config.token);
}

const allUp = (m: MapReply, ids: number[]): boolean => ids.every((id) => m.nodes.find((n) => n.id === id)?.up === true);

test.serial('LocalCluster.addNode: a 4th node joins the map, up, with its partitions; a restart runs it again', async (t) => {
  t.timeout(120000);
  const { dir, cleanup } = tempDataDir();
  let cluster = await LocalCluster.start({ dataDir: dir, layout: LAYOUT, startTimeoutMs: 30000 });
  const pids: number[] = [];
  try {
    const api = authorityApi(cluster);
    const before = await api.call<MapReply>('GET', '/v1/map');
    t.is(before.nodes.length, 3);
    const started = Date.now();
    const id = await cluster.addNode();
    t.log(`addNode() -> node ${id} in ${Date.now() - started} ms`);
    t.is(id, 3);
    const after = await api.call<MapReply>('GET', '/v1/map');
    t.true(after.epoch > before.epoch, `epoch ${before.epoch} -> ${after.epoch}`);
    t.deepEqual(after.nodes.map((n) => n.id), [0, 1, 2, 3]);
    const added = after.nodes.find((n) => n.id === 3)!;
    t.true(added.up && added.in);
    t.is(added.devices.length, 1, 'node 0\'s device count');
    t.deepEqual(added.devices.map((d) => [d.path, d.sizeBytes, d.partitions]), [['node3/dev0.img', 16 << 20, 2]]);
    t.is(after.topology.leaves.filter((l) => decodePartitionLeafId(l.id).host === 3).length, 2, 'its 2 partitions are leaves of the topology');
    t.is(statSync(join(dir, 'node3', 'dev0.img')).size, 16 << 20);
    t.true(cluster.runningNodes().includes(3));
    t.deepEqual(cluster.nodeIds(), [0, 1, 2, 3]);
    t.is(cluster.view.map.nodes.length, 4, 'the initiator holds the new map');
    // cluster.json keeps the creation node list.
    t.is(cluster.config.nodes.length, 3);

    pids.push(...cluster.runningNodes().map((n) => cluster.pidOf(n)!));
    await cluster.stop();
    t.deepEqual(pids.filter((p) => !processGone(p)), [], 'node processes left after stop()');

    cluster = await LocalCluster.start({ dataDir: dir, startTimeoutMs: 30000 });
    t.false(cluster.created);
    t.deepEqual(cluster.runningNodes(), [0, 1, 2, 3], 'the restart runs the added node too');
    const again = await mapWhen(authorityApi(cluster), (m) => m.nodes.length === 4 && allUp(m, [0, 1, 2, 3]), 20000);
    t.truthy(again && allUp(again, [0, 1, 2, 3]), `after restart: ${JSON.stringify(again?.nodes.map((n) => [n.id, n.up]))}`);
  } finally {
    const running = cluster.runningNodes().map((n) => cluster.pidOf(n)!);
    await cluster.stop();
    t.deepEqual(running.filter((p) => !processGone(p)), [], 'node processes left after the final stop()');
    cleanup();
  }
});

test.serial('cairn node add: the running cairn up starts the node; node list shows it up; no cluster -> one line, exit 1', async (t) => {
  t.timeout(120000);
  const { dir, cleanup } = tempDataDir();
  const up = await cairnUp(dir, ['--nodes', '3', '--devices', '1', '--device-size', '16MiB', '--partitions', '2', '--replicas', '2', '--volume-size', '16MiB', '--nvmf-paths', '0']);
  let node3Pid = 0;
  try {
    const started = Date.now();
    const add = await cairn(['node', 'add', '--data-dir', dir, '--timeout', '45']);
    t.log(`cairn node add: exit ${add.code} in ${Date.now() - started} ms\n${add.stdout}${add.stderr}`);
    t.is(add.code, 0, add.stderr);
    t.regex(add.stdout, /Node 3 is up \(map epoch \d+\): data 127\.0\.0\.1:\d+, gossip 127\.0\.0\.1:\d+, API http:\/\/127\.0\.0\.1:\d+/);
    t.regex(up.output(), /node 3 joined the map: starting it/);
    node3Pid = up.nodePid(3);
    t.false(processGone(node3Pid));

    const list = await cairn(['node', 'list', '--data-dir', dir, '--json']);
    t.is(list.code, 0, list.stderr);
    const nodes = (JSON.parse(list.stdout) as { nodes: Array<{ id: number; up: boolean }> }).nodes;
    t.deepEqual(nodes.map((n) => [n.id, n.up]), [[0, true], [1, true], [2, true], [3, true]]);
  } finally {
    t.is(await up.stop('SIGINT'), 0, up.output());
  }
  try {
    t.true(node3Pid > 0 && processGone(node3Pid), 'the added node stops with cairn up');
    const none = await cairn(['node', 'add', '--data-dir', dir, '--timeout', '5']);
    t.not(none.code, 0);
    t.is(none.stdout, '');
    t.is(none.stderr.trim().split('\n').length, 1, none.stderr);
    t.regex(none.stderr, /^cairn node add: no running cluster: /);
    t.false(existsSync(join(dir, 'node4')), 'no device files left behind');
  } finally {
    cleanup();
  }
});

slowSerial('a node from another data directory joins: cairn node add --no-start, then cairn node start --join', async (t) => {
  t.timeout(120000);
  const { dir, cleanup } = tempDataDir();
  const other = tempDataDir();
  const cluster = await LocalCluster.start({ dataDir: dir, layout: LAYOUT, initiator: false, startTimeoutMs: 30000 });
  let node: ChildProcess | null = null;
  try {
    const api = authorityApi(cluster);
    const url = api.baseUrl;
    // "Another machine": an empty data directory holding only a copy of cluster.json.
    copyFileSync(join(dir, 'cluster.json'), join(other.dir, 'cluster.json'));
    const add = await cairn(['node', 'add', '--data-dir', other.dir, '--api', url, '--token', cluster.config.token, '--no-start', '--devices', '2', '--device-size', '8MiB']);
    t.is(add.code, 0, add.stderr);
    t.regex(add.stdout, new RegExp(`cairn node start --data-dir DIR --node 3 --join ${url.replace(/[.]/g, '\\.')}`));
    t.false(existsSync(join(other.dir, 'node3')), '--no-start writes nothing');
    const added = await api.call<MapReply>('GET', '/v1/map');
    t.false(added.nodes.find((n) => n.id === 3)!.up, 'down until it starts');

    node = spawn(process.execPath, [CAIRN, 'node', 'start', '--data-dir', other.dir, '--node', '3', '--join', url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    node.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    node.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => node!.once('exit', (code) => r(code)));
    const m = await mapWhen(api, (x) => allUp(x, [3]), 45000);
    t.truthy(m && allUp(m, [3]), `node 3 not up; its output:\n${out}`);
    t.true(await until(() => /cairn-node 3 ready on/.test(out), 30000), `node 3 not ready; its output:\n${out}`);
    const daemon = Number(readFileSync(join(other.dir, 'run', 'node3.pid'), 'utf8'));
    t.true(statSync(join(other.dir, 'node3', 'dev1.img')).size === 8 << 20, 'its device files are in its own data directory');
    // The map is saved in the background once accepted (MapKeeper.persist), so it may land just after 'ready'.
    t.true(await until(() => existsSync(join(other.dir, 'node3', 'map.current')), 10000), 'it keeps the map: a restart needs no --join');
    t.deepEqual(cluster.runningNodes(), [0, 1, 2], 'the LocalCluster did not start it');
    node.kill('SIGINT');
    t.is(await exited, 0, out);
    node = null;
    t.true(processGone(daemon), 'the node daemon stopped with the command');
  } finally {
    if (node) {
      node.kill('SIGKILL');
      // The node daemon is the command's child: it stops when its parent goes; make sure.
      const pidFile = join(other.dir, 'run', 'node3.pid');
      const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0;
      if (pid && !processGone(pid)) {
        process.kill(pid, 'SIGKILL');
        await until(() => processGone(pid), 5000);
      }
    }
    await cluster.stop();
    cleanup();
    other.cleanup();
  }
});
