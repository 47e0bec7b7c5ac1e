import test from 'ava';
import { buildMap, compileMap, decodePartitionLeafId, place } from '../../placement/index.ts';

test('3 replicas land on 3 distinct hosts, deterministically', (t) => {
  const map = buildMap([0, 1, 2, 3].map((id) => ({ id, devices: [{ capacityBytes: 2 ** 30, partitions: 4 }] })));
  const cm = compileMap(map);
  for (let x = 0; x < 2000; x++) {
    const p = place(cm, { failureDomain: 'host', replicas: 3 }, x);
    t.true(p.complete);
    t.is(new Set(p.members.map((l) => decodePartitionLeafId(l).host)).size, 3);
    t.deepEqual(place(cm, { failureDomain: 'host', replicas: 3 }, x), p);
  }
});

test('more replicas than hosts gives a partial result, never a duplicate', (t) => {
  const cm = compileMap(buildMap([0, 1].map((id) => ({ id, devices: [{ capacityBytes: 2 ** 30, partitions: 2 }] }))));
  const p = place(cm, { failureDomain: 'host', replicas: 3 }, 42);
  t.false(p.complete);
  t.is(p.members.length, 2);
});
