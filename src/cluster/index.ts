/** src/cluster: creating a cluster configuration and running a local cluster of node processes. */
export { LocalCluster, NodeStartError, type LocalClusterOptions } from './local-cluster.ts';
export { createClusterConfig, DEFAULT_LAYOUT, freePorts, LayoutError, type ClusterLayout } from './create.ts';
