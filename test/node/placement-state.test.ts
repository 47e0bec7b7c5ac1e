/**
 * The placement fingerprint (src/node/placement-state.ts) is what a node compares to know
 * whether placement moved since it caught up or pinned a snapshot. It must not depend on
 * how the map object was built: a node holds the creation map built in memory until the
 * first change reaches it decoded from the wire (sorted keys). CI once saw a node restarted
 * past downAfterMs refuse to vouch for an empty extent because the two disagreed.
 */
import test from 'ava';
import { createClusterConfig, DEFAULT_LAYOUT } from '../../src/cluster/index.ts';
import { applyChange, decodeMap, encodeMap, initialMap, type ClusterMap } from '../../src/clustermap/index.ts';
import { placementFingerprint } from '../../src/node/placement-state.ts';

const MiB = 1024 * 1024;

async function creationMap(): Promise<ClusterMap> {
  const config = await createClusterConfig({ ...DEFAULT_LAYOUT, deviceBytes: 128 * MiB, volumeBytes: 16 * MiB });
  return initialMap(config);
}

test('a map and the same map decoded from its canonical bytes have one fingerprint', async (t) => {
  const built = await creationMap();
  const decoded = decodeMap(encodeMap(built));
  t.not(JSON.stringify(decoded.topology), JSON.stringify(built.topology), 'the decoded map orders its keys differently (the case under test)');
  t.is(placementFingerprint(decoded), placementFingerprint(built));
});

test('down and up again leave placement as it was; a reweight moves it', async (t) => {
  const m1 = await creationMap();
  const m2 = applyChange(m1, { type: 'down', nodes: [1] }, 1000)!;
  const m3 = decodeMap(encodeMap(applyChange(m2, { type: 'up', nodes: [1] }, 2000)!));
  t.is(m3.epoch, 3);
  t.is(placementFingerprint(m2), placementFingerprint(m1), 'down is a routing fact, not a placement change');
  t.is(placementFingerprint(m3), placementFingerprint(m1), 'down then up, decoded from the wire');
  const m4 = applyChange(m3, { type: 'reweight', node: 1, weight: 0.5 }, 3000)!;
  t.not(placementFingerprint(m4), placementFingerprint(m3), 'a reweight changes placement');
});
