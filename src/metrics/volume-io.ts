/**
 * Per-volume I/O figures from the frontend's point of view (NBD, NVMe/TCP): operations,
 * bytes, errors and latency of every request a frontend hands to a volume's BlockDevice.
 * `meter()` wraps the device a frontend serves, so one client request is one count (the
 * frontends call the device once per NBD request or NVMe command).
 */
import type { Registry } from 'prom-client';
import { mirroredCounter } from './registry.ts';
import { HistogramCells, mirroredHistogram } from './tally.ts';
import { BlockDeviceError, ForwardingDevice, type BlockDevice, type BlockExtent } from '../volume/index.ts';

/** The frontend a request came through. */
export type Frontend = 'nbd' | 'nvmf';

/** The operations counted: BlockDevice's methods, in snake case. */
export type VolumeOp = 'read' | 'write' | 'flush' | 'trim' | 'write_zeroes' | 'block_status';

/**
 * Latency buckets, seconds: 25 µs to 10 s, about 2.5× apart (a loopback 4 KiB read is ~0.1 ms,
 * a replicated fsync'd write ~1 ms, a request waiting out a member ~seconds).
 */
export const LATENCY_BUCKETS = [25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5, 5, 10];

/** One operation's figures in one series (volume, frontend): see VolumeIoMetrics. */
interface OpTally {
  /** Requests completed, ok or not. */
  requests: number;
  /** Bytes moved by successful requests. */
  bytes: number;
  /** Failed requests by BlockDevice error code. */
  errors: Map<string, number>;
  /** Seconds from the frontend's call to the device's answer. */
  latency: HistogramCells;
}

const OPS: readonly VolumeOp[] = ['read', 'write', 'flush', 'trim', 'write_zeroes', 'block_status'];

/** The figures of one (volume, frontend), one OpTally per operation. */
interface SeriesTally {
  volume: string;
  frontend: Frontend;
  ops: Record<VolumeOp, OpTally>;
}

/**
 * The per-volume families of one process's registry; see the module comment. Requests are
 * counted into plain numbers per (volume, frontend, op) and mirrored into the exposition at
 * scrape time (src/metrics/tally.ts): no label hashing per request. A series appears once it
 * has counted something, as with prom-client's own families.
 */
export class VolumeIoMetrics {
  private readonly series = new Map<string, SeriesTally>();

  constructor(registry: Registry) {
    const labelNames = ['volume', 'frontend', 'op'] as const;
    const each = <T>(f: (s: SeriesTally, op: VolumeOp, t: OpTally) => T[]): T[] => [...this.series.values()].flatMap((s) => OPS.flatMap((op) => f(s, op, s.ops[op])));
    const labels = (s: SeriesTally, op: VolumeOp) => ({ volume: s.volume, frontend: s.frontend, op });
    mirroredCounter(registry, 'cairn_volume_requests_total', 'Requests a frontend handed to a volume, by operation (ok or failed).', labelNames, () =>
      each((s, op, t) => (t.requests ? [{ labels: labels(s, op), value: t.requests }] : [])));
    mirroredCounter(registry, 'cairn_volume_bytes_total', 'Bytes moved by successful requests: read, written, trimmed or zeroed.', labelNames, () =>
      each((s, op, t) => (t.bytes ? [{ labels: labels(s, op), value: t.bytes }] : [])));
    mirroredCounter(registry, 'cairn_volume_errors_total', 'Failed requests by error code (EIO, EFENCED, ENOSPC, ...).', [...labelNames, 'code'], () =>
      each((s, op, t) => [...t.errors].map(([code, value]) => ({ labels: { ...labels(s, op), code }, value }))));
    mirroredHistogram(registry, 'cairn_volume_request_duration_seconds', 'Request latency as the frontend sees it.', labelNames, LATENCY_BUCKETS, () =>
      each((s, op, t) => (t.latency.count ? [{ labels: labels(s, op), cells: t.latency }] : [])));
  }

  /** A BlockDevice that serves `device` and counts every call under (`volume`, `frontend`). */
  meter(device: BlockDevice, volume: string, frontend: Frontend): BlockDevice {
    const key = `${volume}\0${frontend}`;
    let s = this.series.get(key);
    if (!s) {
      const ops = Object.fromEntries(OPS.map((op) => [op, { requests: 0, bytes: 0, errors: new Map(), latency: new HistogramCells(LATENCY_BUCKETS) }])) as Record<VolumeOp, OpTally>;
      s = { volume, frontend, ops };
      this.series.set(key, s);
    }
    return new MeteredDevice(device, s.ops);
  }

  /** Forgets a volume's series (it was deleted): they leave the exposition. */
  forget(volume: string): void {
    for (const [key, s] of this.series) if (s.volume === volume) this.series.delete(key);
  }
}

/** See VolumeIoMetrics.meter. */
class MeteredDevice extends ForwardingDevice {
  constructor(inner: BlockDevice, private readonly ops: Record<VolumeOp, OpTally>) {
    super(inner);
  }

  override read(offset: number, length: number): Promise<Buffer> {
    return this.time(this.ops.read, length, () => this.inner.read(offset, length));
  }

  protected override intoOf(offset: number, into: Buffer): Promise<void> {
    return this.time(this.ops.read, into.length, () => super.intoOf(offset, into));
  }

  override write(offset: number, data: Buffer, fua?: boolean): Promise<void> {
    return this.time(this.ops.write, data.length, () => this.inner.write(offset, data, fua));
  }

  override flush(): Promise<void> {
    return this.time(this.ops.flush, 0, () => this.inner.flush());
  }

  override trim(offset: number, length: number): Promise<void> {
    return this.time(this.ops.trim, length, () => this.inner.trim(offset, length));
  }

  override writeZeroes(offset: number, length: number, fua?: boolean): Promise<void> {
    return this.time(this.ops.write_zeroes, length, () => this.inner.writeZeroes(offset, length, fua));
  }

  protected override statusOf(offset: number, length: number): Promise<BlockExtent[]> {
    return this.time(this.ops.block_status, 0, () => super.statusOf(offset, length));
  }

  private async time<T>(t: OpTally, bytes: number, run: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      const r = await run();
      t.bytes += bytes;
      return r;
    } catch (e) {
      const code = e instanceof BlockDeviceError ? e.code : 'EIO';
      t.errors.set(code, (t.errors.get(code) ?? 0) + 1);
      throw e;
    } finally {
      t.requests++;
      t.latency.observe((performance.now() - t0) / 1e3);
    }
  }
}
