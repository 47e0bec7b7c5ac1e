/**
 * `npm run bench -- placement`: Cairn's placement against Ceph's CRUSH (crushtool, same
 * run, same topologies) — mapping rates for a 3-replica firstn rule and a 4+2 indep rule on
 * 40, 1,000 and 10,000 leaves (flat and racked), balance (CV of per-leaf load against
 * independent random placement, and the mixed-weight class shares), and data movement when
 * a host is added or removed, a leaf's weight is set to 0, or a leaf is marked out.
 * Rates are CPU time (user + sys) of the mapping work on both sides, because the machine
 * is shared and wall time is noisy. Progress goes to stderr, one JSON object to stdout.
 *
 * Options: --quick (fewer keys, for a smoke run).
 */
import { spawnSync } from 'node:child_process';
import {
  addHosts,
  compileMap,
  generateMap,
  mapKeys,
  movement,
  parseWeightSpec,
  prepareRule,
  removeHost,
  setLeafState,
  setLeafWeight,
  utilization,
  type Mappings,
  type Movement,
  type TopologyMap,
} from '../../placement/index.ts';
import { compileCrush, crushCpuSeconds, crushMappings, crushtoolAvailable, disposeCrush, type CrushMap } from './crush.ts';

const quick = process.argv.includes('--quick');
const scale = quick ? 0.1 : 1;
const log = (s: string): void => void process.stderr.write(`[placement] ${s}\n`);

interface Spec {
  name: string;
  hosts: number;
  devices: number;
  partitions: number;
  racks: number;
  weights?: string;
}

const MAPS: Spec[] = [
  { name: 'flat40', hosts: 10, devices: 1, partitions: 4, racks: 0 },
  { name: 'racks40', hosts: 10, devices: 1, partitions: 4, racks: 2 },
  { name: 'flat1000', hosts: 50, devices: 4, partitions: 5, racks: 0 },
  { name: 'racks1000', hosts: 50, devices: 4, partitions: 5, racks: 5 },
  { name: 'flat10000', hosts: 500, devices: 4, partitions: 5, racks: 0 },
  { name: 'racks10000', hosts: 500, devices: 4, partitions: 5, racks: 20 },
];
const MIXED: Spec = { name: 'mixed40', hosts: 10, devices: 1, partitions: 4, racks: 0, weights: '1x5,2x5' };

const RULES = [
  { key: 'replicated3', rule: 'replicated', crushRule: 0, size: 3 },
  { key: 'erasure4+2', rule: 'erasure', crushRule: 1, size: 6 },
] as const;

/** CRUSH id layout covering `s` and `s` plus one host (see crush.ts). */
function layout(s: Spec): { racks: number; hosts: number; devices: number } {
  return { racks: Math.max(1, s.racks), hosts: s.hosts + 1, devices: s.devices };
}

function build(s: Spec): TopologyMap {
  return generateMap({ hosts: s.hosts, devices: s.devices, partitions: s.partitions, racks: s.racks, weights: s.weights ? parseWeightSpec(s.weights) : undefined });
}

function oursCpuRate(map: TopologyMap, rule: string, size: number, keys: number): number {
  const pr = prepareRule(compileMap(map), rule, size);
  const out = new Int32Array(pr.width);
  for (let x = 0; x < Math.min(keys, 20000); x++) pr.placeInto(x, out); // warm up
  const c0 = process.cpuUsage();
  for (let x = 0; x < keys; x++) pr.placeInto(x, out);
  const c = process.cpuUsage(c0);
  return keys / ((c.user + c.system) / 1e6);
}

function ours(map: TopologyMap, rule: string, size: number, keys: number, first = 0): Mappings {
  return mapKeys(prepareRule(compileMap(map), rule, size), first, keys);
}

function weights(map: TopologyMap): Map<number, number> {
  return new Map(map.leaves.filter((l) => l.up && l.in).map((l) => [l.id, l.weight]));
}

const round = (v: number, d = 4): number => Math.round(v * 10 ** d) / 10 ** d;

/** crushtool mappings with some leaves marked out (osdmap reweight 0, `--weight osd 0`). */
function crushMappingsOut(cm: CrushMap, rule: number, size: number, keys: number, outLeaves: number[]): Mappings {
  const extra: string[] = [];
  for (const leaf of outLeaves) extra.push('--weight', String(cm.osdToLeaf.indexOf(leaf)), '0');
  const r = spawnSync('crushtool', ['-i', cm.file, '--test', '--rule', String(rule), '--num-rep', String(size), '--min-x', '0', '--max-x', String(keys - 1), '--show-mappings', ...extra], {
    encoding: 'utf8',
    maxBuffer: 1 << 30,
  });
  if (r.status !== 0) throw new Error(`crushtool failed: ${r.stderr}`);
  const leaves = new Int32Array(keys * size).fill(-1);
  for (const line of r.stdout.split('\n')) {
    const m = /^CRUSH rule \d+ x (\d+) \[([^\]]*)\]/.exec(line);
    if (!m) continue;
    (m[2] === '' ? [] : m[2].split(',')).forEach((s, k) => {
      const osd = Number(s);
      leaves[Number(m[1]) * size + k] = osd >= 0 && osd < cm.osdToLeaf.length ? cm.osdToLeaf[osd] : -1;
    });
  }
  return { keys, width: size, leaves };
}

function mv(m: Movement): Record<string, number> {
  return { ratio: round(m.ratio), positionalRatio: round(m.positionalRatio), optimal: m.optimal, moved: m.moved, movedFraction: round(m.movedFraction, 6) };
}

const crush = crushtoolAvailable();
const cephVersion = crush ? spawnSync('dpkg-query', ['-W', '-f', '${Version}', 'ceph-base'], { encoding: 'utf8' }).stdout.trim() || 'unknown' : null;
if (!crush) log('crushtool or /usr/bin/time not found (apt-get install -y ceph-base time): reporting Cairn alone');

const result: Record<string, unknown> = {
  suite: 'placement',
  reference: crush ? `crushtool from ceph-base ${cephVersion}` : null,
  timing: 'CPU seconds (user+sys) of the mapping work; rates in mappings per CPU second',
  node: process.version,
};

// ---------------------------------------------------------------- rates
const rates: Record<string, unknown>[] = [];
for (const s of MAPS) {
  const map = build(s);
  const cm = crush ? compileCrush(map, layout(s)) : null;
  const row: Record<string, unknown> = { map: s.name, leaves: map.leaves.length, hosts: s.hosts, racks: s.racks };
  for (const r of RULES) {
    const keys = Math.max(2000, Math.round((map.leaves.length <= 40 ? 1_000_000 : s.name === 'flat10000' ? 40_000 : 200_000) * scale));
    log(`rate ${s.name} ${r.key}: ${keys} keys`);
    const mine = oursCpuRate(map, r.rule, r.size, keys);
    // crushtool is slow on the wide flat map: time it on half the keys there.
    const crushKeys = s.name === 'flat10000' ? Math.round(keys / 2) : keys;
    const theirs = cm ? crushKeys / crushCpuSeconds(cm, r.crushRule, r.size, crushKeys) : null;
    row[r.key] = { cairn: Math.round(mine), crushtool: theirs === null ? null : Math.round(theirs), ratio: theirs === null ? null : round(mine / theirs, 2), cairnMicrosPerMapping: round(1e6 / mine, 3) };
  }
  if (cm) disposeCrush(cm);
  rates.push(row);
}
result.rates = rates;
// Cost growth on racked maps (3 replicas): CPU per mapping relative to 40 leaves, against
// ln(leaves) relative to ln 40, for both engines.
const racked = rates.filter((r) => (r.racks as number) > 0);
result.rackedCostGrowth = racked.map((r) => ({
  map: r.map,
  leaves: r.leaves,
  costVs40: round((racked[0].replicated3 as { cairn: number }).cairn / (r.replicated3 as { cairn: number }).cairn, 3),
  crushtoolCostVs40: crush ? round((racked[0].replicated3 as { crushtool: number }).crushtool / (r.replicated3 as { crushtool: number }).crushtool, 3) : null,
  lnLeavesVs40: round(Math.log(r.leaves as number) / Math.log(40), 3),
}));

// ---------------------------------------------------------------- balance
const balance: Record<string, unknown>[] = [];
{
  const map = build(MIXED);
  const keys = Math.round((30000 * 40 * scale) / 3);
  log(`balance mixed40 λ=30000: ${keys} keys`);
  const cls = (m: Mappings): Record<string, number> => {
    const c = [0, 0];
    const p = [0, 0];
    for (let i = 0; i < m.leaves.length; i++) {
      const light = Math.floor(m.leaves[i] / 65536) < 5 ? 0 : 1;
      c[light]++;
      if (i % 3 === 0) p[light]++;
    }
    return {
      lightShareError: round((c[0] / (keys * 3) / (1 / 3) - 1) * 100, 3),
      heavyShareError: round((c[1] / (keys * 3) / (2 / 3) - 1) * 100, 3),
      primaryLightShareError: round((p[0] / keys / (1 / 3) - 1) * 100, 3),
      cvRatio: round(utilization(m, weights(map)).cvRatio, 3),
    };
  };
  const cm = crush ? compileCrush(map, layout(MIXED)) : null;
  balance.push({
    what: 'mixed weights, 40 leaves (10 hosts, half at 2x), 3 replicas, lambda 30000: class share errors in %',
    cairn: cls(ours(map, 'replicated', 3, keys)),
    crushtool: cm ? cls(crushMappings(cm, 0, 3, 0, keys)) : null,
  });
  if (cm) disposeCrush(cm);
}
for (const [name, lambda, trialsOurs, trialsCrush] of [
  ['flat40', 30000, 20, 5],
  ['flat40', 300, 25, 25],
  ['flat1000', 300, 4, 4],
  ['racks1000', 300, 4, 4],
  ['flat10000', 300, 1, 0],
  ['racks10000', 300, 1, 1],
] as const) {
  const s = MAPS.find((m) => m.name === name)!;
  const map = build(s);
  const keys = Math.max(1000, Math.round((lambda * map.leaves.length * scale) / 3));
  const cm = crush && trialsCrush > 0 ? compileCrush(map, layout(s)) : null;
  const pooled = (f: (first: number) => Mappings, trials: number): number => {
    let sum = 0;
    for (let t = 0; t < trials; t++) sum += utilization(f(t * keys), weights(map)).cvRatio ** 2;
    return round(Math.sqrt(sum / trials), 4);
  };
  log(`balance ${name} λ=${lambda}: ${trialsOurs} x ${keys} keys`);
  balance.push({
    what: `${name}, 3 replicas, lambda ${lambda}: per-leaf CV / CV of independent random placement (pooled over disjoint key sets)`,
    cairn: { cvRatio: pooled((first) => ours(map, 'replicated', 3, keys, first), trialsOurs), keySets: trialsOurs },
    crushtool: cm ? { cvRatio: pooled((first) => crushMappings(cm, 0, 3, first, keys), trialsCrush), keySets: trialsCrush } : null,
  });
  if (cm) disposeCrush(cm);
}
result.balance = balance;

// ---------------------------------------------------------------- movement
const moves: Record<string, unknown>[] = [];
for (const name of ['flat40', 'mixed40', 'flat1000', 'racks1000', 'racks10000']) {
  const s = name === 'mixed40' ? MIXED : MAPS.find((m) => m.name === name)!;
  const map = build(s);
  const keys = Math.max(2000, Math.round((map.leaves.length >= 10000 ? 60000 : 100000) * scale));
  const dev = Array.from({ length: s.devices }, () => ({ capacityBytes: 2 ** 40, partitions: s.partitions }));
  const leaf = map.leaves[Math.floor(map.leaves.length / 3)].id;
  const changes: [string, TopologyMap, number[]][] = [
    ['add a host', addHosts(map, [{ id: s.hosts, rack: s.racks > 0 ? s.racks - 1 : undefined, devices: dev }]), []],
    ['remove a host', removeHost(map, 3), []],
    ['set a leaf weight to 0', setLeafWeight(map, leaf, 0), []],
    ['mark a leaf out', setLeafState(map, leaf, { in: false }), [leaf]],
  ];
  const cm = crush ? compileCrush(map, layout(s)) : null;
  for (const r of RULES) {
    log(`movement ${name} ${r.key}: ${keys} keys`);
    const a = ours(map, r.rule, r.size, keys);
    const ca = cm ? crushMappings(cm, r.crushRule, r.size, 0, keys) : null;
    for (const [change, next, outLeaves] of changes) {
      let theirs: Movement | null = null;
      if (cm && ca) {
        if (outLeaves.length > 0) theirs = movement(ca, crushMappingsOut(cm, r.crushRule, r.size, keys, outLeaves));
        else {
          const cn = compileCrush(next, layout(s));
          theirs = movement(ca, crushMappings(cn, r.crushRule, r.size, 0, keys));
          disposeCrush(cn);
        }
      }
      moves.push({ map: name, rule: r.key, change, cairn: mv(movement(a, ours(next, r.rule, r.size, keys))), crushtool: theirs ? mv(theirs) : null });
    }
  }
  if (cm) disposeCrush(cm);
}
result.movement = moves;
result.notes = [
  'movement: a (key, slot) pair moved when its leaf did not hold the key before; positionalRatio also counts a leaf that only changed slot; optimal = data that must arrive (sum of per-leaf count growth)',
  'CRUSH "remove a host" and "set a leaf weight to 0" are crush weight changes; "mark a leaf out" is crushtool --weight osd 0 (osdmap reweight)',
  'racks40 draws flat (<= 32 domains) and so places exactly like flat40',
];
process.stdout.write(`${JSON.stringify(result, null, 1)}\n`);
