/**
 * Building blocks of the management API's route schemas (see src/api/openapi.ts for how a
 * route gets into the OpenAPI document): the error reply every route shares, open objects
 * for payloads whose fields are documented elsewhere, and JSON Schema derived from the zod
 * schemas that already check our data, so the two cannot drift apart.
 *
 * Careful with response schemas: fastify serializes a reply through its schema and drops
 * every property the schema does not name, unless the object says `additionalProperties:
 * true` (openObject does). A property listed in `required` that a reply lacks makes the
 * reply fail (500), so list only what the handler always sets.
 */
import { ZodDiscriminatedUnion, type ZodTypeAny } from 'zod';
import { zodToJsonSchema } from 'zod-to-json-schema';

/** A JSON Schema (draft-07 subset that both ajv and OpenAPI 3.1 read). */
export type JsonSchema = Record<string, unknown>;

/** The body of every error reply: `{error: message}`. */
export const ErrorReplySchema: JsonSchema = {
  type: 'object',
  properties: { error: { type: 'string', description: 'What went wrong, naming the bad field or object.' } },
  required: ['error'],
  additionalProperties: false,
};

/** Default descriptions of the error statuses the API answers. */
const ERROR_TEXT: Record<number, string> = {
  400: 'Bad request: the message names the bad field (`body/weight must be <= 1`).',
  401: 'Missing or wrong cluster token (`Authorization: Bearer <token>`).',
  404: 'Not found.',
  409: 'The change does not apply to the current map.',
  503: 'A node this one needs (the authority) is unreachable, or this node lacks what the route needs.',
};

/**
 * Response schemas of a route's error statuses: always 401 (every route is behind the
 * token), plus each status in `statuses` with its description ('' for the default text).
 * Spread it into the route's `response`: `response: {200: ..., ...errorReplies({400: ''})}`.
 */
export function errorReplies(statuses: Record<number, string> = {}): Record<number, JsonSchema> {
  const out: Record<number, JsonSchema> = {};
  for (const [code, text] of Object.entries({ 401: '', ...statuses })) {
    out[Number(code)] = { description: text || ERROR_TEXT[Number(code)] || `HTTP ${code}`, ...ErrorReplySchema };
  }
  return out;
}

/**
 * An object schema that names some `properties` (and the `required` ones) and lets every
 * other property through: for payloads that are open (maps, reports) or documented in
 * their TypeScript type, so that serialization drops nothing.
 */
export function openObject(description: string, properties: Record<string, JsonSchema> = {}, required: string[] = []): JsonSchema {
  return { type: 'object', description, properties, ...(required.length ? { required } : {}), additionalProperties: true };
}

/**
 * The JSON Schema of a zod (v3) schema, for route bodies and replies: no `$ref`s, objects
 * open unless the zod object is `.strict()` (zod drops unknown keys of the others, so they
 * are allowed, as before), refinements left to zod. A discriminated union becomes a
 * `oneOf` with an OpenAPI `discriminator`, so a failed check names the chosen shape's field.
 */
export function fromZod(schema: ZodTypeAny, description?: string): JsonSchema {
  const out = zodToJsonSchema(schema, { $refStrategy: 'none', target: 'jsonSchema7', removeAdditionalStrategy: 'strict' }) as JsonSchema;
  delete out.$schema;
  if (description) out.description = description;
  if (schema instanceof ZodDiscriminatedUnion && Array.isArray(out.anyOf)) {
    const tag = schema.discriminator as string;
    const { anyOf, ...rest } = out;
    return { type: 'object', ...rest, discriminator: { propertyName: tag }, oneOf: anyOf };
  }
  return out;
}
