import test from 'ava';
import { compileMap, NONE, place, setLeafState, setLeafWeight } from '../../placement/index.ts';
import { FIXTURES, hostOf, mappings, withHostAdded } from './fixtures.ts';

/** Never two members of a set in one host (or rack, for the rack rules); never an unusable leaf. */
for (const f of FIXTURES) {
  test(`${f.name}: members of a set never share a failure domain, and are always usable`, (t) => {
    const keys = f.map.leaves.length >= 10000 ? 10000 : 20000;
    // Also after changes: a host added (graft), some leaves down, out or drained.
    let changed = withHostAdded(f);
    const victims = [f.map.leaves[1].id, f.map.leaves[f.map.leaves.length >> 1].id, f.map.leaves[f.map.leaves.length - 1].id];
    changed = setLeafState(changed, victims[0], { up: false });
    changed = setLeafState(changed, victims[1], { in: false });
    changed = setLeafWeight(changed, victims[2], 0);
    const rackOf = (leaf: number): number => (f.racks > 0 ? Math.floor((Math.min(hostOf(leaf), f.hosts - 1) * f.racks) / f.hosts) + (hostOf(leaf) >= f.hosts ? 0 : 0) : 0);
    const rules: [string, number, (l: number) => number][] = [
      ['replicated', 3, hostOf],
      ['erasure', 6, hostOf],
    ];
    if (f.racks >= 3) rules.push(['replicated-rack', 3, rackOf]);
    for (const map of [f.map, changed]) {
      const bad = new Set(victims.filter(() => map === changed));
      for (const [rule, size, domainOf] of rules) {
        const m = mappings(map, rule, size, keys);
        for (let i = 0; i < keys; i++) {
          const row = Array.from(m.leaves.subarray(i * size, (i + 1) * size)).filter((l) => l !== NONE);
          if (row.length !== size) t.fail(`${rule} key ${i}: ${row.length} of ${size} members`);
          if (new Set(row.map(domainOf)).size !== row.length) t.fail(`${rule} key ${i}: shared failure domain in ${row}`);
          if (row.some((l) => bad.has(l))) t.fail(`${rule} key ${i}: placed on an unusable leaf`);
        }
      }
    }
    t.pass();
  });
}

test('rack failure domain on a racked map: one member per rack', (t) => {
  const f = FIXTURES.find((x) => x.name === 'racks1000')!;
  const cm = compileMap(f.map);
  for (let x = 0; x < 5000; x++) {
    const p = place(cm, 'erasure-rack', x, 5);
    t.true(p.complete);
    const racks = p.members.map((l) => Math.floor((hostOf(l) * 5) / 50));
    if (new Set(racks).size !== 5) t.fail(`key ${x}: racks ${racks}`);
  }
  const six = place(cm, 'replicated-rack', 1, 6);
  t.deepEqual([six.complete, six.members.length, six.reason], [false, 5, 'too-few-domains']);
});
