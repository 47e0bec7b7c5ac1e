/**
 * The catalog's mutator term (issue 14): with an etcd authority the catalog's one mutator
 * moves with the membership leader, and a deposed leader may still finish a write late. Its
 * records are written with page version writeVersion(term, record version), on volume 0's
 * lease generation = term. On a real 3-node cluster, two CatalogStores stand for the old
 * leader (term 1) and the new one (term 2):
 *
 * - the new mutator reads the old one's record and replaces it;
 * - the old mutator's late compare-and-swap (from its stale memory) is refused by the nodes
 *   (fenced by the newer term) and changes nothing;
 * - every reader (a fresh, non-mutating store) gets the new term's record.
 */
import test from 'ava';
import { CatalogStore, volumeKey } from '../../src/catalog/index.ts';
import { LocalCluster } from '../../src/cluster/index.ts';
import { ConnectionPool } from '../../src/wire/index.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';

const MiB = 1 << 20;

test('a deposed mutator (older term) cannot overwrite its successor\'s record, and readers get the newer term', async (t) => {
  t.timeout(120000);
  const { dir, cleanup } = tempDataDir();
  t.teardown(cleanup);
  const cluster = await LocalCluster.start({ dataDir: dir, layout: { nodes: 3, devicesPerNode: 1, deviceBytes: 64 * MiB, partitionsPerDevice: 1, replicas: 3, volumeBytes: 8 * MiB } });
  const pools: ConnectionPool[] = [];
  const store = (term: number, mutator: boolean): CatalogStore => {
    const connections = new ConnectionPool({ token: cluster.config.token, address: (id) => cluster.view.address(id) });
    pools.push(connections);
    return new CatalogStore({ views: cluster.follower!, connections, mutator, term, ioTimeoutMs: 5000 });
  };
  try {
    const key = volumeKey('term-test');
    const old = store(1, true);
    t.is(await old.put(key, 0, { who: 'old leader', n: 1 }), 1);
    const next = store(2, true);
    const seen = await next.get(key);
    t.deepEqual(seen, { version: 1, body: { who: 'old leader', n: 1 } }, 'the new mutator reads the old one\'s record');
    t.is(await next.put(key, 1, { who: 'new leader', n: 2 }), 2);
    // The old mutator still believes the record is at version 1 (its memory): its write is refused.
    await t.throwsAsync(old.put(key, 1, { who: 'old leader, late', n: 3 }), undefined, 'the deposed mutator\'s late write fails');
    const reader = store(1, false);
    t.deepEqual(await reader.get(key), { version: 2, body: { who: 'new leader', n: 2 } }, 'readers get the newer term\'s record');
    for (const s of [old, next, reader]) s.close();
  } finally {
    for (const p of pools) p.close();
    await cluster.stop();
  }
});
