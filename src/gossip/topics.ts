/** Gossip topic and protocol names of a cluster (namespaced by cluster id). */

/** Topic names: full signed maps, map digests, heartbeats. */
export function topics(clusterId: string): { map: string; digest: string; heartbeat: string } {
  return { map: `/cairn/${clusterId}/map/1`, digest: `/cairn/${clusterId}/digest/1`, heartbeat: `/cairn/${clusterId}/heartbeat/1` };
}

/** The request/response protocol a peer uses to ask a neighbour for a newer map. */
export function mapFetchProtocol(clusterId: string): string {
  return `/cairn/${clusterId}/map-fetch/1.0.0`;
}
