import test from 'ava';
import { utilization } from '../../placement/index.ts';
import { FIXTURES, hostOf, mappings, weightsOf } from './fixtures.ts';

/**
 * Balance of 3-replica placement. The CV of per-leaf load is compared with independent
 * random placement's √(mean 1/λ_leaf). One key set's CV over 40 leaves is itself a noisy
 * estimate (±11 %), so small maps pool CV² over disjoint key sets until the estimate is
 * within ±2.5 %; the bound tested is the issue's, 1.05 x ideal.
 */
function pooledCvRatio(name: string, lambda: number, trials: number): { ratio: number; worst: number } {
  const f = FIXTURES.find((x) => x.name === name)!;
  const keys = Math.round((lambda * f.map.leaves.length) / 3);
  let sum = 0;
  let worst = 0;
  for (let i = 0; i < trials; i++) {
    const u = utilization(mappings(f.map, 'replicated', 3, keys, i * keys), weightsOf(f.map));
    sum += u.cvRatio ** 2;
    worst = Math.max(worst, u.cvRatio);
  }
  return { ratio: Math.sqrt(sum / trials), worst };
}

for (const f of FIXTURES) {
  const trials = f.map.leaves.length <= 40 ? 25 : f.map.leaves.length <= 1000 ? 4 : 1;
  test(`λ=300, ${f.name}: per-leaf load CV within 1.05x of independent random placement`, (t) => {
    const { ratio } = pooledCvRatio(f.name, 300, trials);
    t.log(`${f.name}: CV / ideal = ${ratio.toFixed(4)} (pooled over ${trials} key sets)`);
    t.true(ratio <= 1.05, `CV ratio ${ratio}`);
  });
}

// racks40 is drawn flat (10 domains: one ranking over all hosts, see select.ts) and so
// places exactly like flat40; its λ=300 test above covers it.
for (const name of ['flat40', 'mixed40']) {
  test(`λ=30,000, ${name}: per-leaf load CV within 1.05x of independent random placement`, (t) => {
    const { ratio } = pooledCvRatio(name, 30000, 20);
    t.log(`${name}: CV / ideal = ${ratio.toFixed(4)} at λ=30,000 (pooled over 20 key sets)`);
    t.true(ratio <= 1.05, `CV ratio ${ratio}`);
  });
}

test('mixed weights (40 leaves, half the hosts 2x): each class within ±1% of its weight share at λ=30,000', (t) => {
  const f = FIXTURES.find((x) => x.name === 'mixed40')!;
  const keys = (30000 * 40) / 3;
  const m = mappings(f.map, 'replicated', 3, keys);
  const cls = [0, 0];
  const primary = [0, 0];
  for (let i = 0; i < m.leaves.length; i++) {
    const c = hostOf(m.leaves[i]) < 5 ? 0 : 1;
    cls[c]++;
    if (i % 3 === 0) primary[c]++;
  }
  const light = cls[0] / (keys * 3) / (1 / 3) - 1;
  const heavy = cls[1] / (keys * 3) / (2 / 3) - 1;
  const primaryLight = primary[0] / keys / (1 / 3) - 1;
  t.log(`light ${(light * 100).toFixed(3)}%, heavy ${(heavy * 100).toFixed(3)}%, primaries on light ${(primaryLight * 100).toFixed(3)}% (CRUSH: +5.8% / -2.9%)`);
  t.true(Math.abs(light) <= 0.01, `light class off by ${light}`);
  t.true(Math.abs(heavy) <= 0.01, `heavy class off by ${heavy}`);
  t.true(Math.abs(primaryLight) <= 0.01, `primaries off by ${primaryLight}`);
});
