/**
 * CPU cost of Cairn's metrics per request, measured in this process: a 4 KiB read through
 * the gateway's metered device (VolumeIoMetrics.meter) over a device that answers at once,
 * next to the same device unmetered; and the node's per-request recording (NodeMetrics
 * request() + hostWrite()). Microseconds per request, medians of 5 rounds of 100,000.
 */
import { median } from 'simple-statistics';
import { VolumeIoMetrics, createRegistry, registerNodeMetrics } from '../../src/metrics/index.ts';
import type { BlockDevice } from '../../src/volume/index.ts';

/** Per-request costs in µs (see the module comment). */
export interface MetricsCost {
  /** One read through an unmetered null device. */
  rawReadUs: number;
  /** The same read through the metered device. */
  meteredReadUs: number;
  /** meteredReadUs − rawReadUs: what the gateway adds per request. */
  gatewayUs: number;
  /** What a node adds per data-path request (a write: request() and hostWrite()). */
  nodeUs: number;
}

/** Measures MetricsCost (about a second). */
export async function metricsCost(rounds = 5, n = 100000): Promise<MetricsCost> {
  const page = Buffer.alloc(4096);
  const raw: BlockDevice = {
    size: 1 << 30, blockSize: 4096, read: async () => page, write: async () => undefined, flush: async () => undefined,
    trim: async () => undefined, writeZeroes: async () => undefined,
  };
  const metered = new VolumeIoMetrics(createRegistry({ defaults: false })).meter(raw, 'vol0', 'nbd');
  const node = registerNodeMetrics(createRegistry({ defaults: false }), {
    partitions: () => [], fsyncs: () => 0, syncIo: () => ({ reads: { calls: 0, backoffs: 0 }, writes: { calls: 0, backoffs: 0 } }), connections: () => ({ in: 0, out: 0 }), epoch: () => 1,
    nodes: () => ({ up: 3, down: 0, in: 3, out: 0 }), recovery: () => [], staleExtents: () => 0, degradedExtents: () => 0,
  });
  const time = async (f: (i: number) => Promise<unknown> | void): Promise<number> => {
    const out: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await f(i);
      out.push(((performance.now() - t0) * 1000) / n);
    }
    return median(out);
  };
  const rawReadUs = await time((i) => raw.read((i * 4096) % (1 << 30), 4096));
  const meteredReadUs = await time((i) => metered.read((i * 4096) % (1 << 30), 4096));
  const nodeUs = await time(() => {
    node.request('Write', 'Ok', 0.0001);
    node.hostWrite('replica', 4096);
  });
  const r2 = (x: number): number => Math.round(x * 100) / 100;
  return { rawReadUs: r2(rawReadUs), meteredReadUs: r2(meteredReadUs), gatewayUs: r2(meteredReadUs - rawReadUs), nodeUs: r2(nodeUs) };
}
