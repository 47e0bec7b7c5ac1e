/**
 * Placement rules: the CRUSH rule language (take / choose / chooseleaf / emit, firstn and
 * indep) run over a compiled map. A rule is prepared once per (map epoch, rule, pool size)
 * and then maps inputs without allocating (placeInto); place() is the convenient form that
 * returns a fresh object.
 */
import { PlacementError } from './errors.ts';
import { hashStart } from './hash.ts';
import type { CompiledMap } from './compile.ts';
import { NONE, type Rule } from './map.ts';
import { Context, NONE_REF, Shortfall, MAX_CONTEXT_POSITIONS } from './select.ts';
import { MAX_POSITIONS, validateRuleSteps } from './validate.ts';

/**
 * Shorthand for the common replicated rule: take the root, chooseleaf firstn `replicas`
 * of type `failureDomain`, emit.
 */
export interface ReplicatedRule {
  failureDomain: string;
  replicas: number;
}

/** A rule given by name or id (from the map's rules), as an object, or as the shorthand. */
export type RuleRef = string | number | Rule | ReplicatedRule;

/** Result of a placement: ordered leaf ids (primary first). */
export interface Placement {
  /**
   * Leaf ids, primary first. firstn: only filled positions (shorter than requested when
   * incomplete). indep: one entry per position, NONE (-1) where a position is unfilled.
   */
  members: number[];
  /** True when every position is filled; never a duplicate failure domain either way. */
  complete: boolean;
  /** Number of positions left unfilled. */
  missing: number;
  /** Why positions are missing: fewer usable failure domains than positions, or bounded retries ran out. */
  reason?: 'too-few-domains' | 'retries-exhausted';
}

interface PreparedStep {
  type: number;
  n: number;
  leaf: boolean;
  /** Contexts by take bucket index. */
  contexts: Map<number, Context>;
}

interface PreparedBlock {
  take: number;
  steps: PreparedStep[];
}

/** A rule ready to map inputs: resolved steps, counts and lazily built selection contexts. */
export class PreparedRule {
  readonly cm: CompiledMap;
  readonly rule: Rule;
  /** Pool size the counts were resolved with. */
  readonly size: number;
  readonly indep: boolean;
  /** Number of positions a complete placement has. */
  readonly width: number;
  /** Shortfall of the last placeInto (Shortfall.None when complete). */
  shortfall: Shortfall = Shortfall.None as Shortfall;
  private readonly blocks: PreparedBlock[];
  private readonly work: Int32Array;
  private readonly next: Int32Array;

  constructor(cm: CompiledMap, rule: Rule, size: number) {
    this.cm = cm;
    this.rule = rule;
    this.size = size;
    this.blocks = [];
    let indep = false;
    let width = 0;
    let maxWork = 1;
    let block: PreparedBlock | null = null;
    let blockWidth = 1;
    for (const s of rule.steps) {
      if (s.op === 'take') {
        block = { take: cm.bucketIndex.get(cm.map.buckets.find((b) => b.name === s.bucket)!.id)!, steps: [] };
        blockWidth = 1;
      } else if (s.op === 'emit') {
        this.blocks.push(block!);
        width += blockWidth;
        block = null;
      } else {
        const n = s.count > 0 ? s.count : size + s.count;
        if (!(n >= 1 && n <= MAX_CONTEXT_POSITIONS)) {
          throw new PlacementError(`rule "${rule.name}": step count ${s.count} with pool size ${size} gives ${n} positions (must be 1..${MAX_CONTEXT_POSITIONS})`);
        }
        indep = s.mode === 'indep';
        block!.steps.push({ type: cm.typeIndex.get(s.type)!, n, leaf: s.op === 'chooseleaf', contexts: new Map() });
        blockWidth *= n;
        maxWork = Math.max(maxWork, blockWidth);
      }
    }
    if (width > 4 * MAX_POSITIONS) throw new PlacementError(`rule "${rule.name}" yields ${width} positions (at most ${4 * MAX_POSITIONS})`);
    this.indep = indep;
    this.width = width;
    this.work = new Int32Array(maxWork);
    this.next = new Int32Array(maxWork);
  }

  private context(step: PreparedStep, take: number): Context {
    let c = step.contexts.get(take);
    if (c === undefined) {
      const key = `${take}:${step.type}:${step.n}`;
      c = this.cm.prepared.get(key) as Context | undefined;
      if (c === undefined) {
        c = new Context(this.cm, take, step.type, step.n);
        this.cm.prepared.set(key, c);
      }
      step.contexts.set(take, c);
    }
    return c;
  }

  /**
   * Maps input `x` (unsigned 32-bit) into `out` as leaf ids (indep: NONE for unfilled
   * positions). Returns the number of entries written: firstn writes the filled positions
   * only; indep always writes `width`. Allocates nothing once the contexts exist.
   * @throws RangeError if `out` is shorter than `width`.
   */
  placeInto(x: number, out: Int32Array): number {
    if (out.length < this.width) throw new RangeError(`output buffer holds ${out.length} entries, the rule needs ${this.width}`);
    const cm = this.cm;
    const hs = hashStart(x >>> 0);
    const indep = this.indep;
    let written = 0;
    let shortfall: Shortfall = Shortfall.None;
    for (const block of this.blocks) {
      let work = this.work;
      let next = this.next;
      work[0] = block.take;
      let len = 1;
      for (const step of block.steps) {
        let m = 0;
        for (let i = 0; i < len; i++) {
          const w = work[i];
          if (w === NONE_REF) {
            if (indep) for (let k = 0; k < step.n; k++) next[m++] = NONE_REF;
            continue;
          }
          const ctx = this.context(step, w);
          ctx.run(hs, step.leaf);
          if (ctx.shortfall > shortfall) shortfall = ctx.shortfall;
          for (let k = 0; k < step.n; k++) {
            const ref = step.leaf || step.type === -1 ? (ctx.posLeaf[k] >= 0 ? ~ctx.posLeaf[k] : NONE_REF) : ctx.posDomain[k];
            if (ref === NONE_REF) {
              if (shortfall === Shortfall.None) shortfall = Shortfall.TooFewDomains;
              if (!indep) continue;
            }
            next[m++] = ref;
          }
        }
        const t = work;
        work = next;
        next = t;
        len = m;
      }
      for (let i = 0; i < len; i++) {
        const ref = work[i];
        out[written++] = ref === NONE_REF ? NONE : cm.leafId[~ref];
      }
    }
    this.shortfall = shortfall;
    return written;
  }
}

function shorthandRule(r: ReplicatedRule): Rule {
  return {
    id: 0,
    name: `replicated-${r.failureDomain}-${r.replicas}`,
    steps: [{ op: 'take', bucket: '' }, { op: 'chooseleaf', mode: 'firstn', count: 0, type: r.failureDomain }, { op: 'emit' }],
  };
}

/**
 * Prepares `rule` for map `cm` and pool size `size` (the meaning of counts <= 0), caching
 * the result in `cm`. `size` defaults to `replicas` for the shorthand and is otherwise
 * required when a count is <= 0.
 * @throws PlacementError for an unknown rule name or id, a missing or bad size, or a rule
 *   that does not fit the map (MapValidationError for a malformed rule object).
 */
export function prepareRule(cm: CompiledMap, rule: RuleRef, size?: number): PreparedRule {
  let r: Rule;
  let key: string;
  if (typeof rule === 'string' || typeof rule === 'number') {
    const found = cm.rules.get(rule);
    if (!found) throw new PlacementError(`no rule ${typeof rule === 'string' ? `named "${rule}"` : `with id ${rule}`} in map epoch ${cm.epoch}`);
    r = found;
    key = `rule:${found.id}`;
  } else if ('failureDomain' in rule) {
    if (size === undefined) size = rule.replicas;
    key = `fd:${rule.failureDomain}:${rule.replicas}`;
    if (!cm.typeIndex.has(rule.failureDomain)) throw new PlacementError(`failure domain type "${rule.failureDomain}" is not declared by the map`);
    if (!Number.isInteger(rule.replicas) || rule.replicas < 1 || rule.replicas > MAX_POSITIONS) throw new PlacementError(`replicas ${rule.replicas} must be an integer in [1, ${MAX_POSITIONS}]`);
    r = shorthandRule(rule);
    r.steps[0] = { op: 'take', bucket: cm.map.buckets[cm.root].name };
    r.steps[1] = { op: 'chooseleaf', mode: 'firstn', count: rule.replicas, type: rule.failureDomain };
  } else {
    validateRuleSteps(rule, 'rule', new Set(cm.map.types), cm.map.leafType, new Set(cm.map.buckets.map((b) => b.name)));
    r = rule;
    key = `obj:${JSON.stringify(rule)}`;
  }
  const needsSize = r.steps.some((s) => (s.op === 'choose' || s.op === 'chooseleaf') && s.count <= 0);
  if (needsSize && size === undefined) throw new PlacementError(`rule "${r.name}" has a count relative to the pool size: pass a size`);
  const sz = size ?? 0;
  if (size !== undefined && (!Number.isInteger(size) || size < 1 || size > MAX_POSITIONS)) throw new PlacementError(`pool size ${size} must be an integer in [1, ${MAX_POSITIONS}]`);
  key += `@${sz}`;
  let pr = cm.prepared.get(key) as PreparedRule | undefined;
  if (pr === undefined) {
    pr = new PreparedRule(cm, r, sz);
    cm.prepared.set(key, pr);
  }
  return pr;
}

/**
 * Maps placement input `x` (unsigned 32-bit) to an ordered set of leaves under `rule`.
 * Deterministic for a given map and x, in every process. Never returns two leaves in one
 * failure domain of a choose step; an impossible request (more positions than usable
 * failure domains) gives `complete: false` with the reason, never a duplicate.
 * @throws PlacementError (see prepareRule).
 */
export function place(cm: CompiledMap, rule: RuleRef, x: number, size?: number): Placement {
  const pr = prepareRule(cm, rule, size);
  const out = new Int32Array(pr.width);
  const written = pr.placeInto(x, out);
  const members = Array.from(out.subarray(0, written));
  let missing = pr.indep ? members.filter((m) => m === NONE).length : pr.width - written;
  if (missing < 0) missing = 0;
  const result: Placement = { members, complete: missing === 0, missing };
  if (missing > 0) result.reason = pr.shortfall === Shortfall.RetriesExhausted ? 'retries-exhausted' : 'too-few-domains';
  return result;
}
