/**
 * Mirrored histograms (src/metrics/tally.ts): the exposition of a family counted into
 * HistogramCells equals, line for line, prom-client's own Histogram fed the same
 * observations — values on the bounds, above every bound, several series — in the text
 * format and in getMetricsAsJSON; and the per-volume and node families count what happened.
 */
import test, { type ExecutionContext } from 'ava';
import { Histogram } from 'prom-client';
import { HistogramCells, VolumeIoMetrics, createRegistry, mirroredHistogram, registerNodeMetrics } from '../../src/metrics/index.ts';
import { BlockDeviceError, type BlockDevice } from '../../src/volume/index.ts';

const BOUNDS = [0.001, 0.01, 0.1, 1];

/** The lines of `text` that belong to family `name`, HELP/TYPE lines left out, sorted. */
function lines(text: string, name: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(name)).sort();
}

test('a mirrored histogram prints what prom-client prints for the same observations', async (t) => {
  const registry = createRegistry({ defaults: false });
  const reference = new Histogram({ name: 'ref_seconds', help: 'h', labelNames: ['op'], buckets: BOUNDS, registers: [registry] });
  const cells = new Map<string, HistogramCells>();
  mirroredHistogram(registry, 'mir_seconds', 'h', ['op'], BOUNDS, () => [...cells].map(([op, c]) => ({ labels: { op }, cells: c })));
  // Values on every bound, between bounds, at 0 and above the last bound, in two series.
  const values = [0, 0.0005, 0.001, 0.002, 0.01, 0.05, 0.1, 0.5, 1, 2, 30, 0.001, 0.1];
  for (const [i, v] of values.entries()) {
    const op = i % 3 === 0 ? 'write' : 'read';
    reference.observe({ op }, v);
    if (!cells.has(op)) cells.set(op, new HistogramCells(BOUNDS));
    cells.get(op)!.observe(v);
  }
  const text = await registry.metrics();
  const ref = lines(text, 'ref_seconds').map((l) => l.replace('ref_seconds', 'mir_seconds'));
  const mir = lines(text, 'mir_seconds');
  t.is(mir.length, 2 * (BOUNDS.length + 3));
  t.deepEqual(mir.map(normalize), ref.map(normalize));
  t.true(mir.includes('mir_seconds_bucket{le="+Inf",op="read"} 8') || mir.includes('mir_seconds_bucket{op="read",le="+Inf"} 8'), mir.join('\n'));
  const json = await registry.getMetricsAsJSON();
  const jm = json.find((m) => m.name === 'mir_seconds')!;
  const jr = json.find((m) => m.name === 'ref_seconds')!;
  t.is(String(jm.type), 'histogram');
  const key = (v: { labels: object; value: number; metricName?: string }): string => `${v.metricName?.replace('ref_', 'mir_')} ${JSON.stringify(Object.entries(v.labels).sort())} ${v.value}`;
  t.deepEqual(jm.values.map(key).sort(), jr.values.map(key).sort());
});

/** An assertion that `text` holds sample `line` (labels in any order). */
function hasLine(t: ExecutionContext, text: string): (line: string) => void {
  return (line) => {
    t.true(lines(text, line.split('{')[0]).map(normalize).includes(normalize(line)), `${line}\n${text}`);
  };
}

/** A sample line with its labels sorted, so that label order does not matter. */
function normalize(line: string): string {
  const m = /^(\w+)\{(.*)\} (.+)$/.exec(line);
  if (!m) return line;
  return `${m[1]}{${m[2].split(',').sort().join(',')}} ${m[3]}`;
}

test('the per-volume families count per (volume, frontend, op), errors by code, and forget a deleted volume', async (t) => {
  const registry = createRegistry({ defaults: false });
  const m = new VolumeIoMetrics(registry);
  let fail = false;
  const dev: BlockDevice = {
    size: 1 << 20, blockSize: 4096,
    read: async (_o, n) => {
      if (fail) throw new BlockDeviceError('ENOSPC', 'full');
      return Buffer.alloc(n);
    },
    write: async () => undefined, flush: async () => undefined, trim: async () => undefined, writeZeroes: async () => undefined,
  };
  const a = m.meter(dev, 'a', 'nbd');
  const a2 = m.meter(dev, 'a', 'nbd');
  const b = m.meter(dev, 'b', 'nvmf');
  await a.read(0, 4096);
  await a2.read(0, 8192);
  await b.write(0, Buffer.alloc(512));
  fail = true;
  await t.throwsAsync(b.read(0, 4096));
  const text = await registry.metrics();
  const has = hasLine(t, text);
  has('cairn_volume_requests_total{volume="a",frontend="nbd",op="read"} 2');
  has('cairn_volume_bytes_total{volume="a",frontend="nbd",op="read"} 12288');
  has('cairn_volume_bytes_total{volume="b",frontend="nvmf",op="write"} 512');
  has('cairn_volume_errors_total{volume="b",frontend="nvmf",op="read",code="ENOSPC"} 1');
  has('cairn_volume_request_duration_seconds_count{volume="b",frontend="nvmf",op="read"} 1');
  t.false(text.includes('op="flush"'), 'no series before a request');
  t.false(/cairn_volume_bytes_total\{[^}]*volume="b"[^}]*op="read"/.test(text), 'a failed read moves no bytes');
  m.forget('b');
  const after = await registry.metrics();
  t.false(after.includes('volume="b"'), 'a deleted volume\'s series go, errors too');
  t.true(after.includes('volume="a"'));
});

test('a node counts requests by op and status, their latency, and write bytes by role', async (t) => {
  const registry = createRegistry({ defaults: false });
  const node = registerNodeMetrics(registry, {
    partitions: () => [], fsyncs: () => 0, syncIo: () => ({ reads: { calls: 0, backoffs: 0 }, writes: { calls: 0, backoffs: 0 } }), connections: () => ({ in: 0, out: 0 }), epoch: () => 1,
    nodes: () => ({ up: 3, down: 0, in: 3, out: 0 }), recovery: () => [], staleExtents: () => 0, degradedExtents: () => 0,
  });
  node.request('Read', 'Ok', 0.00002);
  node.request('Read', 'Ok', 0.0003);
  node.request('Read', 'Stale', 20);
  node.request('Write', 'Ok', 0.001);
  node.hostWrite('replica', 4096);
  node.hostWrite('replica', 4096);
  const text = await registry.metrics();
  const has = hasLine(t, text);
  has('cairn_node_requests_total{op="Read",status="Ok"} 2');
  has('cairn_node_requests_total{op="Read",status="Stale"} 1');
  has('cairn_node_request_duration_seconds_bucket{le="0.000025",op="Read"} 1');
  has('cairn_node_request_duration_seconds_bucket{le="0.0005",op="Read"} 2');
  has('cairn_node_request_duration_seconds_bucket{le="10",op="Read"} 2');
  has('cairn_node_request_duration_seconds_bucket{le="+Inf",op="Read"} 3');
  has('cairn_node_request_duration_seconds_count{op="Write"} 1');
  has('cairn_node_host_write_bytes_total{role="replica"} 8192');
  t.false(text.includes('role="primary"'), 'no primary bytes, no series');
});
