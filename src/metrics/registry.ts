/**
 * A Prometheus registry per process and the helpers every Cairn metric family uses. Names
 * follow Prometheus conventions (https://prometheus.io/docs/practices/naming/): the `cairn_`
 * prefix, base units (bytes, seconds), `_total` on counters. Made with prom-client.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** Content-Type of the text exposition format (version 0.0.4). */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** prom-client default gauges whose names end in `_total` (promtool: non-counter metrics should not). */
const NONCONFORMING_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/**
 * A new registry; with `defaults` (default true), prom-client's process metrics
 * (process_cpu_seconds_total, nodejs_eventloop_lag_seconds, heap sizes, …) are in it too,
 * less the three gauges named `*_total`.
 */
export function createRegistry(opts: { defaults?: boolean } = {}): Registry {
  const registry = new Registry();
  if (opts.defaults !== false) {
    collectDefaultMetrics({ register: registry });
    // Gauges named like counters break the naming rules promtool checks; the same counts are
    // in nodejs_active_resources (by type).
    for (const name of NONCONFORMING_DEFAULTS) registry.removeSingleMetric(name);
  }
  return registry;
}

/** One labelled sample: label values and the value. */
export interface Sample<L extends string> {
  labels: Partial<Record<L, string | number>>;
  value: number;
}

/**
 * A counter whose values are read at scrape time from a monotonic source (an allocator's
 * byte counts, say) instead of being incremented: every scrape replaces the samples with
 * what `read()` returns. Values must never decrease while the process lives.
 */
export function mirroredCounter<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[], read: () => Array<Sample<L>>): Counter<L> {
  return new Counter<L>({
    name, help, labelNames, registers: [registry],
    collect() {
      this.reset();
      for (const s of read()) this.inc(s.labels, s.value);
    },
  });
}

/** A gauge whose samples are read at scrape time (replacing the previous ones). */
export function mirroredGauge<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[], read: () => Array<Sample<L>>): Gauge<L> {
  return new Gauge<L>({
    name, help, labelNames, registers: [registry],
    collect() {
      this.reset();
      for (const s of read()) this.set(s.labels, s.value);
    },
  });
}
