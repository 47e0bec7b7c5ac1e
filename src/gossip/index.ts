/**
 * src/gossip: the control plane over libp2p — a private-network peer (TCP, Noise, yamux,
 * gossipsub), the map / digest / heartbeat topics and the map-fetch protocol.
 */
import './polyfill.ts';
export { GossipPeer, type GossipPeerOptions, type Verdict, type PeerLog } from './peer.ts';
export { ControlPlane, type ControlPlaneOptions, type ControlRole, type ControlLog, type HeartbeatRecord } from './control-plane.ts';
export { clusterSwarmKey } from './psk.ts';
export { ensureBundle, loadLibp2pStack, type Libp2pStack } from './libp2p-stack.ts';
export { topics, mapFetchProtocol } from './topics.ts';
export { HeartbeatSchema, DigestSchema, encodeMessage, decodeMessage, type Heartbeat, type Digest, type PartitionStat, type VolumeStat } from './messages.ts';
