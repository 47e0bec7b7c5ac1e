/**
 * `cairn authority migrate` (issue 14): an embedded-authority cluster moves to etcd with its
 * history and lease ledger, and carries on from there.
 *
 * A 3-node cluster with the embedded authority gets a few epochs (reweights) and lease
 * generations (attachments). While it runs, the migration is refused. Stopped, the CLI moves
 * it to a local 3-member etcd (`--local`); cluster.json then names etcd, every node holds the
 * authority key, and a second migration is refused with one line. Started again (the local
 * etcd with it), the cluster's epoch and history continue from the migrated ones, the volume
 * reads back what was written, and the next attachment's generation is above the old ones.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ApiClient } from '../../src/api/index.ts';
import { authorityKeyPath } from '../../src/authority/index.ts';
import { LocalCluster, MigrateError, migrateAuthorityToEtcd, startLocalEtcdFor } from '../../src/cluster/index.ts';
import { loadConfig } from '../../src/config/index.ts';
import { CAIRN, tempDataDir } from '../helpers/cairn-up.ts';

const run = promisify(execFile);
const MiB = 1 << 20;

test('an embedded authority moves to etcd with its epochs and lease generations', async (t) => {
  t.timeout(240000);
  const { dir, cleanup } = tempDataDir();
  t.teardown(cleanup);
  const layout = { nodes: 3, devicesPerNode: 1, deviceBytes: 64 * MiB, partitionsPerDevice: 1, replicas: 3, volumeBytes: 8 * MiB };
  let cluster = await LocalCluster.start({ dataDir: dir, layout });
  const data = randomBytes(64 * 1024);
  let lastGen = 0;
  let epochBefore = 0;
  try {
    const api = new ApiClient(`http://127.0.0.1:${cluster.config.nodes[1].apiPort}`, cluster.config.token);
    for (const weight of [0.9, 0.8]) await api.call('POST', '/v1/map/changes', { type: 'reweight', node: 2, weight });
    for (let i = 0; i < 2; i++) {
      const v = await cluster.attach('vol0');
      if (i === 0) {
        await v.write(MiB, data);
        await v.flush();
      }
      lastGen = v.leaseGeneration;
      await v.close();
    }
    epochBefore = (await api.call<{ epoch: number }>('GET', '/v1/map')).epoch;
    const refused = await t.throwsAsync(migrateAuthorityToEtcd({ dataDir: dir, etcd: { endpoints: ['http://127.0.0.1:1'] } }));
    t.true(refused instanceof MigrateError && /is running/.test(refused.message), `refused while running: ${refused?.message}`);
  } finally {
    await cluster.stop();
  }

  const out = await run(process.execPath, [CAIRN, 'authority', 'migrate', '--local', '--data-dir', dir]);
  t.regex(out.stdout, new RegExp(`epochs up to ${epochBefore}`), out.stdout);
  const config = (await loadConfig(dir))!;
  t.is(config.authority?.kind, 'etcd');
  t.is(config.authority?.etcd?.prefix, `/cairn/${config.clusterId}`);
  for (const n of config.nodes) t.true(existsSync(authorityKeyPath(dir, n.id)), `node ${n.id} holds the authority key`);
  const again = await t.throwsAsync(run(process.execPath, [CAIRN, 'authority', 'migrate', '--local', '--data-dir', dir]));
  const stderr = (again as { stderr?: string }).stderr ?? '';
  t.regex(stderr, /already etcd/);
  t.is(stderr.trim().split('\n').length, 1, 'one line');

  const etcd = await startLocalEtcdFor(dir, false);
  t.truthy(etcd, 'the migrated directory\'s local etcd starts again');
  cluster = await LocalCluster.start({ dataDir: dir });
  try {
    const api = new ApiClient(`http://127.0.0.1:${cluster.config.nodes[2].apiPort}`, cluster.config.token);
    const history = (await api.call<{ epochs: Array<{ epoch: number }> }>('GET', '/v1/map/history')).epochs.map((e) => e.epoch);
    t.deepEqual(history.slice(0, epochBefore), Array.from({ length: epochBefore }, (_, i) => i + 1), 'the whole history moved');
    const change = await api.call<{ epoch: number }>('POST', '/v1/map/changes', { type: 'reweight', node: 2, weight: 1 });
    t.true(change.epoch > epochBefore, `the next epoch (${change.epoch}) continues after ${epochBefore}`);
    const v = await cluster.attach('vol0');
    t.true(v.leaseGeneration > lastGen, `generation ${v.leaseGeneration} > ${lastGen}`);
    t.true((await v.read(MiB, data.length)).equals(data), 'the volume reads what was written before the migration');
    await v.close();
  } finally {
    await cluster.stop();
    await etcd?.stop();
  }
});
