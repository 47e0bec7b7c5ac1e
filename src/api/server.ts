/**
 * The management API (HTTP, JSON), served by every storage node: the seed of Cairn's REST
 * API. Token-authenticated (`Authorization: Bearer <cluster token>`). Reads (map, nodes)
 * are answered from the node's own gossiped view; changes and history go to the map
 * authority — served here when this node runs it, otherwise forwarded to the authority
 * node's API.
 *
 *   GET  /v1/map          the current map: epoch, checksum, change, nodes, topology
 *   GET  /v1/map/history  every epoch: {epoch, checksum, createdAt, change}[]
 *   GET  /v1/nodes        per node: address, up/down, in/out, weight, capacity, usage
 *   POST /v1/map/changes  an OperatorChange ({type: 'out'|'in'|'reweight'|...}) -> SubmitResult
 *   POST /v1/volumes/:id/lease   grants the volume's next write-lease generation -> {volume, generation}
 *   GET  /v1/leases       the last generation granted per volume -> {leases: {id: generation}}
 *   GET  /v1/recovery     this node's NodeRecoveryReport (src/recovery/report.ts): extents held,
 *                         resync records, stale extents, peering, recovered counters
 *                         (404 when the node was started without a report source)
 *   GET  /v1/status       cluster health at a glance (ClusterStatus, src/api/status.ts, plus
 *                         servedBy): this node asks every up node for /v1/recovery in parallel
 *                         (3 s each; itself in-process) and computes health, degraded /
 *                         recovering / inactive extents; nodes that do not answer are listed
 *                         under `unreachable` (503 when the node has no cluster config)
 *   GET  /openapi.json    the OpenAPI 3.1 document of every route (src/api/openapi.ts)
 * Errors: {error: message} with 400 (bad body or parameter; the message names the field,
 * e.g. "body/weight must be <= 1"), 401 (no or wrong token), 404, 409 (change does not
 * apply), 503 (authority unreachable; for /v1/status, no cluster config).
 *
 * Every route declares a JSON Schema (src/api/server-schemas.ts, src/api/scrub.ts): fastify
 * checks requests against it (src/api/validation.ts) and the OpenAPI document is generated
 * from it. The token hook covers every route, /openapi.json included.
 *
 * Adding routes (e.g. src/api/volumes.ts): declare them in a function or fastify plugin
 * called from startManagementApi after registerOpenApi (directly, or with
 * `await app.register(plugin, opts)`), and give every route a `schema` with `tags`,
 * `summary`, its params/querystring/body and `response` (200 and errors via errorReplies,
 * src/api/schemas.ts); they then appear in /openapi.json (see src/api/openapi.ts).
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { ChangeError, OperatorChangeSchema, mapNode, mapSettings, type ClusterMap } from '../clustermap/index.ts';
import type { MapAuthority } from '../authority/index.ts';
import type { ControlPlane } from '../gossip/index.ts';
import type { ClusterConfig } from '../config/index.ts';
import type { NodeRecoveryReport } from '../recovery/report.ts';
import { gatherStatus } from './status.ts';
import { registerOpenApi } from './openapi.ts';
import { registerScrubRoutes } from './scrub.ts';
import * as schemas from './server-schemas.ts';
import { apiValidatorFactory, formatSchemaErrors } from './validation.ts';
import { nodeList } from './views.ts';
import { bearerOk } from '../metrics/index.ts';
import { isUiPath, registerUiRoutes } from './ui.ts';
import { registerIoRoutes, type VolumeIo } from './io.ts';

/** Options of startManagementApi. */
export interface ManagementApiOptions {
  host: string;
  port: number;
  token: string;
  /** This node's control plane (its map and heartbeats). */
  control: ControlPlane;
  /** The authority, when it runs in this process. */
  authority?: MapAuthority;
  /** Node id of the authority (to forward changes to its API); with etcd, the membership leader (read per request). */
  authorityNode: number;
  /**
   * Grants a write lease for POST /v1/volumes/:id/lease (default: authority.acquireLease);
   * `forwarded` is true when another node forwarded the request (x-cairn-forwarded).
   */
  grantLease?: (volume: number, forwarded: boolean) => Promise<number>;
  /** Id of the node serving this API. */
  nodeId: number;
  /** cluster.json (pools and volumes), for GET /v1/status; without it that route answers 503. */
  config?: ClusterConfig;
  /** This node's recovery report, for GET /v1/recovery and /v1/status; without it /v1/recovery answers 404. */
  recovery?: () => NodeRecoveryReport;
  /** This node's scrubber (src/node/scrub.ts), for the /v1/scrub routes (src/api/scrub.ts); without it /v1/scrub/local answers 404. */
  scrub?: { start(deep: boolean): unknown; status(): unknown };
  /** This node's host I/O per volume (GET /v1/io/local, summed by GET /v1/io); without it both answer empty lists. */
  volumeIo?: () => VolumeIo[];
  /** More routes to register (after the built-in ones, before listening), e.g. registerVolumeRoutes from volumes.ts. */
  routes?: Array<(app: FastifyInstance) => void>;
}


/**
 * Starts the management API; resolves with the fastify instance (close() it to stop) and
 * the bound port.
 * @throws Error when it cannot listen.
 */
export async function startManagementApi(opts: ManagementApiOptions): Promise<{ app: FastifyInstance; port: number }> {
  const app = Fastify({
    logger: false,
    bodyLimit: 1024 * 1024,
    forceCloseConnections: true,
    schemaController: { compilersFactory: { buildValidator: apiValidatorFactory() } },
    schemaErrorFormatter: formatSchemaErrors,
  });
  app.addHook('onRequest', async (req, reply) => {
    if (!bearerOk(req.headers.authorization, opts.token) && !isUiPath(req.url)) {
      await reply.code(401).send({ error: 'missing or wrong cluster token (Authorization: Bearer <token>)' });
    }
  });
  app.setErrorHandler(async (err: Error & { statusCode?: number }, _req, reply) => {
    await reply.code(err.statusCode && err.statusCode < 500 ? err.statusCode : 500).send({ error: err.message });
  });
  app.setNotFoundHandler(async (req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url}` }));
  // Before any route: the document lists the routes declared after it.
  await registerOpenApi(app);

  const map = (): ClusterMap => opts.control.keeper.map;

  const forward = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const a = mapNode(map(), opts.authorityNode);
    if (!a) return reply.code(503).send({ error: `authority node ${opts.authorityNode} is not in the map` });
    try {
      const r = await fetch(`http://${a.host}:${a.apiPort}${req.url}`, {
        method: req.method,
        headers: { authorization: `Bearer ${opts.token}`, ...(req.body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: req.body !== undefined ? JSON.stringify(req.body) : undefined,
        signal: AbortSignal.timeout(10000),
      });
      return reply.code(r.status).header('content-type', 'application/json').send(await r.text());
    } catch (e) {
      return reply.code(503).send({ error: `authority (node ${a.id}, ${a.host}:${a.apiPort}) unreachable: ${(e as Error).message}` });
    }
  };

  app.get('/v1/map', { schema: schemas.getMap }, async () => {
    const m = map();
    return {
      epoch: m.epoch, clusterId: m.clusterId, checksum: opts.control.keeper.signed?.checksum ?? 0, createdAt: m.createdAt, change: m.change, authority: opts.authorityNode, authorityKind: opts.config?.authority?.kind ?? 'embedded', servedBy: opts.nodeId,
      nodes: m.nodes, topology: m.topology,
      // Every setting in force (defaults filled in), not just those the map carries.
      settings: mapSettings(m),
    };
  });
  app.get('/v1/nodes', { schema: schemas.getNodes }, async () => ({ epoch: map().epoch, servedBy: opts.nodeId, nodes: nodeList(map(), opts.control.heartbeats, Date.now()) }));
  app.get('/v1/map/history', { schema: schemas.getHistory }, async (req, reply) => {
    if (!opts.authority) return forward(req, reply);
    return { epochs: await opts.authority.history() };
  });
  app.post('/v1/map/changes', { schema: schemas.postChange }, async (req, reply) => {
    // The schema checked the shape; zod checks what JSON Schema cannot (refinements).
    const parsed = OperatorChangeSchema.safeParse(req.body);
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      return reply.code(400).send({ error: `bad change: ${i.path.join('.') || '(body)'}: ${i.message}` });
    }
    if (!opts.authority) return forward(req, reply);
    try {
      return await opts.authority.submit(parsed.data);
    } catch (e) {
      if (e instanceof ChangeError) return reply.code(409).send({ error: e.message });
      throw e;
    }
  });

  app.post('/v1/volumes/:id/lease', { schema: schemas.postLease }, async (req, reply) => {
    const { id } = req.params as { id: number };
    if (!opts.authority) return forward(req, reply);
    const forwarded = req.headers['x-cairn-forwarded'] !== undefined;
    return { volume: id, generation: await (opts.grantLease ? opts.grantLease(id, forwarded) : opts.authority.acquireLease(id)) };
  });
  app.get('/v1/leases', { schema: schemas.getLeases }, async (req, reply) => {
    if (!opts.authority) return forward(req, reply);
    return { leases: opts.authority.leases() };
  });

  app.get('/v1/recovery', { schema: schemas.getRecovery }, async (_req, reply) => {
    if (!opts.recovery) return reply.code(404).send({ error: `node ${opts.nodeId} has no recovery report source` });
    return opts.recovery();
  });
  app.get('/v1/status', { schema: schemas.getStatus }, async (_req, reply) => {
    if (!opts.config) return reply.code(503).send({ error: `node ${opts.nodeId} was started without the cluster config; cannot compute the status` });
    const status = await gatherStatus({ map: map(), config: opts.config, token: opts.token, self: opts.nodeId, local: opts.recovery });
    return { ...status, servedBy: opts.nodeId };
  });

  registerScrubRoutes(app, { map, token: opts.token, nodeId: opts.nodeId, scrub: opts.scrub });
  registerIoRoutes(app, { nodeId: opts.nodeId, token: opts.token, map, local: () => opts.volumeIo?.() ?? [] });
  registerUiRoutes(app);
  for (const r of opts.routes ?? []) r(app);
  await app.listen({ host: opts.host, port: opts.port });
  const addr = app.server.address();
  return { app, port: typeof addr === 'object' && addr ? addr.port : opts.port };
}
