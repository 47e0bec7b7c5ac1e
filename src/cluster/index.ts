/** src/cluster: creating a cluster configuration and running a local cluster of node processes. */
export { LocalCluster, NodeStartError, type AddNodeOptions, type LocalClusterOptions, type NodeMapEvent, type NodeRestartEvent } from './local-cluster.ts';
export { addNodeToMap, waitNodeUp, planDevices, createDeviceFiles, AddNodeError, type NewNode, type NewNodeOptions, type AddNodeToMapOptions, type WaitNodeUpOptions, type ApiCaller, type MapReply } from './add-node.ts';
export { newestStoredMap, seedNodeMap, devicesPresent, runningNodePid, nodeMapPath } from './node-set.ts';
export { createClusterConfig, defaultMinSize, provisionControlPlane, DEFAULT_LAYOUT, LayoutError, type ClusterLayout } from './create.ts';
export { freePorts, RESERVE_MS } from '../net/index.ts';
export { FollowerProcess, type FollowerMapEvent } from './follower-process.ts';
export { useEtcdAuthority, ensureNodeKey, startLocalEtcdFor, localEtcdDir, type LocalEtcdAuthority } from './etcd-mode.ts';
export { migrateAuthorityToEtcd, MigrateError, type MigrateOptions, type MigrateResult } from './authority-migrate.ts';
