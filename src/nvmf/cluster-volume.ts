/**
 * A cluster volume for a gateway process that did not start the cluster: opens the local
 * cluster's configuration in a data directory, and serves the volume through an initiator
 * Volume whose write lease the gateway takes (next generation) when it receives I/O.
 *
 * Interim adapter until the initiator offers the lease as a call of its own (see the nvmf
 * report): the generation is taken by a locked read-modify-write of cluster.json (as
 * LocalCluster.attach does), the storage nodes learn it from the first request that carries
 * it (so an old holder is fenced node by node, as its requests reach nodes the new holder has
 * already used), and the first Flush after a takeover goes to every reachable node, since the
 * previous holder's unflushed writes may be anywhere. The gateway is an initiator: it follows
 * the gossiped cluster map (MapFollower), so its I/O is placed and fenced by the current epoch.
 */
import { open, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { pino, destination } from 'pino';
import { CONFIG_FILE, loadConfig, saveConfig, type ClusterConfig } from '../config/index.ts';
import { MapFollower, Volume } from '../initiator/index.ts';
import { BlockDeviceError, type BlockDevice } from '../volume/index.ts';
import { ConnectionPool, Op, Status } from '../wire/index.ts';
import { volumeNqn } from './ids.ts';
import type { VolumeLease } from './subsystem.ts';

const LOCK_STALE_MS = 30_000;

async function withLock<T>(path: string, f: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const h = await open(path, 'wx');
      await h.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const st = await stat(path).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > LOCK_STALE_MS) await unlink(path).catch(() => {});
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${path}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  try {
    return await f();
  } finally {
    await unlink(path).catch(() => {});
  }
}

/** A cluster volume whose write lease this process takes on demand; see the module comment. */
export class ClusterLeasedVolume implements BlockDevice {
  readonly size: number;
  readonly blockSize: number;
  /** The subsystem NQN of this volume (the same on every gateway). */
  readonly nqn: string;
  /** The lease hook for the NVMe/TCP namespace. */
  readonly lease: VolumeLease = { acquire: () => this.takeLease() };
  private readonly pool: ConnectionPool;
  private vol: Volume | undefined;
  private flushEverywhere = false;
  /** Lease generation held (0 = none yet). */
  generation = 0;

  private constructor(
    readonly dataDir: string,
    readonly name: string,
    config: ClusterConfig,
    private readonly follower: MapFollower,
  ) {
    const rec = config.volumes.find((v) => v.name === name)!;
    this.size = rec.sizeBytes;
    this.blockSize = 4096;
    this.nqn = volumeNqn(config.clusterId, name);
    this.pool = new ConnectionPool({ token: config.token, address: (id) => this.follower.current.address(id) });
  }

  /**
   * Opens volume `name` of the cluster in `dataDir` (its nodes must be running) and joins the
   * cluster's gossip as an initiator (log: `<dataDir>/logs/gateway-<pid>.log`).
   * @throws Error when there is no cluster configuration or no such volume.
   */
  static async open(dataDir: string, name: string): Promise<ClusterLeasedVolume> {
    const config = await loadConfig(dataDir);
    if (!config) throw new Error(`no ${CONFIG_FILE} in ${dataDir}`);
    if (!config.volumes.some((v) => v.name === name)) throw new Error(`no volume '${name}' in ${dataDir}`);
    const log = pino({ base: { gateway: process.pid } }, destination({ dest: join(dataDir, 'logs', `gateway-${process.pid}.log`), sync: true, mkdir: true }));
    const follower = await MapFollower.start({ config, host: config.nodes[0].host, log });
    return new ClusterLeasedVolume(dataDir, name, config, follower);
  }

  /** Takes the next lease generation and switches I/O to it. */
  async takeLease(): Promise<number> {
    const { config, gen } = await withLock(join(this.dataDir, `${CONFIG_FILE}.lease-lock`), async () => {
      const c = await loadConfig(this.dataDir);
      const rec = c?.volumes.find((v) => v.name === this.name);
      if (!c || !rec) throw new Error(`volume '${this.name}' is gone from ${this.dataDir}`);
      rec.lease += 1;
      await saveConfig(this.dataDir, c);
      return { config: c, gen: rec.lease };
    });
    const old = this.vol;
    this.vol = new Volume({ views: this.follower, connections: this.pool, record: config.volumes.find((v) => v.name === this.name)!, lease: gen });
    old?.close();
    this.generation = gen;
    this.flushEverywhere = true;
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

  /** Flushes; the first flush after a takeover reaches every node. @throws BlockDeviceError EIO. */
  async flush(): Promise<void> {
    const vol = this.current();
    if (this.flushEverywhere) {
      // Unreachable nodes are skipped: their copies are lost or stale either way, and the
      // previous holder's acknowledged writes are also on the members that answer.
      const view = this.follower.current;
      const nodes = view.map.nodes.map((n) => n.id);
      await Promise.all(
        nodes.map(async (id) => {
          const c = await this.pool.get(id).catch(() => undefined);
          if (!c) return;
          const r = await c
            .request({ op: Op.Flush, flags: 0, epoch: view.epoch, volume: 0, extent: 0, partition: 0, firstPage: 0, pages: 0, lease: this.generation, version: 0, members: [] })
            .catch(() => undefined);
          if (r && r.h.status !== Status.Ok) throw new BlockDeviceError('EIO', `flush after takeover: node ${id}: status ${r.h.status}`);
        }),
      );
      this.flushEverywhere = false;
    }
    await vol.flush();
  }

  /** Stops I/O, closes the node connections and leaves the gossip. */
  async close(): Promise<void> {
    this.vol?.close();
    this.pool.close();
    await this.follower.stop();
  }
}
