/**
 * Ceph's crushtool as the same-run reference: converts a Cairn topology map into an
 * equivalent CRUSH map (same tree shape, types, leaf weights, straw2 buckets, rules with
 * the same failure domain, firstn / indep), compiles it with `crushtool -c`, and runs
 * `crushtool --test` for mappings and for timing (child CPU time from /usr/bin/time, since
 * the machine is shared and wall time is noisy). Leaves become osd.0..osd.N-1 in leaf-id
 * order (stable when hosts are added, since new leaves have higher ids); bucket ids keep
 * Cairn's except device buckets, which move closer to zero because crushtool sizes its
 * bucket array by the lowest id.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Mappings, TopologyMap } from '../../placement/index.ts';

/** A TopologyMap compiled for crushtool, with the osd -> leaf id translation. */
export interface CrushMap {
  dir: string;
  file: string;
  osdToLeaf: Int32Array;
}

/** True when crushtool and /usr/bin/time are installed. */
export function crushtoolAvailable(): boolean {
  const c = spawnSync('crushtool', ['-h'], { encoding: 'utf8' });
  const t = spawnSync('/usr/bin/time', ['-f', '%U', 'true'], { encoding: 'utf8' });
  return !c.error && !t.error;
}

/** Upper bounds of rack, host and device numbers of the maps being compared (build id scheme). */
export interface CrushLayout {
  racks: number;
  hosts: number;
  devices: number;
}

/** CRUSH text for `map` with rules 0 (firstn) and 1 (indep) over failure domain `domain`. */
export function crushText(map: TopologyMap, domain: string, layout: CrushLayout = { racks: 64, hosts: 1024, devices: 16 }): { text: string; osdToLeaf: Int32Array } {
  const leaves = [...map.leaves].sort((a, b) => a.id - b.id);
  const osdOf = new Map(leaves.map((l, i) => [l.id, i]));
  // CRUSH bucket ids must be stable across the maps compared (they are hashed) and dense:
  // crushtool sizes and initialises a per-mapping workspace by the lowest id, so sparse
  // ids would slow it down tenfold. Build-scheme ids are laid out in ranges sized by
  // `layout` (racks, then hosts, then devices); other ids are numbered in order.
  const bucketNo = new Map<number, number>();
  let spare = 2 + layout.racks + layout.hosts + layout.hosts * layout.devices;
  for (const b of [...map.buckets].sort((x, y) => y.id - x.id)) {
    const id = b.id;
    let n: number;
    if (id === -1) n = -1;
    else if (id >= -4097 && -id - 2 < layout.racks) n = -(2 + (-id - 2));
    else if (id >= -36865 && id <= -4098 && -id - 4098 < layout.hosts) n = -(2 + layout.racks + (-id - 4098));
    else if (id <= -65536 && Math.floor((-id - 65536) / 256) < layout.hosts && (-id - 65536) % 256 < layout.devices) {
      const x = -id - 65536;
      n = -(2 + layout.racks + layout.hosts + Math.floor(x / 256) * layout.devices + (x % 256));
    } else n = -spare++;
    bucketNo.set(id, n);
  }
  const byId = new Map(map.buckets.map((b) => [b.id, b]));
  const leafById = new Map(map.leaves.map((l) => [l.id, l]));
  const types = [map.leafType, ...[...map.types].reverse()];
  const out: string[] = [
    'tunable choose_local_tries 0',
    'tunable choose_local_fallback_tries 0',
    'tunable choose_total_tries 50',
    'tunable chooseleaf_descend_once 1',
    'tunable chooseleaf_vary_r 1',
    'tunable chooseleaf_stable 1',
    'tunable straw_calc_version 1',
    'tunable allowed_bucket_algs 54',
    '',
  ];
  leaves.forEach((l, i) => out.push(`device ${i} osd.${i}`));
  out.push('');
  types.forEach((t, i) => out.push(`type ${i} ${t}`));
  out.push('');
  const weightOf = new Map<number, number>();
  const weight = (id: number): number => {
    if (id >= 0) return leafById.get(id)!.weight;
    const got = weightOf.get(id);
    if (got !== undefined) return got;
    const w = byId.get(id)!.children.reduce((s, c) => s + weight(c), 0);
    weightOf.set(id, w);
    return w;
  };
  const emitted = new Set<number>();
  const emit = (id: number): void => {
    const b = byId.get(id)!;
    for (const c of b.children) if (c < 0 && !emitted.has(c)) emit(c);
    emitted.add(id);
    out.push(`${b.type} ${b.name} {`, `\tid ${bucketNo.get(id)}`, '\talg straw2', '\thash 0');
    for (const c of [...b.children].sort((x, y) => x - y)) {
      const name = c >= 0 ? `osd.${osdOf.get(c)}` : byId.get(c)!.name;
      out.push(`\titem ${name} weight ${weight(c).toFixed(5)}`);
    }
    out.push('}');
  };
  emit(map.root);
  const rootName = byId.get(map.root)!.name;
  out.push(
    '',
    'rule replicated {',
    '\tid 0',
    '\ttype replicated',
    '\tmin_size 1',
    '\tmax_size 16',
    `\tstep take ${rootName}`,
    `\tstep chooseleaf firstn 0 type ${domain}`,
    '\tstep emit',
    '}',
    'rule erasure {',
    '\tid 1',
    '\ttype erasure',
    '\tmin_size 1',
    '\tmax_size 16',
    '\tstep set_chooseleaf_tries 5',
    '\tstep set_choose_tries 100',
    `\tstep take ${rootName}`,
    `\tstep chooseleaf indep 0 type ${domain}`,
    '\tstep emit',
    '}',
    '',
  );
  return { text: out.join('\n'), osdToLeaf: Int32Array.from(leaves, (l) => l.id) };
}

/**
 * Writes and compiles the CRUSH equivalent of `map`.
 * @throws Error with crushtool's message if compilation fails.
 */
export function compileCrush(map: TopologyMap, layout?: CrushLayout, domain = 'host'): CrushMap {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-crush-'));
  const { text, osdToLeaf } = crushText(map, domain, layout);
  writeFileSync(join(dir, 'map.txt'), text);
  const file = join(dir, 'map.bin');
  const r = spawnSync('crushtool', ['-c', join(dir, 'map.txt'), '-o', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`crushtool -c failed: ${r.stderr || r.stdout}`);
  return { dir, file, osdToLeaf };
}

/** Removes the temporary files of `cm`. */
export function disposeCrush(cm: CrushMap): void {
  rmSync(cm.dir, { recursive: true, force: true });
}

/** Mappings of inputs first..first+keys-1 by crushtool (rule 0 firstn, 1 indep), as leaf ids. */
export function crushMappings(cm: CrushMap, rule: number, size: number, first: number, keys: number): Mappings {
  const r = spawnSync('crushtool', ['-i', cm.file, '--test', '--rule', String(rule), '--num-rep', String(size), '--min-x', String(first), '--max-x', String(first + keys - 1), '--show-mappings'], {
    encoding: 'utf8',
    maxBuffer: 1 << 30,
  });
  if (r.status !== 0) throw new Error(`crushtool --test failed: ${r.stderr}`);
  const leaves = new Int32Array(keys * size).fill(-1);
  for (const line of r.stdout.split('\n')) {
    const m = /^CRUSH rule \d+ x (\d+) \[([^\]]*)\]/.exec(line);
    if (!m) continue;
    const i = Number(m[1]) - first;
    const items = m[2] === '' ? [] : m[2].split(',');
    items.forEach((s, k) => {
      const osd = Number(s);
      // 2147483647 is CRUSH_ITEM_NONE (an unfilled indep position).
      leaves[i * size + k] = osd >= 0 && osd < cm.osdToLeaf.length ? cm.osdToLeaf[osd] : -1;
    });
  }
  return { keys, width: size, leaves };
}

/**
 * CPU seconds (user + sys) crushtool spends mapping `keys` inputs with `rule`, minus the
 * cost of a one-input run (map loading, start-up).
 */
export function crushCpuSeconds(cm: CrushMap, rule: number, size: number, keys: number): number {
  const run = (n: number): number => {
    const r = spawnSync('/usr/bin/time', ['-f', '%U %S', 'crushtool', '-i', cm.file, '--test', '--rule', String(rule), '--num-rep', String(size), '--min-x', '0', '--max-x', String(n - 1), '--show-statistics'], {
      encoding: 'utf8',
      maxBuffer: 1 << 26,
    });
    if (r.status !== 0) throw new Error(`crushtool --test failed: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    const [u, s] = lines[lines.length - 1].split(' ').map(Number);
    return u + s;
  };
  return Math.max(1e-6, run(keys) - run(1));
}
