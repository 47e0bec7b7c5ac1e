/**
 * Strict validation of a topology map (usually just parsed from JSON): every field present
 * with the right type and nothing else, ids in range and unique, names unique, weights
 * finite and non-negative, bucket types declared, every reference resolvable, a single
 * tree (no cycles, no shared children, nothing unreachable from the root), grafts naming
 * real nodes, rules well-formed.
 */
import { MapValidationError } from './errors.ts';
import { MAP_FORMAT, type Bucket, type Leaf, type Rule, type TopologyMap } from './map.ts';

/** Lowest bucket id; ids below are reserved for synthetic draw items. */
export const MIN_BUCKET_ID = -(2 ** 30);
/** Leaf ids are below this. */
export const LEAF_ID_LIMIT = 2 ** 31;
/** Largest |count| of a choose step and largest pool size. */
export const MAX_POSITIONS = 16;

const MAP_KEYS = ['format', 'epoch', 'types', 'leafType', 'root', 'buckets', 'leaves', 'rules', 'grafts'];
const BUCKET_KEYS = ['id', 'name', 'type', 'children'];
const LEAF_KEYS = ['id', 'name', 'capacityBytes', 'weight', 'drawWeight', 'up', 'in'];
const RULE_KEYS = ['id', 'name', 'steps'];

function fail(code: ConstructorParameters<typeof MapValidationError>[0], path: string, msg: string): never {
  throw new MapValidationError(code, path, msg);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkKeys(o: Record<string, unknown>, allowed: string[], required: string[], path: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) fail('bad-field', path, `unknown field "${k}"`);
  for (const k of required) if (!(k in o)) fail('bad-field', path, `missing field "${k}"`);
}

function checkName(v: unknown, path: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 128 || !/^[A-Za-z0-9._:-]+$/.test(v)) {
    fail('bad-field', path, `name ${JSON.stringify(v)} must be 1-128 characters of [A-Za-z0-9._:-]`);
  }
  return v;
}

function checkWeight(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail('bad-weight', path, `${String(v)} must be a finite number >= 0`);
  return v;
}

function checkBool(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') fail('bad-field', path, `${JSON.stringify(v)} must be true or false`);
  return v;
}

/**
 * Checks that `map` is a well-formed TopologyMap.
 * @throws MapValidationError (code and path name the first problem found).
 */
export function validateMap(map: unknown): asserts map is TopologyMap {
  if (!isObject(map)) fail('bad-encoding', '', 'a topology map must be a JSON object');
  if (!('format' in map)) fail('bad-format', 'format', 'missing format version');
  if (map.format !== MAP_FORMAT) fail('bad-format', 'format', `unsupported format ${JSON.stringify(map.format)} (this code reads ${MAP_FORMAT})`);
  checkKeys(map, MAP_KEYS, MAP_KEYS, '');
  if (!Number.isSafeInteger(map.epoch) || (map.epoch as number) < 0) fail('bad-field', 'epoch', `${String(map.epoch)} must be an integer >= 0`);

  if (!Array.isArray(map.types)) fail('bad-field', 'types', 'must be an array of type names');
  const types = new Set<string>();
  map.types.forEach((t, i) => {
    const name = checkName(t, `types[${i}]`);
    if (types.has(name)) fail('duplicate-name', `types[${i}]`, `type "${name}" declared twice`);
    types.add(name);
  });
  const leafType = checkName(map.leafType, 'leafType');
  if (types.has(leafType)) fail('duplicate-name', 'leafType', `leaf type "${leafType}" is also a bucket type`);

  if (!Array.isArray(map.buckets)) fail('bad-field', 'buckets', 'must be an array');
  if (!Array.isArray(map.leaves)) fail('bad-field', 'leaves', 'must be an array');
  const names = new Map<string, string>();
  const claimName = (name: string, path: string): void => {
    const prev = names.get(name);
    if (prev !== undefined) fail('duplicate-name', path, `name "${name}" is already used by ${prev}`);
    names.set(name, path);
  };

  const buckets = new Map<number, Bucket>();
  map.buckets.forEach((b: unknown, i) => {
    const p = `buckets[${i}]`;
    if (!isObject(b)) fail('bad-field', p, 'must be an object');
    checkKeys(b, BUCKET_KEYS, BUCKET_KEYS, p);
    const id = b.id;
    if (!Number.isInteger(id) || (id as number) >= 0 || (id as number) < MIN_BUCKET_ID) fail('bad-id', `${p}.id`, `bucket id ${String(id)} must be an integer in [${MIN_BUCKET_ID}, -1]`);
    if (buckets.has(id as number)) fail('duplicate-id', `${p}.id`, `bucket id ${String(id)} is used twice`);
    claimName(checkName(b.name, `${p}.name`), p);
    if (typeof b.type !== 'string' || !types.has(b.type)) fail('unknown-type', `${p}.type`, `type ${JSON.stringify(b.type)} is not declared in types`);
    if (!Array.isArray(b.children)) fail('bad-field', `${p}.children`, 'must be an array of ids');
    b.children.forEach((c, j) => {
      if (!Number.isInteger(c)) fail('bad-id', `${p}.children[${j}]`, `${String(c)} is not an integer id`);
    });
    buckets.set(id as number, b as unknown as Bucket);
  });

  const leaves = new Map<number, Leaf>();
  map.leaves.forEach((l: unknown, i) => {
    const p = `leaves[${i}]`;
    if (!isObject(l)) fail('bad-field', p, 'must be an object');
    checkKeys(l, LEAF_KEYS, LEAF_KEYS, p);
    const id = l.id;
    if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= LEAF_ID_LIMIT) fail('bad-id', `${p}.id`, `leaf id ${String(id)} must be an integer in [0, 2^31)`);
    if (leaves.has(id as number)) fail('duplicate-id', `${p}.id`, `leaf id ${String(id)} is used twice`);
    claimName(checkName(l.name, `${p}.name`), p);
    if (!Number.isSafeInteger(l.capacityBytes) || (l.capacityBytes as number) < 0) fail('bad-weight', `${p}.capacityBytes`, `${String(l.capacityBytes)} must be an integer >= 0`);
    checkWeight(l.weight, `${p}.weight`);
    checkWeight(l.drawWeight, `${p}.drawWeight`);
    checkBool(l.up, `${p}.up`);
    checkBool(l.in, `${p}.in`);
    leaves.set(id as number, l as unknown as Leaf);
  });

  // Tree shape: from the root, every child resolvable, no cycle, no node with two parents,
  // nothing left unreachable.
  if (!Number.isInteger(map.root)) fail('bad-id', 'root', `${String(map.root)} is not an integer id`);
  const root = map.root as number;
  if (!buckets.has(root)) fail('dangling-reference', 'root', `root bucket ${root} does not exist`);
  const bucketIndex = new Map<number, number>();
  map.buckets.forEach((b, i) => bucketIndex.set((b as Bucket).id, i));
  const parent = new Map<number, number>();
  // Iterative depth-first walk (a hostile map could nest deeper than the call stack).
  const onStack = new Set<number>([root]);
  const stack: { id: number; next: number }[] = [{ id: root, next: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const b = buckets.get(top.id)!;
    if (top.next === b.children.length) {
      onStack.delete(top.id);
      stack.pop();
      continue;
    }
    const j = top.next++;
    const c = b.children[j];
    const cp = `buckets[${bucketIndex.get(top.id)}].children[${j}]`;
    if (c >= 0 ? !leaves.has(c) : !buckets.has(c)) fail('dangling-reference', cp, `${c >= 0 ? 'leaf' : 'bucket'} ${c} does not exist`);
    if (onStack.has(c)) fail('cycle', cp, `bucket ${c} is its own descendant`);
    if (parent.has(c) || c === root) fail('shared-child', cp, `node ${c} already has parent ${parent.get(c) ?? 'none (it is the root)'}`);
    parent.set(c, top.id);
    if (c < 0) {
      onStack.add(c);
      stack.push({ id: c, next: 0 });
    }
  }
  map.buckets.forEach((b, i) => {
    const id = (b as Bucket).id;
    if (id !== root && !parent.has(id)) fail('unreachable', `buckets[${i}]`, `bucket ${id} is not reachable from the root`);
  });
  map.leaves.forEach((l, i) => {
    const id = (l as Leaf).id;
    if (!parent.has(id)) fail('unreachable', `leaves[${i}]`, `leaf ${id} is not reachable from the root`);
  });

  if (!Array.isArray(map.grafts)) fail('bad-field', 'grafts', 'must be an array');
  const grafted = new Set<string>();
  map.grafts.forEach((g: unknown, i) => {
    const p = `grafts[${i}]`;
    if (!isObject(g)) fail('bad-field', p, 'must be an object');
    checkKeys(g, ['node', 'extra'], ['node'], p);
    const node = g.node;
    if (!Number.isInteger(node)) fail('bad-id', `${p}.node`, `${String(node)} is not an integer id`);
    const n = node as number;
    if (n >= 0 ? !leaves.has(n) : !buckets.has(n)) fail('dangling-reference', `${p}.node`, `node ${n} does not exist`);
    if ('extra' in g) {
      if (n < 0) fail('bad-field', `${p}.extra`, 'only a leaf can gain extra draw weight');
      const e = checkWeight(g.extra, `${p}.extra`);
      if (!(e > 0)) fail('bad-weight', `${p}.extra`, 'extra draw weight must be > 0');
    } else if (n === root) {
      fail('bad-field', `${p}.node`, 'the root cannot be a graft');
    }
    const key = `${'extra' in g ? 'x' : 'n'}${n}`;
    if (grafted.has(key)) fail('duplicate-id', `${p}.node`, `node ${n} is grafted twice`);
    grafted.add(key);
  });

  if (!Array.isArray(map.rules)) fail('bad-field', 'rules', 'must be an array');
  const ruleIds = new Set<number>();
  const ruleNames = new Set<string>();
  const bucketNames = new Set([...buckets.values()].map((b) => b.name));
  map.rules.forEach((r: unknown, i) => {
    const p = `rules[${i}]`;
    if (!isObject(r)) fail('bad-field', p, 'must be an object');
    checkKeys(r, RULE_KEYS, RULE_KEYS, p);
    if (!Number.isInteger(r.id) || (r.id as number) < 0 || (r.id as number) > 0xffff) fail('bad-id', `${p}.id`, `rule id ${String(r.id)} must be an integer in [0, 65535]`);
    if (ruleIds.has(r.id as number)) fail('duplicate-id', `${p}.id`, `rule id ${String(r.id)} is used twice`);
    ruleIds.add(r.id as number);
    const name = checkName(r.name, `${p}.name`);
    if (ruleNames.has(name)) fail('duplicate-name', `${p}.name`, `rule name "${name}" is used twice`);
    ruleNames.add(name);
    validateRuleSteps(r as unknown as Rule, p, types, leafType, bucketNames);
  });
}

/**
 * Checks a rule's steps: `take` first, `emit` last, every emitted working set made of
 * leaves (the last choose before an emit is a chooseleaf or chooses the leaf type), known
 * bucket and type names, counts in [-16, 16], one mode per rule.
 * @throws MapValidationError with code 'bad-rule' or 'unknown-type' or 'dangling-reference'.
 */
export function validateRuleSteps(rule: Rule, path: string, types: Set<string>, leafType: string, bucketNames: Set<string>): void {
  const steps: unknown = rule.steps;
  if (!Array.isArray(steps) || steps.length === 0) fail('bad-rule', `${path}.steps`, 'must be a non-empty array');
  let state: 'start' | 'bucket' | 'leaf' = 'start';
  let mode: string | undefined;
  steps.forEach((s: unknown, j) => {
    const p = `${path}.steps[${j}]`;
    if (!isObject(s)) fail('bad-rule', p, 'must be an object');
    switch (s.op) {
      case 'take':
        checkKeys(s, ['op', 'bucket'], ['op', 'bucket'], p);
        if (state !== 'start') fail('bad-rule', p, 'take must start the rule or follow an emit');
        if (typeof s.bucket !== 'string' || !bucketNames.has(s.bucket)) fail('dangling-reference', `${p}.bucket`, `no bucket named ${JSON.stringify(s.bucket)}`);
        state = 'bucket';
        break;
      case 'choose':
      case 'chooseleaf': {
        checkKeys(s, ['op', 'mode', 'count', 'type'], ['op', 'mode', 'count', 'type'], p);
        if (state !== 'bucket') fail('bad-rule', p, `${s.op} needs buckets to choose from (a take or a choose of a bucket type before it)`);
        if (s.mode !== 'firstn' && s.mode !== 'indep') fail('bad-rule', `${p}.mode`, `mode ${JSON.stringify(s.mode)} must be "firstn" or "indep"`);
        if (mode !== undefined && s.mode !== mode) fail('bad-rule', `${p}.mode`, 'all choose steps of a rule must use the same mode');
        mode = s.mode;
        if (!Number.isInteger(s.count) || Math.abs(s.count as number) > MAX_POSITIONS) fail('bad-rule', `${p}.count`, `count ${String(s.count)} must be an integer in [-${MAX_POSITIONS}, ${MAX_POSITIONS}]`);
        if (typeof s.type !== 'string' || (!types.has(s.type) && s.type !== leafType)) fail('unknown-type', `${p}.type`, `type ${JSON.stringify(s.type)} is not declared`);
        state = s.op === 'chooseleaf' || s.type === leafType ? 'leaf' : 'bucket';
        break;
      }
      case 'emit':
        checkKeys(s, ['op'], ['op'], p);
        if (state !== 'leaf') fail('bad-rule', p, 'emit must follow a chooseleaf (or a choose of the leaf type): placements are leaves');
        state = 'start';
        break;
      default:
        fail('bad-rule', `${p}.op`, `unknown step ${JSON.stringify(s.op)} (take, choose, chooseleaf, emit)`);
    }
  });
  if (state !== 'start') fail('bad-rule', `${path}.steps`, 'a rule must end with emit');
}
