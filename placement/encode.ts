/**
 * Canonical, versioned encoding of a topology map with a checksum. The encoding is JSON
 * with a fixed key order, buckets sorted by descending id (-1 first), leaves and rules by
 * ascending id, children ascending, grafts in history order, numbers in ECMAScript's
 * shortest round-trip form and no whitespace; equal maps therefore encode to equal bytes.
 * The `checksum` field (CRC-32C, RFC 3720, of the canonical text without that field, as 8
 * lowercase hex digits) follows `format`. Decoding re-derives the canonical text from the
 * parsed content, so a file that was re-indented still verifies while any change of content
 * does not.
 */
import { crc32c } from '@node-rs/crc32';
import { MapValidationError } from './errors.ts';
import type { Graft, Rule, Step, TopologyMap } from './map.ts';
import { validateMap } from './validate.ts';

function str(s: string): string {
  return JSON.stringify(s);
}

function num(n: number): string {
  return JSON.stringify(n);
}

function stepText(s: Step): string {
  switch (s.op) {
    case 'take':
      return `{"op":"take","bucket":${str(s.bucket)}}`;
    case 'emit':
      return '{"op":"emit"}';
    default:
      return `{"op":${str(s.op)},"mode":${str(s.mode)},"count":${num(s.count)},"type":${str(s.type)}}`;
  }
}

function ruleText(r: Rule): string {
  return `{"id":${num(r.id)},"name":${str(r.name)},"steps":[${r.steps.map(stepText).join(',')}]}`;
}

function graftText(g: Graft): string {
  return g.extra === undefined ? `{"node":${num(g.node)}}` : `{"node":${num(g.node)},"extra":${num(g.extra)}}`;
}

/** Canonical text of the map's content (everything but the checksum). */
function body(map: TopologyMap): string {
  const buckets = [...map.buckets].sort((a, b) => b.id - a.id);
  const leaves = [...map.leaves].sort((a, b) => a.id - b.id);
  const rules = [...map.rules].sort((a, b) => a.id - b.id);
  return (
    `"epoch":${num(map.epoch)},"types":[${map.types.map(str).join(',')}],"leafType":${str(map.leafType)},"root":${num(map.root)},` +
    `"buckets":[${buckets
      .map((b) => `{"id":${num(b.id)},"name":${str(b.name)},"type":${str(b.type)},"children":[${[...b.children].sort((x, y) => x - y).join(',')}]}`)
      .join(',')}],` +
    `"leaves":[${leaves
      .map(
        (l) =>
          `{"id":${num(l.id)},"name":${str(l.name)},"capacityBytes":${num(l.capacityBytes)},"weight":${num(l.weight)},` +
          `"drawWeight":${num(l.drawWeight)},"up":${l.up},"in":${l.in}}`,
      )
      .join(',')}],` +
    `"rules":[${rules.map(ruleText).join(',')}],"grafts":[${map.grafts.map(graftText).join(',')}]`
  );
}

/** CRC-32C of the canonical content of `map`, as 8 lowercase hex digits. The map must be valid. */
export function mapChecksum(map: TopologyMap): string {
  return crc32c(`{"format":${num(map.format)},${body(map)}}`).toString(16).padStart(8, '0');
}

/**
 * Encodes `map` canonically with its checksum (UTF-8 JSON text, no trailing newline).
 * @throws MapValidationError if the map is not valid.
 */
export function encodeMap(map: TopologyMap): string {
  validateMap(map);
  return `{"format":${num(map.format)},"checksum":"${mapChecksum(map)}",${body(map)}}`;
}

/**
 * Decodes and verifies an encoded map: JSON, a known format, a valid map, a matching
 * checksum. Returns the map (without the checksum field).
 * @throws MapValidationError: 'bad-encoding' (not JSON / not an object / checksum field
 *   missing or malformed), 'bad-format', any validation code, or 'checksum'.
 */
export function decodeMap(text: string | Uint8Array): TopologyMap {
  let s: string;
  try {
    s = typeof text === 'string' ? text : new TextDecoder('utf-8', { fatal: true }).decode(text);
  } catch {
    throw new MapValidationError('bad-encoding', '', 'not UTF-8 text');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(s);
  } catch (e) {
    throw new MapValidationError('bad-encoding', '', `not JSON: ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new MapValidationError('bad-encoding', '', 'an encoded map must be a JSON object');
  }
  const { checksum, ...rest } = parsed as Record<string, unknown>;
  if (!('format' in rest)) throw new MapValidationError('bad-format', 'format', 'missing format version');
  validateMap(rest);
  if (typeof checksum !== 'string' || !/^[0-9a-f]{8}$/.test(checksum)) {
    throw new MapValidationError('bad-encoding', 'checksum', 'missing or malformed checksum (8 lowercase hex digits)');
  }
  const actual = mapChecksum(rest);
  if (actual !== checksum) throw new MapValidationError('checksum', 'checksum', `checksum ${checksum} does not match the content (${actual})`);
  return rest;
}
