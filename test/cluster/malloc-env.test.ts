/**
 * glibc malloc settings of the node processes (src/cluster/malloc-env.ts): LocalCluster starts
 * every node with MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ (read back from the real
 * process's /proc/<pid>/environ), a value the caller set wins, and CAIRN_MALLOC=system leaves
 * glibc's defaults.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { LocalCluster } from '../../src/cluster/index.ts';
import { MALLOC_ENV, withMallocEnv } from '../../src/cluster/malloc-env.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';

const MiB = 1 << 20;

/** The environment of process `pid`, from /proc. */
function environOf(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    const i = kv.indexOf('=');
    if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

test('withMallocEnv: adds the settings, keeps what the caller set, CAIRN_MALLOC=system adds nothing, another value is refused', (t) => {
  t.deepEqual(withMallocEnv({ A: '1' }), { A: '1', MALLOC_MMAP_THRESHOLD_: String(32 * MiB), MALLOC_TRIM_THRESHOLD_: String(4096 * MiB) });
  t.is(withMallocEnv({ MALLOC_TRIM_THRESHOLD_: '0' }).MALLOC_TRIM_THRESHOLD_, '0');
  t.deepEqual(withMallocEnv({ CAIRN_MALLOC: 'system', A: '1' }), { CAIRN_MALLOC: 'system', A: '1' });
  t.throws(() => withMallocEnv({ CAIRN_MALLOC: 'jemalloc' }), { message: /CAIRN_MALLOC must be retain or system/ });
});

test('every node process LocalCluster starts runs with the malloc settings', async (t) => {
  t.timeout(120000);
  const { dir, cleanup } = tempDataDir();
  t.teardown(cleanup);
  const cluster = await LocalCluster.start({ dataDir: dir, layout: { nodes: 2, devicesPerNode: 1, deviceBytes: 64 * MiB, partitionsPerDevice: 1, replicas: 2, volumeBytes: 8 * MiB } });
  try {
    for (const n of cluster.config.nodes) {
      const env = environOf(cluster.pidOf(n.id)!);
      for (const [k, v] of Object.entries(MALLOC_ENV)) t.is(env[k], v, `node ${n.id}: ${k}`);
    }
  } finally {
    await cluster.stop();
  }
});
