/**
 * Serving a registry: `GET /metrics` on an existing fastify app (the node's management API,
 * behind its token hook), or a small server of its own for a gateway process (`cairn up`,
 * `cairn export nvmf`), behind the same bearer token.
 */
import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { METRICS_CONTENT_TYPE } from './registry.ts';

/** Adds `GET /metrics` (Prometheus text format 0.0.4) to `app`. */
export function registerMetricsRoute(app: FastifyInstance, registry: Registry): void {
  app.get('/metrics', {
    schema: {
      tags: ['observability'], summary: 'Prometheus metrics of this process (text exposition format 0.0.4)',
      response: { 200: { type: 'string', description: 'Prometheus text format' } },
    },
  }, async (_req, reply) => reply.header('content-type', METRICS_CONTENT_TYPE).send(await registry.metrics()));
}

/** True when `header` is `Bearer <token>` (constant-time comparison). */
export function bearerOk(header: string | undefined, token: string): boolean {
  if (!header?.startsWith('Bearer ')) return false;
  const a = Buffer.from(header.slice(7), 'utf8');
  const b = Buffer.from(token, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A running metrics server. */
export interface MetricsServer {
  /** The bound port. */
  port: number;
  /** Stops listening. */
  close(): Promise<void>;
}

/**
 * Serves `GET /metrics` of `registry` on host:port (0 picks a free port), answering 401
 * without `Authorization: Bearer <token>` and 404 on any other path.
 * @throws Error when it cannot listen (port taken).
 */
export async function startMetricsServer(o: { host: string; port: number; token: string; registry: Registry }): Promise<MetricsServer> {
  const app = Fastify({ logger: false, forceCloseConnections: true });
  app.addHook('onRequest', async (req, reply) => {
    if (!bearerOk(req.headers.authorization, o.token)) await reply.code(401).send({ error: 'missing or wrong cluster token (Authorization: Bearer <token>)' });
  });
  app.setNotFoundHandler(async (req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url}` }));
  registerMetricsRoute(app, o.registry);
  await app.listen({ host: o.host, port: o.port });
  const addr = app.server.address();
  return { port: typeof addr === 'object' && addr ? addr.port : o.port, close: () => app.close() };
}
