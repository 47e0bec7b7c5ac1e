/** src/cluster: creating a cluster configuration and running a local cluster of node processes. */
export { LocalCluster, NodeStartError, type LocalClusterOptions, type NodeMapEvent } from './local-cluster.ts';
export { createClusterConfig, provisionControlPlane, DEFAULT_LAYOUT, freePorts, LayoutError, type ClusterLayout } from './create.ts';
export { FollowerProcess, type FollowerMapEvent } from './follower-process.ts';
