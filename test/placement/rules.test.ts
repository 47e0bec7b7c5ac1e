import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import {
  compileMap,
  decodePartitionLeafId,
  generateMap,
  inclusionProbabilities,
  MapValidationError,
  NONE,
  place,
  PlacementError,
  prepareRule,
  setLeafState,
  solveCorrections,
  type Rule,
} from '../../placement/index.ts';
import { inclusionTargets } from '../../placement/corrections.ts';
import { goldenVectors } from './golden.ts';

const host = (leaf: number): number => decodePartitionLeafId(leaf).host;

test('golden vectors: placements are pinned, and a fresh process computes the same', (t) => {
  const pinned = JSON.parse(readFileSync(new URL('./golden.json', import.meta.url), 'utf8'));
  const here = goldenVectors();
  t.deepEqual(here, pinned);
  const child = execFileSync(process.execPath, ['--import', 'tsx', new URL('./golden.ts', import.meta.url).pathname], { encoding: 'utf8', maxBuffer: 1 << 24 });
  t.deepEqual(JSON.parse(child), pinned);
});

test('the shorthand {failureDomain, replicas} is the map rule "replicated" at that size', (t) => {
  const cm = compileMap(generateMap({ hosts: 6, devices: 2, partitions: 2 }));
  for (let x = 0; x < 500; x++) t.deepEqual(place(cm, { failureDomain: 'host', replicas: 3 }, x), place(cm, 'replicated', x, 3));
  t.deepEqual(place(cm, 0, 9, 3), place(cm, 'replicated', 9, 3));
});

test('more positions than failure domains: a typed partial result, never a duplicate', (t) => {
  const m = generateMap({ hosts: 4, devices: 2, partitions: 2 });
  const cm = compileMap(m);
  for (let x = 0; x < 300; x++) {
    const f = place(cm, 'replicated', x, 6);
    t.false(f.complete);
    t.is(f.missing, 2);
    t.is(f.reason, 'too-few-domains');
    t.is(f.members.length, 4);
    t.is(new Set(f.members.map(host)).size, 4);
    const e = place(cm, 'erasure', x, 6);
    t.is(e.members.length, 6);
    t.is(e.members.filter((l) => l === NONE).length, 2);
    t.is(new Set(e.members.filter((l) => l !== NONE).map(host)).size, 4);
    t.is(e.reason, 'too-few-domains');
  }
  // Every host down: nothing can be placed, and it says so.
  let dead = m;
  for (const l of m.leaves) dead = setLeafState(dead, l.id, { up: false });
  const none = place(compileMap(dead), 'erasure', 5, 3);
  t.deepEqual(none, { members: [NONE, NONE, NONE], complete: false, missing: 3, reason: 'too-few-domains' });
});

test('bad requests throw PlacementError or MapValidationError and do not change the map', (t) => {
  const m = generateMap({ hosts: 4, devices: 1, partitions: 2 });
  const before = JSON.stringify(m);
  const cm = compileMap(m);
  t.throws(() => place(cm, 'nope', 1, 3), { instanceOf: PlacementError });
  t.throws(() => place(cm, 77, 1, 3), { instanceOf: PlacementError });
  t.throws(() => place(cm, 'replicated', 1), { instanceOf: PlacementError });
  t.throws(() => place(cm, 'replicated', 1, 0), { instanceOf: PlacementError });
  t.throws(() => place(cm, 'replicated', 1, 17), { instanceOf: PlacementError });
  t.throws(() => place(cm, { failureDomain: 'shelf', replicas: 3 }, 1), { instanceOf: PlacementError });
  t.throws(() => place(cm, { failureDomain: 'host', replicas: 0 }, 1), { instanceOf: PlacementError });
  const bad: Rule = { id: 9, name: 'bad', steps: [{ op: 'take', bucket: 'root' }, { op: 'emit' }] };
  t.throws(() => place(cm, bad, 1, 3), { instanceOf: MapValidationError });
  t.throws(() => prepareRule(cm, 'replicated', 3).placeInto(1, new Int32Array(2)), { instanceOf: RangeError });
  t.is(JSON.stringify(m), before);
});

test('multi-step rule: two racks, two hosts in each; leaf-type choose; take of a sub-bucket', (t) => {
  const m = generateMap({ hosts: 12, devices: 2, partitions: 3, racks: 4 });
  const cm = compileMap(m);
  const rackOf = (leaf: number): number => Math.floor((host(leaf) * 4) / 12);
  const twoByTwo: Rule = {
    id: 10,
    name: 'two-by-two',
    steps: [
      { op: 'take', bucket: 'root' },
      { op: 'choose', mode: 'firstn', count: 2, type: 'rack' },
      { op: 'chooseleaf', mode: 'firstn', count: 2, type: 'host' },
      { op: 'emit' },
    ],
  };
  const perRack = new Map<number, number>();
  for (let x = 0; x < 2000; x++) {
    const p = place(cm, twoByTwo, x);
    t.true(p.complete);
    t.is(p.members.length, 4);
    t.is(rackOf(p.members[0]), rackOf(p.members[1]));
    t.is(rackOf(p.members[2]), rackOf(p.members[3]));
    t.not(rackOf(p.members[0]), rackOf(p.members[2]));
    t.is(new Set(p.members.map(host)).size, 4);
    for (const l of p.members) perRack.set(rackOf(l), (perRack.get(rackOf(l)) ?? 0) + 1);
  }
  t.is(perRack.size, 4);
  for (const c of perRack.values()) t.true(Math.abs(c / 2000 - 1) < 0.1, `rack load ${c}`);
  const leaves: Rule = { id: 11, name: 'three-partitions-of-rack1', steps: [{ op: 'take', bucket: 'rack1' }, { op: 'choose', mode: 'indep', count: 3, type: 'partition' }, { op: 'emit' }] };
  for (let x = 0; x < 500; x++) {
    const p = place(cm, leaves, x);
    t.is(new Set(p.members).size, 3);
    for (const l of p.members) t.is(rackOf(l), 1);
  }
  const rackRule = place(cm, 'erasure-rack', 3, 4);
  t.is(new Set(rackRule.members.map(rackOf)).size, 4);
});

test('multi-pick corrections: exact inclusion probabilities, matching brute-force enumeration', (t) => {
  const exact = (w: number[], n: number): number[] => {
    const pi = w.map(() => 0);
    const W = w.reduce((a, b) => a + b, 0);
    const rec = (used: number[], p: number, left: number): void => {
      if (left === 0) return;
      const rest = W - used.reduce((a, i) => a + w[i], 0);
      w.forEach((wi, i) => {
        if (used.includes(i)) return;
        pi[i] += (p * wi) / rest;
        rec([...used, i], (p * wi) / rest, left - 1);
      });
    };
    rec([], 1, n);
    return pi;
  };
  for (const [w, n] of [
    [[1, 1, 1, 1, 1, 2, 2, 2, 2, 2], 3],
    [[1, 2, 3, 4, 5, 6, 7], 3],
    [[0.01, 1, 1, 5, 0.5, 2, 2], 4],
    [[3, 1, 1, 1, 1, 2], 2],
  ] as [number[], number][]) {
    const got = inclusionProbabilities(w, n);
    exact(w, n).forEach((e, i) => t.true(Math.abs(got[i] - e) < 1e-12, `π ${got[i]} vs ${e}`));
    const { q, residual } = solveCorrections(w, n);
    t.true(residual < 1e-10);
    // Targets are n·w/W, capped at 1 (a domain holds at most one member); the 5 above is capped
    // (its draw weight is then huge, and the brute force loses digits subtracting it: 1e-6).
    const target = inclusionTargets(w, n);
    exact(Array.from(q), n).forEach((p, i) => t.true(Math.abs(p / target[i] - 1) < 1e-6, `corrected inclusion ${p} vs ${target[i]}`));
  }
});
