import test from 'ava';
import { movement, NONE, removeHost, setLeafState, setLeafWeight } from '../../placement/index.ts';
import { FIXTURES, mappings, withHostAdded, type Fixture } from './fixtures.ts';

/**
 * Data movement when the map changes, counted per (key, slot): a slot moved when its leaf
 * did not hold the key before (analysis.ts). The optimum is the data that must arrive
 * somewhere (e.g. exactly the pairs on an added host). The strict positional count (a leaf
 * that merely changed slot) is logged too.
 */
const RULES = [
  ['replicated', 3],
  ['erasure', 6],
] as const;

function keysFor(f: Fixture): number {
  return f.map.leaves.length >= 10000 ? 60000 : 100000;
}

for (const f of FIXTURES.filter((x) => x.name !== 'racks40')) {
  for (const [rule, size] of RULES) {
    test(`${f.name} ${rule} ${size}: add a host <= 1.05x optimal; remove a host, weight 0 <= 1.10x; out moves only its pairs`, (t) => {
      const keys = keysFor(f);
      const base = mappings(f.map, rule, size, keys);
      const added = movement(base, mappings(withHostAdded(f), rule, size, keys));
      const removed = movement(base, mappings(removeHost(f.map, 3), rule, size, keys));
      const leaf = f.map.leaves[Math.floor(f.map.leaves.length / 3)].id;
      const zero = movement(base, mappings(setLeafWeight(f.map, leaf, 0), rule, size, keys));
      t.log(
        `add host ${added.ratio.toFixed(4)}x (positional ${added.positionalRatio.toFixed(4)}x, ${added.optimal} pairs must move); ` +
          `remove host ${removed.ratio.toFixed(4)}x (positional ${removed.positionalRatio.toFixed(4)}x); weight 0 ${zero.ratio.toFixed(4)}x (${zero.optimal} pairs)`,
      );
      t.true(added.optimal > 0 && added.ratio <= 1.05, `add host ${added.ratio}`);
      t.true(removed.optimal > 0 && removed.ratio <= 1.1, `remove host ${removed.ratio}`);
      t.true(zero.optimal > 0 && zero.ratio <= 1.1, `weight 0 ${zero.ratio}`);

      // Out: exactly the (key, slot) pairs that were on the leaf change, nothing else.
      const out = mappings(setLeafState(f.map, leaf, { in: false }), rule, size, keys);
      let onLeaf = 0;
      for (let i = 0; i < base.leaves.length; i++) {
        const was = base.leaves[i];
        const now = out.leaves[i];
        if (was === leaf) {
          onLeaf++;
          if (now === leaf) t.fail(`key ${Math.floor(i / size)} still on the out leaf`);
        } else if (now !== was) {
          t.fail(`key ${Math.floor(i / size)} slot ${i % size}: ${was} -> ${now} although it was not on the out leaf`);
          break;
        }
      }
      t.true(onLeaf > 0);
    });
  }
}

for (const f of FIXTURES.filter((x) => ['flat40', 'racks1000', 'flat10000'].includes(x.name))) {
  test(`${f.name} erasure 4+2 (indep): a failed member changes only its own position, also with two failures`, (t) => {
    const keys = f.map.leaves.length >= 10000 ? 60000 : 30000;
    const base = mappings(f.map, 'erasure', 6, keys);
    const a = f.map.leaves[7].id;
    const b = f.map.leaves[f.map.leaves.length - 5].id;
    const one = mappings(setLeafState(f.map, a, { up: false }), 'erasure', 6, keys);
    const two = mappings(setLeafState(setLeafState(f.map, a, { up: false }), b, { up: false }), 'erasure', 6, keys);
    let hits = 0;
    for (let i = 0; i < base.leaves.length; i++) {
      if (base.leaves[i] === a) {
        hits++;
        if (one.leaves[i] === a || one.leaves[i] === NONE) t.fail(`position ${i % 6} of key ${Math.floor(i / 6)} not replaced`);
      } else if (one.leaves[i] !== base.leaves[i]) {
        t.fail(`key ${Math.floor(i / 6)} position ${i % 6} changed without a failure there`);
        break;
      }
      if (base.leaves[i] !== a && base.leaves[i] !== b && two.leaves[i] !== base.leaves[i]) {
        t.fail(`two failures: key ${Math.floor(i / 6)} position ${i % 6} changed without a failure there`);
        break;
      }
    }
    t.true(hits > 0);
  });
}
