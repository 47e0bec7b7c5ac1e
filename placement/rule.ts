/**
 * Placement rules: take the root, choose `count` distinct buckets of the failure-domain
 * type with straw2 (firstn), then descend inside each to one usable leaf (chooseleaf).
 */
import type { CompiledMap } from './compile.ts';
import { straw2Index } from './straw2.ts';

/** A replicated rule: `replicas` leaves in distinct buckets of type `failureDomain`. */
export interface Rule {
  failureDomain: string;
  replicas: number;
}

/** Result of a placement: ordered leaf ids (primary first). */
export interface Placement {
  /** Leaf ids, primary first. Shorter than requested when `complete` is false. */
  members: number[];
  /** False when fewer usable failure domains exist than requested (never a duplicate). */
  complete: boolean;
}

/** Retries per slot before giving up on it (collisions, down/out leaves). */
const MAX_TRIES = 50;

function descendToLeaf(cm: CompiledMap, start: number, x: number, r: number): number {
  let id = start;
  while (id < 0) {
    const b = cm.buckets.get(id)!;
    const i = straw2Index(b.children, b.weights, x, r);
    if (i < 0) return -1;
    id = b.children[i];
  }
  return cm.usable.get(id) ? id : -1;
}

function descendToType(cm: CompiledMap, type: string, x: number, r: number): number {
  let id = cm.map.root;
  while (cm.typeOf.get(id) !== type) {
    if (id >= 0) return -1;
    const b = cm.buckets.get(id)!;
    const i = straw2Index(b.children, b.weights, x, r);
    if (i < 0) return -1;
    id = b.children[i];
  }
  return id;
}

/**
 * Maps placement input `x` (unsigned 32-bit) to an ordered set of leaves under `rule`.
 * Deterministic for a given map and x. Never returns two leaves in one failure domain;
 * returns `complete: false` with fewer members when the map cannot satisfy the rule.
 */
export function place(cm: CompiledMap, rule: Rule, x: number): Placement {
  const members: number[] = [];
  const domains: number[] = [];
  let r = 0;
  for (let slot = 0; slot < rule.replicas; slot++) {
    let found = false;
    for (let tries = 0; tries < MAX_TRIES; tries++, r++) {
      const domain = descendToType(cm, rule.failureDomain, x, r);
      if (domain === -1 || domains.includes(domain)) continue;
      const leaf = descendToLeaf(cm, domain, x, r);
      if (leaf < 0) continue;
      domains.push(domain);
      members.push(leaf);
      found = true;
      r++;
      break;
    }
    if (!found) return { members, complete: false };
  }
  return { members, complete: true };
}
