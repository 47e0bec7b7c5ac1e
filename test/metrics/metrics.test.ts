/**
 * Prometheus metrics (issue 13): the per-volume families counted by the frontend wrapper
 * (unit, over a real file device), and through the real `cairn up`: the gateway's and a
 * node's /metrics behind the token, accepted by `promtool check metrics` (Debian's
 * prometheus package), with the gateway's per-volume request counts equal to fio's own
 * counts (within 1 %) and the nodes' primary write bytes equal to what fio wrote.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileBlockDevice, BlockDeviceError } from '../../src/volume/index.ts';
import { VolumeIoMetrics, createRegistry } from '../../src/metrics/index.ts';
import { cairnUp, tempDataDir, type Up } from '../helpers/cairn-up.ts';
import { have, run } from '../helpers/tools.ts';

const MIB = 1 << 20;

/** The value of one sample `name{labels}` in a text exposition (labels in any order), or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[3] ?? '').matchAll(/([a-zA-Z_]+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[4]);
  }
  return undefined;
}

/** Sum of every sample of `name` whose labels include `labels`. */
function total(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[3] ?? '').matchAll(/([a-zA-Z_]+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) sum += Number(m[4]);
  }
  return sum;
}

/** `promtool check metrics` on `text`: its exit code and what it said. */
function promtool(text: string): { code: number | null; out: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

test('the frontend wrapper counts requests, bytes, errors and latency per volume; promtool accepts the text', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-metrics-'));
  try {
    const dev = await FileBlockDevice.open(join(dir, 'v.img'), { size: 8 * MIB });
    const registry = createRegistry();
    const m = new VolumeIoMetrics(registry);
    const d = m.meter(dev, 'v1', 'nbd');
    for (let i = 0; i < 10; i++) await d.write(i * 4096, Buffer.alloc(8192, i));
    for (let i = 0; i < 5; i++) await d.read(i * 4096, 4096);
    await d.flush();
    const e = await t.throwsAsync(d.read(8 * MIB, 4096));
    t.true(e instanceof BlockDeviceError);
    const text = await registry.metrics();
    t.is(sample(text, 'cairn_volume_requests_total', { volume: 'v1', frontend: 'nbd', op: 'write' }), 10);
    t.is(sample(text, 'cairn_volume_requests_total', { volume: 'v1', frontend: 'nbd', op: 'read' }), 6, 'five reads and the failed one');
    t.is(sample(text, 'cairn_volume_bytes_total', { volume: 'v1', frontend: 'nbd', op: 'write' }), 10 * 8192);
    t.is(sample(text, 'cairn_volume_bytes_total', { volume: 'v1', frontend: 'nbd', op: 'read' }), 5 * 4096, 'a failed read moves no bytes');
    t.is(sample(text, 'cairn_volume_errors_total', { volume: 'v1', frontend: 'nbd', op: 'read', code: 'EINVAL' }), 1);
    t.is(sample(text, 'cairn_volume_request_duration_seconds_count', { volume: 'v1', frontend: 'nbd', op: 'write' }), 10);
    t.is(sample(text, 'cairn_volume_requests_total', { volume: 'v1', frontend: 'nbd', op: 'flush' }), 1);
    t.truthy(sample(text, 'process_cpu_seconds_total'), 'process metrics are in');
    if (!(await have('promtool'))) return t.fail('promtool is required (apt-get install --no-install-recommends prometheus)');
    const p = promtool(text);
    t.is(p.code, 0, p.out);
    t.is(p.out, '', 'promtool has nothing to say');
    m.forget('v1');
    t.is(sample(await registry.metrics(), 'cairn_volume_requests_total', { volume: 'v1', frontend: 'nbd', op: 'write' }), undefined, 'a deleted volume\'s series go');
    await dev.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.serial('cairn up: gateway and node /metrics behind the token, promtool-clean, per-volume counts equal fio\'s', async (t) => {
  if (!(await have('fio')) || !(await have('promtool'))) return t.fail('fio and promtool are required (apt-get install fio; apt-get install --no-install-recommends prometheus)');
  const d = tempDataDir();
  let up: Up | null = null;
  try {
    up = await cairnUp(d.dir, ['--nodes', '3', '--devices', '1', '--device-size', '512MiB', '--partitions', '2', '--volume-size', '64MiB', '--nvmf-paths', '1'], 120000);
    const u = up;
    const config = JSON.parse(readFileSync(join(d.dir, 'cluster.json'), 'utf8')) as { token: string; nodes: Array<{ id: number; host: string; apiPort: number }> };
    const end = Date.now() + 10000;
    let gw: RegExpExecArray | null = null;
    while (!(gw = /gateway (http:\/\/\S+\/metrics)/.exec(u.output())) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    t.truthy(gw, `cairn up prints the gateway's metrics URL:\n${u.output()}`);
    const get = async (url: string, token?: string): Promise<{ status: number; type: string; text: string }> => {
      const r = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
      return { status: r.status, type: r.headers.get('content-type') ?? '', text: await r.text() };
    };
    const gwUrl = gw![1];
    const nodeUrls = config.nodes.map((n) => `http://${n.host}:${n.apiPort}/metrics`);
    t.is((await get(gwUrl)).status, 401, 'the gateway: no token, 401');
    t.is((await get(gwUrl, 'wrong')).status, 401, 'the gateway: a wrong token, 401');
    t.is((await get(nodeUrls[0])).status, 401, 'a node: no token, 401');

    const before = await get(gwUrl, config.token);
    t.is(before.status, 200);
    t.regex(before.type, /^text\/plain; version=0\.0\.4/);
    const nodesBefore = await Promise.all(nodeUrls.map((url) => get(url, config.token).then((r) => r.text)));
    // fio through NBD: 16 MiB of 4 KiB random writes (each block once: 4096 writes), then reads.
    const fio = async (rw: string): Promise<{ ios: number; bytes: number }> => {
      const r = await run('fio', ['--name=m', '--ioengine=nbd', `--uri=${u.uri}`, `--rw=${rw}`, '--bs=4k', '--iodepth=16', '--size=16m', '--output-format=json'], 180000);
      t.is(r.code, 0, r.stderr.slice(-800));
      const job = (JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as { jobs: Array<Record<'read' | 'write', { total_ios: number; io_bytes: number }>> }).jobs[0];
      const side = rw.includes('read') ? job.read : job.write;
      return { ios: side.total_ios, bytes: side.io_bytes };
    };
    const w = await fio('randwrite');
    const r = await fio('randread');
    const after = await get(gwUrl, config.token);
    const delta = (op: string): number => total(after.text, 'cairn_volume_requests_total', { volume: 'vol0', frontend: 'nbd', op }) - total(before.text, 'cairn_volume_requests_total', { volume: 'vol0', frontend: 'nbd', op });
    const writes = delta('write');
    const reads = delta('read');
    t.log(`fio: ${w.ios} writes, ${r.ios} reads; gateway counted ${writes} writes, ${reads} reads on vol0/nbd`);
    t.true(w.ios > 0 && Math.abs(writes - w.ios) <= w.ios * 0.01, `writes ${writes} vs fio ${w.ios}`);
    t.true(r.ios > 0 && Math.abs(reads - r.ios) <= r.ios * 0.01, `reads ${reads} vs fio ${r.ios}`);
    t.is(total(after.text, 'cairn_volume_bytes_total', { volume: 'vol0', frontend: 'nbd', op: 'write' }) - total(before.text, 'cairn_volume_bytes_total', { volume: 'vol0', frontend: 'nbd', op: 'write' }), w.bytes, 'write bytes equal fio\'s');
    t.true((sample(after.text, 'cairn_volume_request_duration_seconds_count', { volume: 'vol0', frontend: 'nbd', op: 'read' }) ?? 0) >= r.ios, 'every read is in the latency histogram');
    const g = promtool(after.text);
    t.is(g.code, 0, `promtool on the gateway's metrics: ${g.out}`);

    const nodesAfter = await Promise.all(nodeUrls.map((url) => get(url, config.token).then((x) => x.text)));
    for (const [i, text] of nodesAfter.entries()) {
      const p = promtool(text);
      t.is(p.code, 0, `promtool on node ${i}'s metrics: ${p.out}`);
      for (const family of ['cairn_node_requests_total', 'cairn_partition_appended_bytes_total', 'cairn_partition_write_amplification_ratio', 'cairn_partition_live_bytes', 'cairn_partition_free_bytes',
        'cairn_partition_cleaner_segments_total', 'cairn_node_fsyncs_total', 'cairn_node_sync_io_total', 'cairn_node_sync_io_backoffs_total', 'cairn_node_connections', 'cairn_map_epoch', 'cairn_map_nodes', 'cairn_recovery_bytes_remaining', 'cairn_degraded_extents', 'process_cpu_seconds_total']) {
        t.true(text.includes(`\n${family}`), `node ${i} has ${family}`);
      }
      t.is(sample(text, 'cairn_map_nodes', { state: 'up' }), 3, `node ${i} sees 3 nodes up`);
      t.true((sample(text, 'cairn_node_requests_total', { op: 'Write', status: 'Ok' }) ?? 0) > 0, `node ${i} counted host writes`);
    }
    // Each write reaches its extent's three members; exactly one of them is its primary.
    const primary = nodesAfter.reduce((s, x) => s + total(x, 'cairn_node_host_write_bytes_total', { role: 'primary' }), 0)
      - nodesBefore.reduce((s, x) => s + total(x, 'cairn_node_host_write_bytes_total', { role: 'primary' }), 0);
    const replica = nodesAfter.reduce((s, x) => s + total(x, 'cairn_node_host_write_bytes_total', { role: 'replica' }), 0)
      - nodesBefore.reduce((s, x) => s + total(x, 'cairn_node_host_write_bytes_total', { role: 'replica' }), 0);
    t.log(`nodes applied ${primary} primary and ${replica} replica write bytes for fio's ${w.bytes}`);
    // GET /v1/io sums the nodes' per-volume counts: each host request once (the dashboard's source).
    const auth = { authorization: `Bearer ${config.token}` };
    const vol0 = (await (await fetch(`http://${config.nodes[1].host}:${config.nodes[1].apiPort}/v1/volumes/vol0`, { headers: auth })).json()) as { id: number };
    const io = (await (await fetch(`http://${config.nodes[1].host}:${config.nodes[1].apiPort}/v1/io`, { headers: auth })).json()) as { volumes: Array<{ volume: number; reads: number; writes: number; writeBytes: number }>; unreachable: number[] };
    const v = io.volumes.find((x) => x.volume === vol0.id)!;
    t.deepEqual(io.unreachable, []);
    t.log(`GET /v1/io: vol0 ${v.writes} writes, ${v.reads} reads over the nodes`);
    t.true(v.writes >= w.ios && v.writes <= w.ios * 1.01 + 64, `cluster-wide writes of vol0 ${v.writes} vs fio ${w.ios} (plus the cluster's own start-up writes)`);
    t.true(v.reads >= r.ios, `cluster-wide reads of vol0 ${v.reads} ≥ fio ${r.ios}`);
    t.true(Math.abs(primary - w.bytes) <= w.bytes * 0.01, `primary bytes ${primary} vs fio ${w.bytes}`);
    t.true(Math.abs(replica - 2 * w.bytes) <= w.bytes * 0.02, `replica bytes ${replica} vs 2 × fio ${w.bytes}`);
  } finally {
    await up?.stop();
    d.cleanup();
  }
});
