/**
 * Volumes live in the catalog, not in cluster.json (issue 11):
 *
 * - a new data directory's cluster.json lists no volumes; LocalCluster.start creates the
 *   layout's volume in the catalog (its size and extent size), keeps it in config.volumes
 *   (in memory), and attach() works for it and for a volume only the catalog knows;
 * - a data directory whose cluster.json lists volumes (as versions before the catalog wrote
 *   it): the authority moves them into the catalog (same id, same extent size), start removes
 *   them from cluster.json with one progress line, and the lease generation cluster.json gave
 *   stays a floor after it is gone (a restart without it still issues a larger generation).
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ApiClient } from '../../src/api/client.ts';
import { LocalCluster, createClusterConfig, DEFAULT_LAYOUT } from '../../src/cluster/index.ts';
import { CONFIG_FILE, saveConfig } from '../../src/config/index.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';

const MiB = 1024 * 1024;
const KiB = 1024;
const LAYOUT = { nodes: 3, devicesPerNode: 1, deviceBytes: 64 * MiB, partitionsPerDevice: 2, replicas: 2 };

interface CatalogVolume {
  name: string;
  id: number;
  sizeBytes: number;
  extentBytes: number;
  pool: number;
  thin: boolean;
}

/** The volumes cluster.json lists on disk. */
const fileVolumes = (dir: string): unknown[] => (JSON.parse(readFileSync(join(dir, CONFIG_FILE), 'utf8')) as { volumes: unknown[] }).volumes;

/** Node 1's management API (a node that forwards changes to the authority, node 0). */
function api(cluster: LocalCluster): ApiClient {
  const n = cluster.config.nodes[1];
  return new ApiClient(`http://${n.host}:${n.apiPort}`, cluster.config.token, 30000);
}

test.serial('a new data directory: cluster.json lists no volume; the layout volume is in the catalog and attaches', async (t) => {
  t.timeout(180000);
  const { dir, cleanup } = tempDataDir();
  const cluster = await LocalCluster.start({ dataDir: dir, layout: { ...LAYOUT, volumeBytes: 16 * MiB, extentBytes: 64 * KiB } });
  try {
    t.true(cluster.created);
    t.deepEqual(fileVolumes(dir), [], 'cluster.json lists no volumes');
    t.is(statSync(join(dir, CONFIG_FILE)).mode & 0o777, 0o600);

    const { volumes } = await api(cluster).call<{ volumes: CatalogVolume[] }>('GET', '/v1/volumes');
    t.deepEqual(volumes.map((v) => [v.name, v.id, v.sizeBytes, v.extentBytes, v.pool, v.thin]), [['vol0', 1, 16 * MiB, 64 * KiB, 0, true]], 'the catalog holds the layout volume with id 1');
    t.deepEqual(cluster.config.volumes, [{ id: 1, name: 'vol0', sizeBytes: 16 * MiB, pool: 0, extentBytes: 64 * KiB, thin: true, lease: 0 }], 'config.volumes (in memory) holds it');

    const vol = await cluster.attach('vol0');
    const data = randomBytes(256 * KiB);
    await vol.write(3 * 64 * KiB, data, true);
    t.true((await vol.read(3 * 64 * KiB, data.length)).equals(data));
    vol.close();

    // A volume created through the API later attaches by name (looked up in the catalog).
    const extra = await api(cluster).call<CatalogVolume>('POST', '/v1/volumes', { name: 'extra', size: 4 * MiB, extentBytes: 128 * KiB });
    t.is(extra.extentBytes, 128 * KiB);
    t.false(cluster.config.volumes.some((v) => v.name === 'extra'));
    const x = await cluster.attach('extra');
    await x.write(0, data.subarray(0, 4096));
    t.true((await x.read(0, 4096)).equals(data.subarray(0, 4096)));
    x.close();
    await t.throwsAsync(cluster.attach('nope'), { message: /no volume named 'nope'/ });

    // extentBytes: a power of two from 4 KiB to 1 MiB; the idempotent create compares it.
    for (const extentBytes of [3 * 4096, 2048, 2 * MiB]) {
      const e = await t.throwsAsync(api(cluster).call('POST', '/v1/volumes', { name: 'bad', size: 4 * MiB, extentBytes }));
      t.is((e as { status?: number }).status, 400, `extentBytes ${extentBytes}`);
    }
    const again = await api(cluster).call<CatalogVolume>('POST', '/v1/volumes', { name: 'vol0', size: 16 * MiB, extentBytes: 64 * KiB });
    t.is(again.id, 1, 'the same create is idempotent');
    const other = await t.throwsAsync(api(cluster).call('POST', '/v1/volumes', { name: 'vol0', size: 16 * MiB }));
    t.is((other as { status?: number }).status, 409, 'another extent size is a conflict');
  } finally {
    await cluster.stop();
    cleanup();
  }
});

test.serial('an old data directory: cluster.json volumes move into the catalog (same id) and their lease generation stays a floor', async (t) => {
  t.timeout(240000);
  const { dir, cleanup } = tempDataDir();
  // cluster.json as versions before the catalog wrote it: volumes listed, with lease generations.
  const config = await createClusterConfig({ ...DEFAULT_LAYOUT, ...LAYOUT, volumeBytes: 0 });
  config.volumes.push(
    { id: 1, name: 'vol0', sizeBytes: 8 * MiB, pool: 0, extentBytes: MiB, thin: true, lease: 0 },
    { id: 7, name: 'legacy', sizeBytes: 8 * MiB, pool: 0, extentBytes: 64 * KiB, thin: true, lease: 5 },
  );
  await saveConfig(dir, config);

  const progress: string[] = [];
  let cluster = await LocalCluster.start({ dataDir: dir, onProgress: (l) => progress.push(l) });
  try {
    t.false(cluster.created);
    t.deepEqual(fileVolumes(dir), [], 'cluster.json no longer lists the volumes');
    t.is(statSync(join(dir, CONFIG_FILE)).mode & 0o777, 0o600);
    for (const name of ['vol0', 'legacy']) {
      t.is(progress.filter((l) => l === `moved volume ${name} from cluster.json into the catalog`).length, 1, progress.join('\n'));
    }
    const legacy = await api(cluster).call<CatalogVolume>('GET', '/v1/volumes/legacy');
    t.deepEqual([legacy.id, legacy.sizeBytes, legacy.extentBytes], [7, 8 * MiB, 64 * KiB], 'migrated with its id and extent size');
    t.deepEqual(cluster.config.volumes.map((v) => [v.name, v.id, v.extentBytes, v.lease]), [['vol0', 1, MiB, 0], ['legacy', 7, 64 * KiB, 0]]);
    // No attachment yet: the floor (5) is only in the authority's ledger now.
    await cluster.stop();

    progress.length = 0;
    cluster = await LocalCluster.start({ dataDir: dir, onProgress: (l) => progress.push(l) });
    t.false(progress.some((l) => l.startsWith('moved volume')), 'nothing left to move');
    t.deepEqual(cluster.config.volumes.map((v) => [v.name, v.id]), [['vol0', 1], ['legacy', 7]], 'config.volumes filled from the catalog');
    const vol = await cluster.attach('legacy');
    t.true(vol.leaseGeneration > 5, `generation ${vol.leaseGeneration} is above cluster.json's 5`);
    const data = randomBytes(128 * KiB);
    await vol.write(64 * KiB, data, true);
    t.true((await vol.read(64 * KiB, data.length)).equals(data));
    vol.close();

    // New volumes get ids after the migrated ones.
    const fresh = await api(cluster).call<CatalogVolume>('POST', '/v1/volumes', { name: 'fresh', size: 4 * MiB });
    t.true(fresh.id > 7, `id ${fresh.id}`);
  } finally {
    await cluster.stop();
    cleanup();
  }
});
