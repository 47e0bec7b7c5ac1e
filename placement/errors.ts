/**
 * Typed errors of the placement library. Every problem with a map, its encoding or a rule
 * is a MapValidationError whose `code` says what kind it is and whose `path` says where
 * (e.g. `buckets[3].children[1]`), so that callers can react by kind and operators can
 * find the spot.
 */

/** What kind of problem a MapValidationError reports. */
export type MapErrorCode =
  /** Not JSON, or not an object where one is required. */
  | 'bad-encoding'
  /** `format` missing or not a version this code reads. */
  | 'bad-format'
  /** The encoded map's checksum does not match its content. */
  | 'checksum'
  /** A field is missing, has the wrong type, or is not part of the format. */
  | 'bad-field'
  /** An id is not an integer in its allowed range. */
  | 'bad-id'
  /** Two buckets, two leaves or two rules share an id. */
  | 'duplicate-id'
  /** Two nodes or two rules share a name. */
  | 'duplicate-name'
  /** A weight (or capacity) is negative, not finite, or otherwise unusable. */
  | 'bad-weight'
  /** A bucket (or rule step) names a type that the map does not declare. */
  | 'unknown-type'
  /** A reference (child, root, graft, rule bucket) names nothing in the map. */
  | 'dangling-reference'
  /** A bucket is its own descendant. */
  | 'cycle'
  /** A node is listed as the child of two buckets (or twice by one). */
  | 'shared-child'
  /** A node cannot be reached from the root. */
  | 'unreachable'
  /** A rule is malformed (step order, counts, modes). */
  | 'bad-rule';

/** Thrown for a malformed map, map encoding or rule; never for a valid one. */
export class MapValidationError extends Error {
  override name = 'MapValidationError';
  /** Kind of problem. */
  readonly code: MapErrorCode;
  /** Where in the map (a JSON-path-like string), or '' for the whole document. */
  readonly path: string;
  constructor(code: MapErrorCode, path: string, message: string) {
    super(path ? `${path}: ${message}` : message);
    this.code = code;
    this.path = path;
  }
}

/** Thrown by place() for a request the rule cannot serve (unknown rule, bad pool size). */
export class PlacementError extends Error {
  override name = 'PlacementError';
}
