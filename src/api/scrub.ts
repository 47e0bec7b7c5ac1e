/**
 * Scrub routes of the management API (`cairn scrub start|status`):
 *
 *   POST /v1/scrub/local  {deep?: boolean}  starts a pass on this node now (or reports the
 *                         one running) -> {node, started, ...ScrubStatus}
 *   GET  /v1/scrub/local  this node's scrub -> {node, ...ScrubStatus}
 *                         (both 404 when the node was started without a scrubber)
 *   POST /v1/scrub        {deep?: boolean}  the same on every node the map marks up, in
 *                         parallel (itself in-process, the others over HTTP with the cluster
 *                         token) -> ScrubReply
 *   GET  /v1/scrub        every up node's /v1/scrub/local gathered -> ScrubReply with totals
 *
 * A node that does not answer (within 5 s), answers with an error or is marked down is
 * listed with `error` instead of a status; the fan-out routes answer 200 regardless.
 * ScrubStatus is src/node/scrub.ts's (times: ms since 1970; bytes). Every route declares its
 * schema (SCRUB_SCHEMAS), which fastify checks bodies against and /openapi.json documents.
 */
import type { FastifyInstance, FastifySchema } from 'fastify';
import { z } from 'zod';
import type { ClusterMap } from '../clustermap/index.ts';
import type { ScrubStatus } from '../node/scrub.ts';
import { errorReplies, fromZod, openObject, type JsonSchema } from './schemas.ts';

/** One node's scrub status (src/node/scrub.ts), as the /v1/scrub routes carry it. */
export type { ScrubStatus };

/** What the API needs of a node's scrubber (src/node/scrub.ts Scrubber). */
export interface ScrubSource {
  /** Starts a pass (deep or shallow) unless one runs; returns the status with `started`. */
  start(deep: boolean): unknown;
  /** The scrub status (ScrubStatus). */
  status(): unknown;
}

/** Options of registerScrubRoutes. */
export interface ScrubRoutesOptions {
  /** The serving node's current map: who is up, and their API addresses (host, apiPort). */
  map: () => ClusterMap;
  /** Cluster token, sent to the other nodes as `Authorization: Bearer <token>`. */
  token: string;
  /** Id of the serving node (answered in-process). */
  nodeId: number;
  /** This node's scrubber; without it the /local routes answer 404. */
  scrub?: ScrubSource;
  /** Per-node timeout of the fan-out routes, ms (default 5000). */
  timeoutMs?: number;
}

/** One node's entry in a ScrubReply: its status (with `started` after POST), or why it has none. */
export type ScrubNodeResult = ({ node: number; started?: boolean } & ScrubStatus) | { node: number; error: string };

/** Sums over the nodes that answered (counts, bytes), and how many did not. */
export interface ScrubTotals {
  /** Nodes that answered. */
  nodes: number;
  /** Nodes listed with an error (unreachable, down, no scrubber). */
  unreachable: number;
  /** Nodes with a pass running. */
  running: number;
  extentsTotal: number;
  extentsDone: number;
  bytesDone: number;
  inconsistent: number;
  badPages: number;
  repaired: number;
  unrepaired: number;
  skipped: number;
  errors: number;
}

/** Reply of GET and POST /v1/scrub. */
export interface ScrubReply {
  /** Epoch of the serving node's map. */
  epoch: number;
  servedBy: number;
  /** Every node of the map, ascending by id. */
  nodes: ScrubNodeResult[];
  totals: ScrubTotals;
}

const nullableTime = z.number().nullable();
/** Shape of a node's ScrubStatus (what /v1/scrub/local answers), checked on the fan-out. */
const ScrubStatusSchema = z.object({
  node: z.number().int(),
  started: z.boolean().optional(),
  running: z.boolean(),
  deep: z.boolean(),
  startedAt: nullableTime,
  finishedAt: nullableTime,
  extentsTotal: z.number(),
  extentsDone: z.number(),
  bytesDone: z.number(),
  inconsistent: z.number(),
  badPages: z.number(),
  repaired: z.number(),
  unrepaired: z.number(),
  skipped: z.number(),
  errors: z.number(),
  lastShallowAt: nullableTime,
  lastDeepAt: nullableTime,
  deepQueued: z.boolean(),
});

const StartBodySchema = z.object({ deep: z.boolean().optional() }).strict();

const TOTAL_KEYS = ['extentsTotal', 'extentsDone', 'bytesDone', 'inconsistent', 'badPages', 'repaired', 'unrepaired', 'skipped', 'errors'] as const;
const scrubStatus = fromZod(ScrubStatusSchema, "One node's scrub status (src/node/scrub.ts ScrubStatus): times in ms since 1970 (null: never), bytes; `started` after a POST.");
const scrubReply = openObject('ScrubReply: every node of the map, ascending by id, and totals.', {
  epoch: { type: 'integer', description: "Epoch of the serving node's map." },
  servedBy: { type: 'integer' },
  nodes: {
    type: 'array',
    items: {
      anyOf: [scrubStatus, openObject('A node without a status: unreachable, marked down, or without a scrubber.', { node: { type: 'integer' }, error: { type: 'string' } }, ['node', 'error'])],
    },
  },
  totals: openObject('ScrubTotals: sums over the nodes that answered.', Object.fromEntries(['nodes', 'unreachable', 'running', ...TOTAL_KEYS].map((k): [string, JsonSchema] => [k, { type: 'number' }]))),
}, ['epoch', 'servedBy', 'nodes', 'totals']);
/** Body of the POST routes: `{deep?: boolean}`, or none (a shallow pass). */
const startBody: JsonSchema = { ...fromZod(StartBodySchema, '`deep: true` compares the data of every copy, not only versions and checksums. No body: shallow.'), type: ['object', 'null'] };
const noScrubber = { 404: 'The node was started without a scrubber.' };

/** Route schemas of the scrub routes (request checks, reply serialization, OpenAPI). */
export const SCRUB_SCHEMAS: Record<'getLocal' | 'postLocal' | 'getAll' | 'postAll', FastifySchema> = {
  getLocal: { tags: ['recovery'], summary: "This node's scrub status", response: { 200: scrubStatus, ...errorReplies(noScrubber) } },
  postLocal: {
    tags: ['recovery'],
    summary: 'Start a scrub pass on this node now (or report the one running)',
    body: startBody,
    response: { 200: scrubStatus, ...errorReplies({ 400: '', ...noScrubber }) },
  },
  getAll: { tags: ['recovery'], summary: "Every up node's scrub status, with totals", response: { 200: scrubReply, ...errorReplies() } },
  postAll: {
    tags: ['recovery'],
    summary: 'Start a scrub pass on every up node, in parallel',
    description: 'Nodes that do not answer within 5 s, answer with an error or are marked down are listed with `error`; the reply is 200 regardless.',
    body: startBody,
    response: { 200: scrubReply, ...errorReplies({ 400: '' }) },
  },
};

/** The totals of `nodes` (see ScrubTotals). */
export function scrubTotals(nodes: ScrubNodeResult[]): ScrubTotals {
  const t: ScrubTotals = { nodes: 0, unreachable: 0, running: 0, extentsTotal: 0, extentsDone: 0, bytesDone: 0, inconsistent: 0, badPages: 0, repaired: 0, unrepaired: 0, skipped: 0, errors: 0 };
  for (const n of nodes) {
    if ('error' in n) {
      t.unreachable++;
      continue;
    }
    t.nodes++;
    if (n.running) t.running++;
    for (const k of TOTAL_KEYS) t[k] += n[k];
  }
  return t;
}

/**
 * Calls `method /v1/scrub/local` on a node's API and checks the reply is that node's status.
 * @throws Error with a one-line reason (unreachable, timeout, HTTP error text, bad reply).
 */
async function callNode(host: string, port: number, node: number, token: string, method: 'GET' | 'POST', body: unknown, timeoutMs: number): Promise<ScrubNodeResult> {
  let r: Response;
  try {
    r = await fetch(`http://${host}:${port}/v1/scrub/local`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    const err = e as Error;
    if (err.name === 'TimeoutError') throw new Error(`no answer from ${host}:${port} within ${timeoutMs} ms`);
    throw new Error(`${host}:${port}: ${err.cause instanceof Error ? err.cause.message : err.message}`);
  }
  const text = await r.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`${host}:${port} answered HTTP ${r.status} with a body that is not JSON`);
  }
  if (!r.ok) throw new Error(`HTTP ${r.status}: ${(json as { error?: unknown } | null)?.error ?? 'no error text'}`);
  const parsed = ScrubStatusSchema.safeParse(json);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new Error(`bad scrub status: ${i.path.join('.') || '(body)'}: ${i.message}`);
  }
  if (parsed.data.node !== node) throw new Error(`bad scrub status: it is node ${parsed.data.node}'s`);
  return parsed.data;
}

/**
 * Registers the scrub routes (see the module comment) on the management API `app`.
 * Route handlers never throw for another node's failure; a body other than
 * `{deep?: boolean}` is answered 400 by the route schema.
 */
export function registerScrubRoutes(app: FastifyInstance, opts: ScrubRoutesOptions): void {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const local = (deep: boolean | null): ScrubNodeResult => {
    if (!opts.scrub) throw new Error(`node ${opts.nodeId} has no scrubber`);
    const s = deep === null ? opts.scrub.status() : opts.scrub.start(deep);
    return { ...(s as ScrubStatus), node: opts.nodeId };
  };
  const fanOut = async (deep: boolean | null): Promise<ScrubReply> => {
    const m = opts.map();
    const nodes = await Promise.all([...m.nodes].sort((a, b) => a.id - b.id).map(async (n): Promise<ScrubNodeResult> => {
      if (!n.up) return { node: n.id, error: `marked down in the map (epoch ${m.epoch})` };
      try {
        if (n.id === opts.nodeId) return local(deep);
        return await callNode(n.host, n.apiPort, n.id, opts.token, deep === null ? 'GET' : 'POST', deep === null ? undefined : { deep }, timeoutMs);
      } catch (e) {
        return { node: n.id, error: (e as Error).message };
      }
    }));
    return { epoch: m.epoch, servedBy: opts.nodeId, nodes, totals: scrubTotals(nodes) };
  };
  // The body schema admits only {deep?: boolean} or no body.
  const deepOf = (body: unknown): boolean => (body as { deep?: boolean } | null)?.deep === true;

  app.get('/v1/scrub/local', { schema: SCRUB_SCHEMAS.getLocal }, async (_req, reply) => {
    if (!opts.scrub) return reply.code(404).send({ error: `node ${opts.nodeId} has no scrubber` });
    return local(null);
  });
  app.post('/v1/scrub/local', { schema: SCRUB_SCHEMAS.postLocal }, async (req, reply) => {
    if (!opts.scrub) return reply.code(404).send({ error: `node ${opts.nodeId} has no scrubber` });
    return local(deepOf(req.body));
  });
  app.get('/v1/scrub', { schema: SCRUB_SCHEMAS.getAll }, async () => fanOut(null));
  app.post('/v1/scrub', { schema: SCRUB_SCHEMAS.postAll }, async (req) => fanOut(deepOf(req.body)));
}
