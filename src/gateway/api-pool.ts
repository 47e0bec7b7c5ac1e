/**
 * The management APIs of a cluster's nodes, as a gateway reaches them: every node in the
 * current map that has an API port, up nodes first; each call goes to the first that
 * answers (any node serves reads; changes are forwarded to the authority by whichever
 * node answers).
 */
import { ApiClient, ApiError } from '../api/index.ts';
import type { ClusterMap } from '../clustermap/index.ts';

/** See the module comment. */
export class ApiPool {
  constructor(private readonly map: () => ClusterMap, private readonly token: string, private readonly timeoutMs = 15000) {}

  /**
   * Calls `method path` on the first node that answers.
   * @throws ApiError from the node that answered (status ≥ 400), or status 0 when none did.
   */
  async call<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const nodes = [...this.map().nodes].filter((n) => n.apiPort).sort((a, b) => Number(b.up) - Number(a.up));
    let last: ApiError = new ApiError(0, 'no node with a management API in the map');
    for (const n of nodes) {
      try {
        return await new ApiClient(`http://${n.host}:${n.apiPort}`, this.token, this.timeoutMs).call<T>(method, path, body);
      } catch (e) {
        if (!(e instanceof ApiError) || e.status !== 0) throw e;
        last = e;
      }
    }
    throw last;
  }
}
