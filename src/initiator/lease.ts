/**
 * Taking a volume's write lease (DESIGN promise 5): the authority grants the next
 * generation (reached through any storage node's management API, which forwards to it),
 * then the attachment announces it to the storage nodes (Volume.adoptLease), fencing every
 * earlier holder.
 */
import type { ClusterView } from './cluster-view.ts';
import type { Volume } from './volume.ts';

/** Thrown when no node's management API granted a lease. */
export class LeaseError extends Error {
  override name = 'LeaseError';
}

/**
 * Asks the authority for volume `volumeId`'s next lease generation, trying the up nodes'
 * APIs in map order (any of them forwards to the authority).
 * @throws LeaseError with the last node's answer when none granted one.
 */
export async function grantLease(view: ClusterView, token: string, volumeId: number): Promise<number> {
  const { ApiClient } = await import('../api/index.ts');
  let last = 'no storage node is up';
  const nodes = [...view.map.nodes].sort((a, b) => Number(b.up) - Number(a.up));
  for (const n of nodes) {
    try {
      const r = await new ApiClient(`http://${n.host}:${n.apiPort}`, token, 10000).call<{ generation: number }>('POST', `/v1/volumes/${volumeId}/lease`);
      return r.generation;
    } catch (e) {
      last = `node ${n.id}: ${(e as Error).message}`;
    }
  }
  throw new LeaseError(`could not get a write lease for volume ${volumeId} (${last})`);
}

/**
 * Takes the write lease of `volume`: a new generation from the authority, announced to
 * every reachable node. Returns the generation.
 * @throws LeaseError when no generation was granted; BlockDeviceError from adoptLease.
 */
export async function takeWriteLease(volume: Volume, volumeId: number, view: ClusterView, token: string): Promise<number> {
  const gen = await grantLease(view, token, volumeId);
  await volume.adoptLease(gen);
  return gen;
}
