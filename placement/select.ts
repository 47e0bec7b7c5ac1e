/**
 * Selection of `n` distinct failure domains below one bucket: the body of a choose /
 * chooseleaf step. Three passes, each with one job:
 *
 * 1. The race (first choice). Every position k draws candidates with straw2 (ln of a
 *    uniform hash over weight, Ceph's straw2; here with xxHash32 and a deterministic ln) and
 *    the positions take turns in the order of their draw values, a taken domain being
 *    skipped. Because every candidate is a fresh weighted draw among the untaken domains,
 *    the set is successive sampling, whose inclusion probabilities corrections.ts turns
 *    exact by drawing with corrected weights. Taking turns by draw value (rather than
 *    position 0 first, as CRUSH's firstn does) makes the positions symmetric — each
 *    position, the primary included, is balanced — and halves how often one position's
 *    change shifts another. When the bucket's children are the domains themselves ("flat"),
 *    a position's candidates are its own ranking of the domains (first untaken), so a
 *    new domain displaces at most what it takes; otherwise each retry is a new descent.
 * 2. Acceptance. The race draws with weights frozen at the last compaction. A chosen leaf
 *    that is down, out, or whose weight is now below its draw weight (by a per-(key, leaf)
 *    coin with probability weight/drawWeight) is rejected — at its own position only.
 * 3. In-place replacement. Each rejected or unfilled position draws again on the current
 *    tree (live weights) until it finds a usable leaf in a domain that no other position
 *    holds. Only the positions that must change change; a failed member of an indep set
 *    changes its own position and nothing else.
 *
 * Grafts (subtrees added since compaction) are drawn as extra items of the race beside the
 * compacted tree, so an added host only attracts data and never reshuffles the old tree.
 * Everything here runs on preallocated typed arrays: no allocation per placement.
 */
import { solveCorrections, solveExtraWeight } from './corrections.ts';
import { lnUnit } from './detmath.ts';
import { hashFinish, hashKey, premul } from './hash.ts';
import { domainOf, isUnder, type CompiledMap } from './compile.ts';

/** Largest number of positions one context fills. */
export const MAX_CONTEXT_POSITIONS = 16;
/** Retries of one position in the race (hierarchical contexts) and in replacement. */
export const MAX_ATTEMPTS = 100;
/** Retries of one in-place replacement draw before the position is reported unfilled. */
export const MAX_REPLACEMENT_ATTEMPTS = 100;
/**
 * A context whose compacted tree has at most this many domains below the take bucket is
 * drawn flat (one ranking over all its domains) even when buckets (racks) lie between: for
 * few domains collisions are frequent and the flat ranking keeps sets stablest, while the
 * cost (one hash per domain and position) stays small.
 */
export const FLAT_DOMAIN_LIMIT = 32;

const R_ATTEMPT = 0x01000000;
const R_LEAF = 0x02000000;
const R_COIN = 0x03000000;
const R_REPLACE = 0x04000000;
const R_PARENT_COIN = 0x05000000;
/** premul(R_LEAF): the r of the leaf descent inside a domain (the same for every position). */
export const LEAF_P3 = premul(R_LEAF);
const COIN_P3 = premul(R_COIN);

/** Marks an unfilled position in Context.posDomain (no node reference is this value). */
export const NONE_REF = 0x7fffffff;

/** Why a context could not fill every position: none, fewer usable domains than positions, retries ran out. */
export const Shortfall = { None: 0, TooFewDomains: 1, RetriesExhausted: 2 } as const;
/** One of the Shortfall values. */
export type Shortfall = (typeof Shortfall)[keyof typeof Shortfall];

interface Item {
  domain: number;
  via: number;
  hashId: number;
  weight: number;
}

/**
 * Picks the child of `node` in `tree` by straw2 for the hash state `hs` and r `rP3`.
 * Returns the child slot, or -1 when the node has no weighted child.
 */
export function straw2Slot(start: number, end: number, uniform: number, hash: Int32Array, invWeight: Float64Array, hs: number, rP3: number): number {
  let best = -1;
  if (uniform) {
    let hb = -2147483648;
    for (let i = start; i < end; i++) {
      const h = hashKey(hs, hash[i], rP3);
      if (h > hb || best < 0) {
        hb = h;
        best = i;
      }
    }
  } else {
    let vb = -Infinity;
    for (let i = start; i < end; i++) {
      const v = lnUnit(hashFinish(hs, hash[i], rP3)) * invWeight[i];
      if (v > vb) {
        vb = v;
        best = i;
      }
    }
  }
  return best;
}

/** Descends `tree` from node `ref` to a leaf; returns the leaf index or -1. */
function descend(tree: CompiledMap['draw'], ref: number, hs: number, rP3: number): number {
  const start = tree.start;
  const end = tree.end;
  const tref = tree.ref;
  const hash = tree.hash;
  while (ref >= 0) {
    const s = start[ref];
    const e = end[ref];
    if (e - s === 1) {
      ref = tref[s]; // a single child wins every draw
      continue;
    }
    if (e === s) return -1;
    let best = s;
    if (tree.uniform[ref]) {
      let hb = hashKey(hs, hash[s], rP3);
      for (let i = s + 1; i < e; i++) {
        const h = hashKey(hs, hash[i], rP3);
        if (h > hb) {
          hb = h;
          best = i;
        }
      }
    } else {
      const inv = tree.invWeight;
      let vb = lnUnit(hashFinish(hs, hash[s], rP3)) * inv[s];
      for (let i = s + 1; i < e; i++) {
        const v = lnUnit(hashFinish(hs, hash[i], rP3)) * inv[i];
        if (v > vb) {
          vb = v;
          best = i;
        }
      }
    }
    ref = tref[best];
  }
  return ~ref;
}

/** Descends the draw tree from node `ref` to a leaf; returns the leaf index or -1. */
export function descendDraw(cm: CompiledMap, ref: number, hs: number, rP3: number): number {
  return descend(cm.draw, ref, hs, rP3);
}

/** Descends the current tree from node `ref` to a leaf; returns the leaf index or -1. */
export function descendCurrent(cm: CompiledMap, ref: number, hs: number, rP3: number): number {
  return descend(cm.current, ref, hs, rP3);
}

/**
 * One (take bucket, domain type, count) selection context with its corrected draw
 * structure and scratch space. Built lazily per prepared rule and reused for every key.
 */
export class Context {
  readonly cm: CompiledMap;
  /** Bucket index the step chooses below. */
  readonly take: number;
  /** Domain type index (-1: leaves). */
  readonly type: number;
  /** Positions to fill. */
  readonly n: number;
  /** True when every draw item is a single domain (ranking race). */
  readonly flat: boolean;
  /** Domain index -> node reference. */
  readonly domains: Int32Array;
  /** Domains with positive usable weight in the current tree. */
  readonly usableDomains: number;
  /** Largest |π/target − 1| of the multi-pick correction. */
  readonly correctionResidual: number;

  // Local draw tree: node 0 is the top; kid ref >= 0 is a domain index, < 0 is ~node.
  private readonly nodeStart: Int32Array;
  private readonly nodeEnd: Int32Array;
  private readonly nodeUniform: Uint8Array;
  /** Per local node: 1 when all its kids are domains (and it is not the top). */
  private readonly nodeAllDomains: Uint8Array;
  /** Per local node: premul of its bucket id (for its acceptance coin) and its draw weight. */
  private readonly nodeHash: Int32Array;
  private readonly nodeWeight: Float64Array;
  /** Per local node: draw weight of its kids taken in the current run (valid when nodeStampOf === stampValue). */
  private readonly nodeUsed: Float64Array;
  private readonly nodeStampOf: Int32Array;
  /** Per kid slot: the local node that owns it. */
  private readonly kidOwner: Int32Array;
  private readonly kidRef: Int32Array;
  private readonly kidVia: Int32Array;
  private readonly kidHash: Int32Array;
  private readonly kidInvW: Float64Array;

  // Scratch (one placement at a time; placement is synchronous).
  private readonly stamp: Int32Array;
  private stampValue = 0;
  private readonly b1: Int32Array;
  private readonly b2: Int32Array;
  private readonly v1: Float64Array;
  private readonly v2: Float64Array;
  private readonly tries: Int32Array;
  private readonly free: Uint8Array;
  /** Per position after run(): domain node reference (or NONE_REF). */
  readonly posDomain: Int32Array;
  /** Per position after run(): the chosen leaf index (chooseleaf / leaf type) or -1. */
  readonly posLeaf: Int32Array;
  private readonly posVia: Int32Array;
  private readonly posOk: Uint8Array;
  /** Shortfall of the last run(). */
  shortfall: Shortfall = Shortfall.None as Shortfall;

  constructor(cm: CompiledMap, take: number, type: number, n: number) {
    this.cm = cm;
    this.take = take;
    this.type = type;
    this.n = n;
    const draw = cm.draw;

    // Items at the top: the take bucket's draw children, then grafts below it.
    const top: { ref: number; hashP3: number; weight: number; extraLeaf: boolean; graft: number }[] = [];
    for (let i = draw.start[take]; i < draw.end[take]; i++) {
      top.push({ ref: draw.ref[i], hashP3: draw.hash[i], weight: 1 / draw.invWeight[i], extraLeaf: false, graft: -1 });
    }
    const baseTop = top.length;
    cm.grafts.forEach((g, gi) => {
      if (g.ref === take || !isUnder(cm, g.ref, take)) return;
      top.push({ ref: g.ref, hashP3: g.hash, weight: g.weight, extraLeaf: g.extra, graft: gi });
    });

    const domainIndex = new Map<number, number>();
    const domainList: number[] = [];
    const domainOfRef = (ref: number): number => {
      let d = domainIndex.get(ref);
      if (d === undefined) {
        d = domainList.length;
        domainIndex.set(ref, d);
        domainList.push(ref);
      }
      return d;
    };
    // A node is "single" when it is a domain or lies inside one (below the take bucket).
    const singleDomain = (ref: number): number | null => domainOf(cm, ref, type, take);
    const isDomainNode = (ref: number): boolean => (type === -1 ? ref < 0 : ref >= 0 && cm.bucketType[ref] === type);

    let flat = true;
    for (let i = 0; i < baseTop; i++) if (singleDomain(top[i].ref) === null) flat = false;
    if (!flat) {
      // Count the compacted tree's domains below the take bucket (grafts do not count, so
      // that an addition never switches the draw style).
      let count = 0;
      const walk = [take];
      while (walk.length > 0 && count <= FLAT_DOMAIN_LIMIT) {
        const b = walk.pop()!;
        for (let i = draw.start[b]; i < draw.end[b]; i++) {
          const c = draw.ref[i];
          if (isDomainNode(c)) count++;
          else if (c >= 0) walk.push(c);
        }
      }
      flat = count <= FLAT_DOMAIN_LIMIT;
    }

    // Local tree description before flattening to CSR.
    interface LNode {
      kids: { domain: number; node: number; via: number; hashP3: number; weight: number }[];
    }
    const nodes: LNode[] = [{ kids: [] }];
    const nodeHashP3: number[] = [0];
    const singles: { item: Item; hashP3: number; node: number; graft: number }[] = [];
    let graftOfItem = -1;
    const addSingle = (node: number, domain: number, via: number, hashP3: number, weight: number): void => {
      singles.push({ item: { domain: domainOfRef(domain), via, hashId: 0, weight }, hashP3, node, graft: graftOfItem });
    };
    // Expands a multi-domain subtree (draw tree) below `ref` into local node `into`.
    // Returns false when it holds no domain of positive weight.
    const expand = (ref: number, into: number, asSingles: boolean): boolean => {
      let any = false;
      for (let i = draw.start[ref]; i < draw.end[ref]; i++) {
        const c = draw.ref[i];
        const w = 1 / draw.invWeight[i];
        if (isDomainNode(c)) {
          addSingle(into, c, c, draw.hash[i], w);
          any = true;
        } else if (c >= 0) {
          if (asSingles) {
            if (expand(c, into, true)) any = true;
          } else {
            const child = nodes.length;
            nodes.push({ kids: [] });
            nodeHashP3.push(draw.hash[i]);
            if (expand(c, child, false)) {
              nodes[into].kids.push({ domain: -1, node: child, via: -1, hashP3: draw.hash[i], weight: 0 });
              any = true;
            }
          }
        }
      }
      return any;
    };
    for (const it of top) {
      graftOfItem = it.graft;
      const d = singleDomain(it.ref);
      if (d !== null) addSingle(0, d, it.ref, it.hashP3, it.weight);
      else if (it.ref >= 0 && !it.extraLeaf) {
        if (flat) expand(it.ref, 0, true);
        else {
          const child = nodes.length;
          nodes.push({ kids: [] });
          nodeHashP3.push(it.hashP3);
          if (expand(it.ref, child, false)) nodes[0].kids.push({ domain: -1, node: child, via: -1, hashP3: it.hashP3, weight: 0 });
        }
      }
    }

    // Multi-pick corrections. The compacted tree's domains get exact corrections
    // (corrections.ts). Each graft item then gets the draw weight that gives its domain its
    // target share with every earlier draw weight left as it was: an addition only attracts
    // data. (The others' shares then drift from exact by the sampling's nonlinearity, a
    // fraction of a percent for mixed weights; uniform maps stay exact; compaction re-solves.)
    const ND = domainList.length;
    const baseCap = new Float64Array(ND);
    for (const s of singles) if (s.graft < 0) baseCap[s.item.domain] += s.item.weight;
    const baseDomains: number[] = [];
    for (let d = 0; d < ND; d++) if (baseCap[d] > 0) baseDomains.push(d);
    const corr = solveCorrections(
      baseDomains.map((d) => baseCap[d]),
      n,
    );
    this.correctionResidual = corr.residual;
    const q = new Float64Array(ND);
    baseDomains.forEach((d, i) => (q[d] = corr.q[i]));
    for (const s of singles) if (s.graft < 0) s.item.weight *= q[s.item.domain] / baseCap[s.item.domain];
    const capNow = Float64Array.from(baseCap);
    let total = 0;
    for (const c of baseCap) total += c;
    const uniformBase = baseDomains.every((d) => baseCap[d] === baseCap[baseDomains[0]] && q[d] === baseCap[d]);
    for (const s of singles) {
      if (s.graft < 0) continue;
      const d = s.item.domain;
      const w = s.item.weight;
      capNow[d] += w;
      total += w;
      let e: number;
      if (uniformBase && baseCap[d] === 0 && capNow[d] === baseCap[baseDomains[0]]) e = w; // a domain like the others: same weight
      else e = solveExtraWeight(q, Math.min(n, ND), d, Math.min(1, (n * capNow[d]) / total), w);
      q[d] += e;
      s.item.weight = e;
    }
    for (const s of singles) nodes[s.node].kids.push({ domain: s.item.domain, node: -1, via: s.item.via, hashP3: s.hashP3, weight: s.item.weight });
    // Local node weights bottom-up (children were created after their parents).
    const nodeWeight = new Float64Array(nodes.length);
    for (let j = nodes.length - 1; j >= 0; j--) {
      let s = 0;
      for (const k of nodes[j].kids) {
        if (k.node >= 0) k.weight = nodeWeight[k.node];
        s += k.weight;
      }
      nodeWeight[j] = s;
    }

    let kidCount = 0;
    for (const nd of nodes) kidCount += nd.kids.length;
    this.nodeStart = new Int32Array(nodes.length);
    this.nodeEnd = new Int32Array(nodes.length);
    this.nodeUniform = new Uint8Array(nodes.length);
    this.nodeAllDomains = new Uint8Array(nodes.length);
    this.nodeHash = Int32Array.from(nodeHashP3);
    this.nodeWeight = nodeWeight;
    this.nodeUsed = new Float64Array(nodes.length);
    this.nodeStampOf = new Int32Array(nodes.length);
    this.kidOwner = new Int32Array(kidCount);
    this.kidRef = new Int32Array(kidCount);
    this.kidVia = new Int32Array(kidCount);
    this.kidHash = new Int32Array(kidCount);
    this.kidInvW = new Float64Array(kidCount);
    let at = 0;
    nodes.forEach((nd, j) => {
      this.nodeStart[j] = at;
      // Sort by hashed id so the draw is independent of the order items were found in.
      const kids = nd.kids.filter((k) => k.weight > 0).sort((a, b) => a.hashP3 - b.hashP3);
      let same = 1;
      this.nodeAllDomains[j] = j > 0 && kids.length > 0 && kids.every((k) => k.node < 0) ? 1 : 0;
      for (const k of kids) {
        this.kidOwner[at] = j;
        this.kidRef[at] = k.node >= 0 ? ~k.node : k.domain;
        this.kidVia[at] = k.via;
        this.kidHash[at] = k.hashP3;
        this.kidInvW[at] = 1 / k.weight;
        if (k.weight !== kids[0].weight) same = 0;
        at++;
      }
      this.nodeEnd[j] = at;
      this.nodeUniform[j] = same;
    });
    this.flat = flat;
    this.domains = Int32Array.from(domainList);

    // Usable domains: domain-type nodes below the take bucket with usable weight now.
    let usable = 0;
    const cur = cm.current;
    const walk = [take];
    while (walk.length > 0) {
      const b = walk.pop()!;
      for (let i = cur.start[b]; i < cur.end[b]; i++) {
        const c = cur.ref[i];
        if (isDomainNode(c)) usable++;
        else if (c >= 0) walk.push(c);
      }
    }
    this.usableDomains = usable;

    this.stamp = new Int32Array(ND);
    this.b1 = new Int32Array(n);
    this.b2 = new Int32Array(n);
    this.v1 = new Float64Array(n);
    this.v2 = new Float64Array(n);
    this.tries = new Int32Array(n);
    this.free = new Uint8Array(n);
    this.posDomain = new Int32Array(n);
    this.posLeaf = new Int32Array(n);
    this.posVia = new Int32Array(n);
    this.posOk = new Uint8Array(n);
  }

  /** Number of domains (positive draw weight) below the take bucket. */
  get domainCount(): number {
    return this.domains.length;
  }

  /**
   * Ranking scan of position k over the top items (flat contexts): the best and second-best
   * items whose domain is untaken. Keys are draw values, or raw hashes when every item
   * weighs the same (same order, no logarithm).
   */
  private scan(k: number, hs: number, skipUsed: boolean): void {
    const s = this.nodeStart[0];
    const e = this.nodeEnd[0];
    const rP3 = premul(k);
    const kidRef = this.kidRef;
    const kidHash = this.kidHash;
    const stamp = this.stamp;
    const sv = this.stampValue;
    let i1 = -1;
    let i2 = -1;
    let v1 = -Infinity;
    let v2 = -Infinity;
    if (this.nodeUniform[0]) {
      for (let i = s; i < e; i++) {
        if (skipUsed && stamp[kidRef[i]] === sv) continue;
        const h = hashKey(hs, kidHash[i], rP3);
        if (h > v1) {
          v2 = v1;
          i2 = i1;
          v1 = h;
          i1 = i;
        } else if (h > v2) {
          v2 = h;
          i2 = i;
        }
      }
    } else {
      const inv = this.kidInvW;
      for (let i = s; i < e; i++) {
        if (skipUsed && stamp[kidRef[i]] === sv) continue;
        const v = lnUnit(hashFinish(hs, kidHash[i], rP3)) * inv[i];
        if (v > v1) {
          v2 = v1;
          i2 = i1;
          v1 = v;
          i1 = i;
        } else if (v > v2) {
          v2 = v;
          i2 = i;
        }
      }
    }
    this.b1[k] = i1;
    this.b2[k] = i2;
    this.v1[k] = v1;
    this.v2[k] = v2;
  }

  /**
   * One descent of the local tree for position k, attempt a (hierarchical contexts). Sets
   * b1[k] to the kid slot reached (a domain), -2 to retry, or -1 when nothing can be
   * reached; returns the time increment (>= 0).
   *
   * Inside a bucket whose children are all domains, the attempt is accepted with
   * probability (untaken weight / weight) of that bucket and then takes the first untaken
   * domain of the position's own ranking there. Each accepted domain is still drawn with
   * probability proportional to its weight among the untaken ones (so the set stays
   * successive sampling), but a collision now falls back to the position's next choice in
   * the same bucket instead of a fresh descent, which keeps sets stable when the map changes.
   */
  private attempt(k: number, a: number, hs: number): number {
    const rP3 = premul(R_ATTEMPT | (a << 4) | k);
    let node = 0;
    let dt = Infinity;
    for (;;) {
      if (this.nodeAllDomains[node]) {
        if (this.nodeStampOf[node] === this.stampValue && this.nodeUsed[node] > 0) {
          const w = this.nodeWeight[node];
          const coin = hashFinish(hs, this.nodeHash[node], premul(R_PARENT_COIN | (a << 4) | k));
          if (coin >= ((w - this.nodeUsed[node]) / w) * 4294967296) {
            this.b1[k] = -2;
            return dt;
          }
        }
        this.b1[k] = this.rankIn(node, k, hs);
        return dt;
      }
      const slot = straw2Slot(this.nodeStart[node], this.nodeEnd[node], this.nodeUniform[node], this.kidHash, this.kidInvW, hs, rP3);
      if (slot < 0) {
        this.b1[k] = -1;
        return dt;
      }
      if (node === 0) dt = -lnUnit(hashFinish(hs, this.kidHash[slot], rP3)) * this.kidInvW[slot];
      const r = this.kidRef[slot];
      if (r >= 0) {
        this.b1[k] = slot;
        return dt;
      }
      node = ~r;
    }
  }

  /** First untaken domain of position k's ranking among the kids of local node `node` (-2 if none). */
  private rankIn(node: number, k: number, hs: number): number {
    const rP3 = premul(k);
    const s = this.nodeStart[node];
    const e = this.nodeEnd[node];
    const stamp = this.stamp;
    const sv = this.stampValue;
    const kidRef = this.kidRef;
    const kidHash = this.kidHash;
    let best = -2;
    if (this.nodeUniform[node]) {
      let hb = -Infinity;
      for (let i = s; i < e; i++) {
        if (stamp[kidRef[i]] === sv) continue;
        const h = hashKey(hs, kidHash[i], rP3);
        if (h > hb) {
          hb = h;
          best = i;
        }
      }
    } else {
      const inv = this.kidInvW;
      let vb = -Infinity;
      for (let i = s; i < e; i++) {
        if (stamp[kidRef[i]] === sv) continue;
        const v = lnUnit(hashFinish(hs, kidHash[i], rP3)) * inv[i];
        if (v > vb) {
          vb = v;
          best = i;
        }
      }
    }
    return best;
  }

  /**
   * Fills posDomain / posLeaf for input hash state `hs`. `leaf` selects chooseleaf
   * semantics (a usable leaf inside each domain) versus choose (the domain bucket itself,
   * usable when it has usable weight). Positions that cannot be filled get NONE_REF and -1.
   * Returns the number of filled positions.
   */
  run(hs: number, leaf: boolean): number {
    const n = this.n;
    const ND = this.domains.length;
    const stamp = this.stamp;
    let sv = ++this.stampValue;
    if (sv === 0x7fffffff) {
      stamp.fill(0);
      this.nodeStampOf.fill(0);
      sv = this.stampValue = 1;
    }
    this.shortfall = Shortfall.None;
    const free = this.free;
    const posDomain = this.posDomain;
    const posVia = this.posVia;
    free.fill(1);
    let filled = 0;
    let used = 0;
    if (ND === 0) {
      posDomain.fill(NONE_REF);
      filled = n;
    } else if (this.flat) {
      for (let k = 0; k < n; k++) this.scan(k, hs, false);
      while (filled < n) {
        let bk = -1;
        for (let k = 0; k < n; k++) if (free[k] && (bk < 0 || this.v1[k] > this.v1[bk])) bk = k;
        const i1 = this.b1[bk];
        if (i1 < 0) {
          posDomain[bk] = NONE_REF;
          free[bk] = 0;
          filled++;
          continue;
        }
        const d = this.kidRef[i1];
        if (stamp[d] !== sv) {
          stamp[d] = sv;
          posDomain[bk] = d;
          posVia[bk] = this.kidVia[i1];
          free[bk] = 0;
          filled++;
          if (++used === ND) break;
        } else {
          const i2 = this.b2[bk];
          if (i2 >= 0 && stamp[this.kidRef[i2]] !== sv) {
            this.b1[bk] = i2;
            this.v1[bk] = this.v2[bk];
            this.b2[bk] = -1;
            this.v2[bk] = -Infinity;
          } else {
            this.scan(bk, hs, true);
          }
        }
      }
    } else {
      const t = this.v1; // times (accumulated)
      for (let k = 0; k < n; k++) {
        this.tries[k] = 0;
        t[k] = this.attempt(k, 0, hs);
      }
      while (filled < n) {
        let bk = -1;
        for (let k = 0; k < n; k++) if (free[k] && (bk < 0 || t[k] < t[bk])) bk = k;
        const slot = this.b1[bk];
        const d = slot >= 0 ? this.kidRef[slot] : -1;
        if (d >= 0 && stamp[d] !== sv) {
          stamp[d] = sv;
          posDomain[bk] = d;
          posVia[bk] = this.kidVia[slot];
          free[bk] = 0;
          filled++;
          const owner = this.kidOwner[slot];
          if (this.nodeStampOf[owner] !== sv) {
            this.nodeStampOf[owner] = sv;
            this.nodeUsed[owner] = 0;
          }
          this.nodeUsed[owner] += 1 / this.kidInvW[slot];
          if (++used === ND) break;
        } else if (slot === -1 || ++this.tries[bk] >= MAX_ATTEMPTS) {
          posDomain[bk] = NONE_REF;
          free[bk] = 0;
          filled++;
        } else {
          t[bk] += this.attempt(bk, this.tries[bk], hs);
        }
      }
    }
    for (let k = 0; k < n; k++) if (free[k]) posDomain[k] = NONE_REF;

    // Domain index -> node reference; acceptance of the first choices.
    const cm = this.cm;
    const posLeaf = this.posLeaf;
    const posOk = this.posOk;
    let bad = 0;
    for (let k = 0; k < n; k++) {
      posLeaf[k] = -1;
      posOk[k] = 0;
      const d = posDomain[k];
      if (d === NONE_REF) {
        bad++;
        continue;
      }
      const ref = this.domains[d];
      posDomain[k] = ref;
      if (leaf || this.type === -1) {
        const l = ref < 0 ? ~ref : descendDraw(cm, posVia[k], hs, LEAF_P3);
        if (l >= 0) {
          posLeaf[k] = l;
          const acc = cm.leafAccept[l];
          posOk[k] = acc === 1 || (acc === 2 && hashFinish(hs, cm.leafHash[l], COIN_P3) < cm.leafThreshold[l]) ? 1 : 0;
        }
      } else {
        posOk[k] = cm.current.weight[ref] > 0 ? 1 : 0;
      }
      if (!posOk[k]) bad++;
    }
    if (bad === 0) return n;
    return n - this.replace(hs, leaf);
  }

  /** In-place replacement of every position not accepted. Returns how many stay unfilled. */
  private replace(hs: number, leaf: boolean): number {
    const n = this.n;
    const cm = this.cm;
    const cur = cm.current;
    const posDomain = this.posDomain;
    const posLeaf = this.posLeaf;
    const posOk = this.posOk;
    let unfilled = 0;
    for (let k = 0; k < n; k++) {
      if (posOk[k]) continue;
      // Usable domains not held by another position: if none, do not spin.
      let held = 0;
      for (let j = 0; j < n; j++) {
        if (j === k) continue;
        const r = posDomain[j];
        if (r === NONE_REF) continue;
        if (r >= 0 ? cur.weight[r] > 0 : cm.leafAccept[~r] !== 0) held++;
      }
      let found = false;
      if (this.usableDomains - held > 0) {
        for (let a = 0; a < MAX_REPLACEMENT_ATTEMPTS && !found; a++) {
          const rP3 = premul(R_REPLACE | (a << 4) | k);
          const d = this.descendToDomain(hs, rP3);
          if (d === NONE_REF) break;
          if (d === null) continue;
          let taken = false;
          for (let j = 0; j < n; j++) if (j !== k && posDomain[j] === d) taken = true;
          if (taken) continue;
          let l = -1;
          if (leaf || this.type === -1) {
            l = d < 0 ? ~d : descendCurrent(cm, d, hs, LEAF_P3);
            if (l < 0) continue;
          }
          posDomain[k] = d;
          posLeaf[k] = l;
          posOk[k] = 1;
          found = true;
        }
        if (!found) this.shortfall = Shortfall.RetriesExhausted;
      } else {
        this.shortfall = Shortfall.TooFewDomains;
      }
      if (!found) {
        posDomain[k] = NONE_REF;
        posLeaf[k] = -1;
        unfilled++;
      }
    }
    return unfilled;
  }

  /**
   * Descends the current tree from the take bucket to a node of the domain type. Returns
   * its reference, null when the descent ends on a node outside every domain, or NONE_REF
   * when nothing below the take bucket is usable.
   */
  private descendToDomain(hs: number, rP3: number): number | null {
    const cm = this.cm;
    const t = cm.current;
    let ref = this.take;
    for (;;) {
      const s = straw2Slot(t.start[ref], t.end[ref], t.uniform[ref], t.hash, t.invWeight, hs, rP3);
      if (s < 0) return ref === this.take ? NONE_REF : null;
      const c = t.ref[s];
      if (this.type === -1) {
        if (c < 0) return c;
      } else if (c < 0) {
        return null;
      } else if (cm.bucketType[c] === this.type) {
        return c;
      }
      ref = c;
    }
  }
}

