/**
 * A cluster volume for a gateway process that did not start the cluster: opens the local
 * cluster's configuration in a data directory and serves the volume through an initiator
 * Volume whose write lease the gateway takes when it receives I/O (ZBS-style takeover):
 * the authority grants the next generation and every node is told at once, so the previous
 * holder is fenced everywhere, and the next flush reaches every node (the previous holder's
 * unflushed writes may be anywhere). The gateway follows the gossiped map (MapFollower), so
 * its I/O is placed and epoch-fenced like any initiator's.
 */
import { join } from 'node:path';
import { fileLogger } from '../logging/index.ts';
import { CONFIG_FILE, loadConfig, type ClusterConfig, type VolumeConfig } from '../config/index.ts';
import { MapFollower, Volume, takeWriteLease } from '../initiator/index.ts';
import { BlockDeviceError, type BlockDevice } from '../volume/index.ts';
import { ConnectionPool } from '../wire/index.ts';
import { volumeNqn, type VolumeHealth, type VolumeLease } from '../nvmf/index.ts';
import { ClusterSpace } from './cluster-space.ts';
import { ApiPool } from './api-pool.ts';

/** A cluster volume whose write lease this process takes on demand; see the module comment. */
export class ClusterLeasedVolume implements BlockDevice {
  readonly size: number;
  readonly blockSize: number;
  /** The subsystem NQN of this volume (the same on every gateway). */
  readonly nqn: string;
  /** The lease hook for the NVMe/TCP namespace. */
  readonly lease: VolumeLease = { acquire: () => this.takeLease() };
  private readonly pool: ConnectionPool;
  private readonly record: VolumeConfig;
  private readonly token: string;
  private readonly space: ClusterSpace;
  private vol: Volume | undefined;
  /** Lease generation held (0 = none yet). */
  generation = 0;

  private constructor(
    readonly dataDir: string,
    readonly name: string,
    config: ClusterConfig,
    private readonly follower: MapFollower,
    rec: VolumeConfig,
  ) {
    this.record = rec;
    this.token = config.token;
    this.size = rec.sizeBytes;
    this.blockSize = 4096;
    this.nqn = volumeNqn(config.clusterId, name);
    this.pool = new ConnectionPool({ token: config.token, address: (id) => this.follower.current.address(id) });
    const replicas = config.pools.find((p) => p.id === rec.pool)?.replicas ?? 1;
    this.space = new ClusterSpace(() => this.follower.current.map, config.token, rec.id, replicas);
  }

  /**
   * Opens volume `name` of the cluster in `dataDir` (its nodes must be running) and joins the
   * cluster's gossip as an initiator (log: `<dataDir>/logs/gateway-<pid>.log`). The volume is
   * looked up in the catalog (any node's API), else in cluster.json.
   * @throws Error when there is no cluster configuration or no such volume.
   */
  static async open(dataDir: string, name: string): Promise<ClusterLeasedVolume> {
    const config = await loadConfig(dataDir);
    if (!config) throw new Error(`no ${CONFIG_FILE} in ${dataDir}`);
    const { log } = fileLogger(join(dataDir, 'logs', `gateway-${process.pid}.log`), { base: { gateway: process.pid } });
    const follower = await MapFollower.start({ config, host: config.nodes[0].host, log });
    let rec: VolumeConfig | undefined;
    try {
      const v = await new ApiPool(() => follower.current.map, config.token).call<VolumeConfig>('GET', `/v1/volumes/${encodeURIComponent(name)}`);
      rec = { id: v.id, name: v.name, sizeBytes: v.sizeBytes, pool: v.pool, extentBytes: v.extentBytes, thin: v.thin, lease: 0 };
    } catch (e) {
      if ((e as { status?: number }).status !== 404) rec = config.volumes.find((v) => v.name === name);
    }
    if (!rec) {
      await follower.stop();
      throw new Error(`no volume '${name}' in the cluster of ${dataDir}`);
    }
    return new ClusterLeasedVolume(dataDir, name, config, follower, rec);
  }

  /**
   * Takes the volume's write lease (next generation from the authority, announced to every
   * node) and serves I/O under it. Returns the generation.
   * @throws LeaseError / BlockDeviceError when the lease cannot be taken.
   */
  async takeLease(): Promise<number> {
    const vol = this.vol ?? new Volume({ views: this.follower, connections: this.pool, record: this.record, lease: 0 });
    const gen = await takeWriteLease(vol, this.record.id, this.follower.current, this.token);
    this.vol = vol;
    this.generation = gen;
    return gen;
  }

  private current(): Volume {
    if (!this.vol) throw new BlockDeviceError('EFENCED', `volume ${this.name}: write lease not taken by this gateway`);
    return this.vol;
  }

  /** Reads through the current lease's Volume. @throws BlockDeviceError EFENCED before the lease is taken. */
  read(offset: number, length: number): Promise<Buffer> {
    return this.current().read(offset, length);
  }

  /** Writes through the current lease's Volume. @throws BlockDeviceError EFENCED before the lease is taken. */
  write(offset: number, data: Buffer, fua?: boolean): Promise<void> {
    return this.current().write(offset, data, fua);
  }

  /** Deallocates through the current lease's Volume. */
  trim(offset: number, length: number): Promise<void> {
    return this.current().trim(offset, length);
  }

  /** Zeroes through the current lease's Volume. */
  writeZeroes(offset: number, length: number, fua?: boolean): Promise<void> {
    return this.current().writeZeroes(offset, length, fua);
  }

  /**
   * Flushes (after a takeover, on every node). Rejects (never throws synchronously) with
   * BlockDeviceError EIO, or EFENCED before the lease is taken.
   */
  async flush(): Promise<void> {
    await this.current().flush();
  }

  /** SMART / Health figures from the cluster (the pool's free share); see ClusterSpace. */
  health(): Promise<VolumeHealth> {
    return this.space.health();
  }

  /** Allocated bytes of the volume (for NUSE); see ClusterSpace. */
  allocatedBytes(): Promise<number> {
    return this.space.allocatedBytes();
  }

  /** Stops I/O, closes the node connections and leaves the gossip. */
  async close(): Promise<void> {
    this.vol?.close();
    this.pool.close();
    await this.follower.stop();
  }
}
