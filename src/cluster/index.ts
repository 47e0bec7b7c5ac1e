/** src/cluster: creating a cluster configuration and running a local cluster of node processes. */
export { LocalCluster, NodeStartError, type LocalClusterOptions, type NodeMapEvent, type NodeRestartEvent } from './local-cluster.ts';
export { createClusterConfig, defaultMinSize, provisionControlPlane, DEFAULT_LAYOUT, freePorts, LayoutError, type ClusterLayout } from './create.ts';
export { FollowerProcess, type FollowerMapEvent } from './follower-process.ts';
