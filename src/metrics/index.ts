/** src/metrics: Prometheus metrics (prom-client) of nodes and gateways, and their HTTP endpoint. */
export { METRICS_CONTENT_TYPE, createRegistry, mirroredCounter, mirroredGauge, type Sample } from './registry.ts';
export { HistogramCells, mirroredHistogram, type HistogramSeries } from './tally.ts';
export { LATENCY_BUCKETS, VolumeIoMetrics, type Frontend, type VolumeOp } from './volume-io.ts';
export { registerNodeMetrics, type NodeMetrics, type NodeMetricsSource, type PartitionFigures, type RecoveryFigures } from './node.ts';
export { bearerOk, registerMetricsRoute, startMetricsServer, type MetricsServer } from './http.ts';
