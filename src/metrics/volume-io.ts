/**
 * Per-volume I/O figures from the frontend's point of view (NBD, NVMe/TCP): operations,
 * bytes, errors and latency of every request a frontend hands to a volume's BlockDevice.
 * `meter()` wraps the device a frontend serves, so one client request is one count (the
 * frontends call the device once per NBD request or NVMe command).
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import { BlockDeviceError, ForwardingDevice, type BlockDevice, type BlockExtent } from '../volume/index.ts';

/** The frontend a request came through. */
export type Frontend = 'nbd' | 'nvmf';

/** The operations counted: BlockDevice's methods, in snake case. */
export type VolumeOp = 'read' | 'write' | 'flush' | 'trim' | 'write_zeroes' | 'block_status';

type Labels = 'volume' | 'frontend' | 'op';

/**
 * Latency buckets, seconds: 25 µs to 10 s, about 2.5× apart (a loopback 4 KiB read is ~0.1 ms,
 * a replicated fsync'd write ~1 ms, a request waiting out a member ~seconds).
 */
export const LATENCY_BUCKETS = [25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5, 5, 10];

/** The per-volume families of one process's registry; see the module comment. */
export class VolumeIoMetrics {
  /** cairn_volume_requests_total{volume,frontend,op}: requests completed (ok or not). */
  readonly requests: Counter<Labels>;
  /** cairn_volume_bytes_total{volume,frontend,op}: bytes read, written, trimmed or zeroed by successful requests. */
  readonly bytes: Counter<Labels>;
  /** cairn_volume_errors_total{volume,frontend,op,code}: failed requests by BlockDevice error code. */
  readonly errors: Counter<Labels | 'code'>;
  /** cairn_volume_request_duration_seconds{volume,frontend,op}: time from the frontend's call to the device's answer. */
  readonly latency: Histogram<Labels>;

  constructor(registry: Registry) {
    const labelNames = ['volume', 'frontend', 'op'] as const;
    this.requests = new Counter({ name: 'cairn_volume_requests_total', help: 'Requests a frontend handed to a volume, by operation (ok or failed).', labelNames, registers: [registry] });
    this.bytes = new Counter({ name: 'cairn_volume_bytes_total', help: 'Bytes moved by successful requests: read, written, trimmed or zeroed.', labelNames, registers: [registry] });
    this.errors = new Counter({ name: 'cairn_volume_errors_total', help: 'Failed requests by error code (EIO, EFENCED, ENOSPC, ...).', labelNames: [...labelNames, 'code'], registers: [registry] });
    this.latency = new Histogram({ name: 'cairn_volume_request_duration_seconds', help: 'Request latency as the frontend sees it.', labelNames, buckets: LATENCY_BUCKETS, registers: [registry] });
  }

  /** A BlockDevice that serves `device` and counts every call under (`volume`, `frontend`). */
  meter(device: BlockDevice, volume: string, frontend: Frontend): BlockDevice {
    return new MeteredDevice(device, this, volume, frontend);
  }

  /** Forgets a volume's samples (it was deleted): its series leave the exposition. */
  forget(volume: string): void {
    for (const m of [this.requests, this.bytes, this.errors, this.latency] as Array<{ remove(l: Record<string, string>): void }>) {
      for (const frontend of ['nbd', 'nvmf']) {
        for (const op of ['read', 'write', 'flush', 'trim', 'write_zeroes', 'block_status']) {
          try {
            m.remove({ volume, frontend, op });
          } catch {
            // errors carries a code label too: those series stay until restart
          }
        }
      }
    }
  }
}

/** See VolumeIoMetrics.meter. */
class MeteredDevice extends ForwardingDevice {
  constructor(inner: BlockDevice, private readonly m: VolumeIoMetrics, private readonly volume: string, private readonly frontend: Frontend) {
    super(inner);
  }

  override read(offset: number, length: number): Promise<Buffer> {
    return this.time('read', length, () => this.inner.read(offset, length));
  }

  protected override intoOf(offset: number, into: Buffer): Promise<void> {
    return this.time('read', into.length, () => super.intoOf(offset, into));
  }

  override write(offset: number, data: Buffer, fua?: boolean): Promise<void> {
    return this.time('write', data.length, () => this.inner.write(offset, data, fua));
  }

  override flush(): Promise<void> {
    return this.time('flush', 0, () => this.inner.flush());
  }

  override trim(offset: number, length: number): Promise<void> {
    return this.time('trim', length, () => this.inner.trim(offset, length));
  }

  override writeZeroes(offset: number, length: number, fua?: boolean): Promise<void> {
    return this.time('write_zeroes', length, () => this.inner.writeZeroes(offset, length, fua));
  }

  protected override statusOf(offset: number, length: number): Promise<BlockExtent[]> {
    return this.time('block_status', 0, () => super.statusOf(offset, length));
  }

  private async time<T>(op: VolumeOp, bytes: number, run: () => Promise<T>): Promise<T> {
    const labels = { volume: this.volume, frontend: this.frontend, op };
    const t0 = process.hrtime.bigint();
    try {
      const r = await run();
      if (bytes) this.m.bytes.inc(labels, bytes);
      return r;
    } catch (e) {
      this.m.errors.inc({ ...labels, code: e instanceof BlockDeviceError ? e.code : 'EIO' });
      throw e;
    } finally {
      this.m.requests.inc(labels);
      this.m.latency.observe(labels, Number(process.hrtime.bigint() - t0) / 1e9);
    }
  }
}
