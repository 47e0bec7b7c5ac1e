/**
 * An initiator's view of the cluster at one epoch: the cluster map (placement computed on
 * its weights and in/out only — a down node keeps its extents, see placementTopology),
 * node addresses and up/down states for routing, and pool rules, with the placement of
 * extents cached per epoch.
 */
import { compileMap, decodePartitionLeafId, hashBytes, place, type CompiledMap } from '../../placement/index.ts';
import { initialMap, placementTopology, type ClusterMap, type MapNode } from '../clustermap/index.ts';
import type { ClusterConfig, PoolConfig } from '../config/index.ts';
import type { NodeAddress } from '../wire/index.ts';

/** Thrown when an extent cannot be placed on enough partitions (too few usable hosts). */
export class PlacementError extends Error {
  override name = 'PlacementError';
  /** The members that could be placed (fewer than min_size; empty for an unknown pool). */
  constructor(message: string, readonly placeable: number[] = []) {
    super(message);
  }
}

const keyScratch = Buffer.alloc(8);

/**
 * Placement input of an extent: xxHash32 over (volume id, extent index), both u32 LE.
 * The same function every initiator and node uses, so all compute the same location.
 */
export function extentPlacementInput(volume: number, extent: number): number {
  keyScratch.writeUInt32LE(volume >>> 0, 0);
  keyScratch.writeUInt32LE(extent >>> 0, 4);
  return hashBytes(keyScratch);
}

/** Cluster map + addresses + pools, immutable for one epoch. */
export class ClusterView {
  readonly epoch: number;
  private readonly compiled: CompiledMap;
  private readonly nodes: Map<number, MapNode>;
  private readonly pools: Map<number, PoolConfig>;
  private readonly cache = new Map<number, Map<number, number[]>>();

  /** A view of `map` with the pools of cluster.json. */
  constructor(readonly map: ClusterMap, pools: PoolConfig[]) {
    this.epoch = map.epoch;
    this.compiled = compileMap(placementTopology(map));
    this.nodes = new Map(map.nodes.map((n) => [n.id, n]));
    this.pools = new Map(pools.map((p) => [p.id, p]));
  }

  /** The view of cluster.json's creation map (epoch 1). */
  static fromConfig(config: ClusterConfig): ClusterView {
    return new ClusterView(initialMap(config), config.pools);
  }

  /** Address of node `id`, or undefined. */
  address(id: number): NodeAddress | undefined {
    return this.nodes.get(id);
  }

  /** Whether node `id` is up in this epoch's map (false for an unknown node). */
  isUp(id: number): boolean {
    return this.nodes.get(id)?.up ?? false;
  }

  /** The pool record `id`. @throws PlacementError for an unknown pool. */
  pool(id: number): PoolConfig {
    const p = this.pools.get(id);
    if (!p) throw new PlacementError(`unknown pool ${id}`);
    return p;
  }

  /**
   * Ordered partition leaf ids (primary first) holding `extent` of `volume` in `pool`.
   * @throws PlacementError when fewer than the pool's min_size members can be placed.
   */
  members(volume: number, extent: number, poolId: number): number[] {
    let perVolume = this.cache.get(volume);
    if (!perVolume) {
      perVolume = new Map();
      this.cache.set(volume, perVolume);
    }
    let m = perVolume.get(extent);
    if (m) return m;
    const pool = this.pool(poolId);
    const p = place(this.compiled, { failureDomain: pool.failureDomain, replicas: pool.replicas }, extentPlacementInput(volume, extent));
    if (p.members.length < pool.minSize) {
      throw new PlacementError(`extent ${extent} of volume ${volume}: only ${p.members.length} of ${pool.replicas} members placeable (min_size ${pool.minSize})`, p.members);
    }
    m = p.members;
    perVolume.set(extent, m);
    return m;
  }

  /** Node id that holds partition leaf `leaf`. */
  nodeOf(leaf: number): number {
    return decodePartitionLeafId(leaf).host;
  }
}

/** Where a Volume gets its current view, and a newer one when a node says its epoch is stale. */
export interface ViewSource {
  /** The view of the newest map held. */
  readonly current: ClusterView;
  /**
   * Obtains a map of epoch >= `epoch` (asking neighbours) and resolves with the view then
   * current — older than `epoch` when none could be fetched in time.
   */
  refresh(epoch: number): Promise<ClusterView>;
}

/** A ViewSource that never changes (tests, tools without a control plane). */
export function fixedViews(view: ClusterView): ViewSource {
  return { current: view, refresh: async () => view };
}
