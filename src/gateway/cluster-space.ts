/**
 * Cluster-wide figures for a cluster volume's namespace: the pool's free share for the
 * SMART / Health log page (Available Spare; NVMe Base 2.0, 5.16.1.3) and the volume's
 * allocated bytes for Identify Namespace NUSE (NVM Command Set 1.0, 4.1.5.1), both from the
 * storage nodes' latest heartbeats as the management API reports them (GET /v1/nodes). Read
 * when a host asks (rarely), never on the I/O path; one API answer serves both for a second.
 */
import { ApiClient } from '../api/index.ts';
import type { ClusterMap } from '../clustermap/index.ts';
import type { VolumeHealth } from '../nvmf/index.ts';

/** One node row of GET /v1/nodes, as far as these figures need it. */
interface NodeSpace {
  in: boolean;
  capacityBytes: number;
  liveBytes: number;
  volumes?: Array<{ volume: number; storedBytes: number }>;
}

/** How long one GET /v1/nodes answer is reused (ms). */
const REUSE_MS = 1000;

/**
 * Space figures of one cluster volume. `map()` gives the current cluster map (its first up
 * node with a management API is asked, within `timeoutMs`, default 2000).
 */
export class ClusterSpace {
  private last: { at: number; nodes: Promise<NodeSpace[]> } | null = null;

  constructor(
    private readonly map: () => ClusterMap,
    private readonly token: string,
    private readonly volume: number,
    private readonly replicas: number,
    private readonly timeoutMs = 2000,
  ) {}

  private nodes(): Promise<NodeSpace[]> {
    const now = Date.now();
    if (this.last && now - this.last.at < REUSE_MS) return this.last.nodes;
    const n = this.map().nodes.find((x) => x.up && x.apiPort);
    const nodes = n
      ? new ApiClient(`http://${n.host}:${n.apiPort}`, this.token, this.timeoutMs).call<{ nodes: NodeSpace[] }>('GET', '/v1/nodes').then((r) => r.nodes)
      : Promise.reject(new Error('no up node with a management API in the map'));
    this.last = { at: now, nodes };
    nodes.catch(() => {
      if (this.last?.nodes === nodes) this.last = null;
    });
    return nodes;
  }

  /**
   * The pool's free share as `poolFreeFraction`, 0..1: 1 − live ÷ capacity bytes summed over
   * the nodes that are in (live, not allocated: the cleaner returns dead log space).
   * @throws ApiError / Error when no node answers (the caller falls back to its own figures).
   */
  async health(): Promise<VolumeHealth> {
    let capacity = 0;
    let live = 0;
    for (const x of await this.nodes()) {
      if (!x.in) continue;
      capacity += x.capacityBytes;
      live += x.liveBytes;
    }
    return { poolFreeFraction: capacity > 0 ? Math.max(0, 1 - live / capacity) : 0 };
  }

  /**
   * Bytes of the volume that are allocated (written and not trimmed): the bytes every node
   * stores for it divided by the pool's replica count (a copy still being recovered counts
   * short until it is).
   * @throws ApiError / Error when no node answers.
   */
  async allocatedBytes(): Promise<number> {
    let stored = 0;
    for (const x of await this.nodes()) for (const v of x.volumes ?? []) if (v.volume === this.volume) stored += v.storedBytes;
    return Math.round(stored / this.replicas / 4096) * 4096;
  }
}
