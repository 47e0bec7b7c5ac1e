/**
 * The cluster's libp2p private-network key (pnet pre-shared key, "swarm key" format v1),
 * derived from the cluster token so that exactly the holders of cluster.json's secret can
 * connect: HKDF-SHA256 (RFC 5869) with the cluster id as salt.
 */
import { hkdfSync } from 'node:crypto';

/** The 32-byte PSK of a cluster, in the swarm-key file format libp2p's pnet expects. */
export function clusterSwarmKey(token: string, clusterId: string): Uint8Array {
  const key = Buffer.from(hkdfSync('sha256', Buffer.from(token, 'utf8'), Buffer.from(clusterId, 'utf8'), Buffer.from('cairn libp2p pnet v1', 'utf8'), 32));
  return new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${key.toString('hex')}`);
}
