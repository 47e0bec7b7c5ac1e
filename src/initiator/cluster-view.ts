/**
 * An initiator's view of the cluster at one epoch: the compiled topology map, node
 * addresses and pool rules, with the placement of extents cached per epoch.
 */
import { compileMap, decodePartitionLeafId, hashBytes, place, type CompiledMap } from '../../placement/index.ts';
import type { ClusterConfig, NodeConfig, PoolConfig } from '../config/index.ts';
import type { NodeAddress } from '../wire/index.ts';

/** Thrown when an extent cannot be placed on enough partitions (too few usable hosts). */
export class PlacementError extends Error {
  override name = 'PlacementError';
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
  readonly token: string;
  private readonly compiled: CompiledMap;
  private readonly nodes: Map<number, NodeConfig>;
  private readonly pools: Map<number, PoolConfig>;
  private readonly cache = new Map<number, Map<number, number[]>>();

  constructor(readonly config: ClusterConfig) {
    this.epoch = config.map.epoch;
    this.token = config.token;
    this.compiled = compileMap(config.map);
    this.nodes = new Map(config.nodes.map((n) => [n.id, n]));
    this.pools = new Map(config.pools.map((p) => [p.id, p]));
  }

  /** Address of node `id`, or undefined. */
  address(id: number): NodeAddress | undefined {
    return this.nodes.get(id);
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
      throw new PlacementError(`extent ${extent} of volume ${volume}: only ${p.members.length} of ${pool.replicas} members placeable (min_size ${pool.minSize})`);
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
