/**
 * Request validation of the management API: how route schemas are compiled (ajv, through
 * fastify's own @fastify/ajv-compiler) and how a failed check reads.
 *
 * - Bodies are checked as sent: no type coercion (a JSON `null` or `"3"` is not the node id
 *   0 or 3) and no silent removal of unknown keys (`additionalProperties: false` rejects).
 * - Path parameters, query strings and headers are text, so they are coerced to the
 *   schema's type (`/v1/volumes/7/lease` gives the integer 7), as fastify does by default.
 * - `discriminator` (OpenAPI) is understood, so a body that is one of several shapes picked
 *   by a tag (`{type: 'out' | 'in' | ...}`) is checked against that one shape and its
 *   errors name that shape's fields.
 * - A failure is a 400 whose message names the field: `body/weight must be <= 1`,
 *   `body/type is required (one of: out, in, ...)`, `params/id must be integer`.
 */
import { AjvCompiler } from '@fastify/ajv-compiler';
import type { FastifySchemaValidationError, FastifyServerOptions } from 'fastify';

/** Ajv options of the management API on top of fastify's defaults (see the module comment). */
const AJV_OPTIONS = {
  removeAdditional: false,
  discriminator: true,
  allowUnionTypes: true,
  // Errors carry their schema, so a discriminator error can list the allowed tags.
  verbose: true,
} as const;

/** Validator factory for fastify's `schemaController.compilersFactory.buildValidator`. */
type ValidatorFactory = NonNullable<NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>['buildValidator']>;
/** Options fastify hands the factory (its `ajv` server option: customOptions, plugins). */
type AjvServerOptions = { customOptions?: Record<string, unknown>; plugins?: unknown[] };

/**
 * The validator factory of the management API (fastify option
 * `schemaController: {compilersFactory: {buildValidator: apiValidatorFactory()}}`):
 * bodies without coercion, other request parts with it (see the module comment). Schemas
 * added with `app.addSchema` are known to both.
 */
export function apiValidatorFactory(): ValidatorFactory {
  const pool = AjvCompiler();
  return (externalSchemas, serverOptions) => {
    const options = (serverOptions ?? {}) as AjvServerOptions;
    const custom = { ...options.customOptions, ...AJV_OPTIONS };
    const build = (customOptions: Record<string, unknown>) => pool(externalSchemas, { ...options, customOptions } as Parameters<typeof pool>[1]);
    const body = build({ ...custom, coerceTypes: false });
    const other = build(custom);
    return (route) => (route.httpPart === 'body' ? body(route) : other(route));
  };
}

/** The tag values a discriminated `oneOf` allows (from each branch's `const` or `enum`). */
function tagValues(union: unknown, tag: string): string[] {
  const branches = (union as { oneOf?: Array<{ properties?: Record<string, { const?: unknown; enum?: unknown[] }> }> })?.oneOf ?? [];
  return branches.flatMap((b) => {
    const p = b.properties?.[tag];
    return p?.const !== undefined ? [String(p.const)] : (p?.enum ?? []).map(String);
  });
}

/** One ajv error as a sentence that starts with the field's path (`body/settings/noout`). */
function describe(e: FastifySchemaValidationError & { parentSchema?: unknown }, dataVar: string): string {
  const at = `${dataVar}${e.instancePath ?? ''}`;
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return `${at}/${String(p.missingProperty)} is required`;
    case 'additionalProperties':
      return `${at}/${String(p.additionalProperty)} is not an allowed property`;
    case 'enum':
      return `${at} must be one of: ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'discriminator': {
      const tag = String(p.tag);
      const allowed = tagValues(e.parentSchema, tag).join(', ');
      if (p.tagValue === undefined) return `${at}/${tag} is required (one of: ${allowed})`;
      return `${at}/${tag} must be one of: ${allowed} (got ${JSON.stringify(p.tagValue)})`;
    }
    default:
      return `${at} ${e.message ?? `fails ${e.keyword}`}`;
  }
}

/**
 * Fastify `schemaErrorFormatter` of the management API: every error as a sentence naming
 * its field, joined by '; ' (fastify answers it as a 400; the API's error handler sends
 * `{error: message}`).
 */
export function formatSchemaErrors(errors: FastifySchemaValidationError[], dataVar: string): Error {
  return new Error(errors.map((e) => describe(e, dataVar)).join('; '));
}
