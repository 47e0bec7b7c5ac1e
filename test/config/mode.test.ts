/**
 * cluster.json holds the cluster token (DESIGN promise 6): it is written readable by its owner
 * only (0600), and the launcher (LocalCluster.start, i.e. `cairn up`) tightens an existing copy
 * that group or others may read (issue 11, item 9).
 */
import test from 'ava';
import { chmodSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalCluster } from '../../src/cluster/index.ts';
import { createClusterConfig, DEFAULT_LAYOUT } from '../../src/cluster/create.ts';
import { CONFIG_FILE, saveConfig, secureConfigFile } from '../../src/config/index.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';

const MiB = 1024 * 1024;

/** Permission bits of `path`. */
function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

test('saveConfig writes cluster.json 0600, even over a stale 0644 temp file', async (t) => {
  const { dir, cleanup } = tempDataDir();
  t.teardown(cleanup);
  const path = join(dir, CONFIG_FILE);
  writeFileSync(`${path}.tmp`, 'stale', { mode: 0o644 });
  chmodSync(`${path}.tmp`, 0o644);
  await saveConfig(dir, await createClusterConfig({ ...DEFAULT_LAYOUT, nodes: 1, replicas: 1, volumeBytes: 0 }));
  t.is(mode(path), 0o600);
  t.is(await secureConfigFile(dir), false, 'already tight: nothing to change');
});

test('secureConfigFile: no file is not an error', async (t) => {
  const { dir, cleanup } = tempDataDir();
  t.teardown(cleanup);
  t.is(await secureConfigFile(dir), false);
});

test.serial('the launcher creates cluster.json 0600 and tightens an existing 0644 one when it opens it', async (t) => {
  const { dir, cleanup } = tempDataDir();
  t.teardown(cleanup);
  const path = join(dir, CONFIG_FILE);
  const layout = { nodes: 1, replicas: 1, devicesPerNode: 1, partitionsPerDevice: 1, deviceBytes: 16 * MiB, volumeBytes: 4 * MiB };
  const first = await LocalCluster.start({ dataDir: dir, layout, initiator: false, adoptNodes: false });
  try {
    t.true(first.created);
    t.is(mode(path), 0o600, 'a new cluster.json is 0600');
  } finally {
    await first.stop();
  }

  chmodSync(path, 0o644);
  t.is(mode(path), 0o644);
  const progress: string[] = [];
  const again = await LocalCluster.start({ dataDir: dir, initiator: false, adoptNodes: false, onProgress: (l) => progress.push(l) });
  try {
    t.false(again.created);
    t.is(mode(path), 0o600, 'an existing 0644 cluster.json is 0600 once opened');
    t.true(progress.some((l) => l.includes('0600')), progress.join('\n'));
  } finally {
    await again.stop();
  }
});
