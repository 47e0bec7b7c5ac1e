/**
 * Per-request figures kept in plain numbers and read into the exposition at scrape time.
 *
 * prom-client checks and hashes the label set on every inc() and observe(), and its
 * labels() children do not keep the hash. On a gateway serving 4 KiB reads that came to
 * ~10 % of its busy time (a --cpu-prof of randread QD1). Hot paths instead hold a
 * HistogramCells (or a plain count) per label set, chosen once, and the family is mirrored
 * from those cells when /metrics is read: the same text format, the same names.
 */
import { Histogram, type Registry } from 'prom-client';

/**
 * One histogram series as plain numbers: per-bucket counts (not cumulative; the last cell
 * is +Inf), the sum and the count of observations. observe() is a bucket search and three
 * additions.
 */
export class HistogramCells {
  /** counts[i]: observations ≤ bounds[i] and > bounds[i-1]; counts[bounds.length]: above every bound. */
  readonly counts: Float64Array;
  /** Sum of the observed values (the family's unit, e.g. seconds). */
  sum = 0;
  /** Number of observations. */
  count = 0;

  /** @param bounds upper bounds of the buckets, ascending (the family's unit). */
  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Counts one observation of `value`. */
  observe(value: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }
}

/** One series of a mirrored histogram: its label values and its cells. */
export interface HistogramSeries<L extends string> {
  labels: Partial<Record<L, string | number>>;
  cells: HistogramCells;
}

/** One exposition sample as prom-client's registry formats it (lib/registry.js). */
interface ExportedValue {
  labels: Record<string, string | number>;
  sharedLabels: Record<string, string | number>;
  value: number;
  metricName: string;
}

/**
 * A histogram family whose series are read at scrape time from `read()` (cells every series
 * keeps for itself; see the module comment). Every cell's bounds must equal `buckets`. The
 * exposition is the standard one: `_bucket{le}` cumulative counts, `+Inf`, `_sum`, `_count`.
 */
class MirroredHistogram<L extends string> extends Histogram<L> {
  constructor(registry: Registry, private readonly family: string, private readonly helpText: string, labelNames: readonly L[], private readonly buckets: readonly number[], private readonly read: () => Array<HistogramSeries<L>>) {
    super({ name: family, help: helpText, labelNames, buckets: [...buckets], registers: [registry] });
  }

  /** What prom-client's registry formats (it prefers this to get()). */
  async getForPromString(): Promise<{ name: string; help: string; type: 'histogram'; values: ExportedValue[]; aggregator: 'sum' }> {
    const values: ExportedValue[] = [];
    for (const s of this.read()) {
      const labels = s.labels as Record<string, string | number>;
      let acc = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        acc += s.cells.counts[i];
        values.push({ labels: { le: this.buckets[i] }, sharedLabels: labels, value: acc, metricName: `${this.family}_bucket` });
      }
      values.push({ labels: { le: '+Inf' }, sharedLabels: labels, value: s.cells.count, metricName: `${this.family}_bucket` });
      values.push({ labels: {}, sharedLabels: labels, value: s.cells.sum, metricName: `${this.family}_sum` });
      values.push({ labels: {}, sharedLabels: labels, value: s.cells.count, metricName: `${this.family}_count` });
    }
    return { name: this.family, help: this.helpText, type: 'histogram', values, aggregator: 'sum' };
  }

  /** The same series with each sample's labels merged (getMetricsAsJSON). */
  override async get(): ReturnType<Histogram<L>['get']> {
    const d = await this.getForPromString();
    const values = d.values.map((v) => ({ labels: { ...v.labels, ...v.sharedLabels }, value: v.value, metricName: v.metricName }));
    return { ...d, values } as unknown as Awaited<ReturnType<Histogram<L>['get']>>;
  }
}

/**
 * Registers a histogram family mirrored from per-series HistogramCells at every scrape
 * (see MirroredHistogram). `buckets` are the upper bounds (ascending) every series' cells use.
 * @throws Error when the name is already registered (prom-client).
 */
export function mirroredHistogram<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[], buckets: readonly number[], read: () => Array<HistogramSeries<L>>): Histogram<L> {
  return new MirroredHistogram(registry, name, help, labelNames, buckets, read);
}
