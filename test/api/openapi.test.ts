/**
 * The management API as a described REST API (src/api/openapi.ts): /openapi.json is a valid
 * OpenAPI document that lists every route fastify serves with its method, a route added
 * later by a plugin is listed too, bad bodies and parameters get a 400 naming the field,
 * no token gets 401, and response schemas drop nothing from the replies.
 */
import test from 'ava';
import { Validator } from '@seriousme/openapi-schema-validator';
import Fastify, { type FastifyInstance } from 'fastify';
import { ChangeError, initialMap, type ClusterMap } from '../../src/clustermap/index.ts';
import type { MapAuthority } from '../../src/authority/index.ts';
import type { ControlPlane } from '../../src/gossip/index.ts';
import { startManagementApi } from '../../src/api/index.ts';
import { registerOpenApi } from '../../src/api/openapi.ts';
import { errorReplies } from '../../src/api/schemas.ts';
import { makeConfig, reports, withDown } from '../helpers/status.ts';

type Doc = {
  openapi: string;
  info: { title: string; version: string };
  security?: unknown;
  paths: Record<string, Record<string, { tags?: string[]; summary?: string; requestBody?: { required?: boolean }; security?: unknown[]; responses: Record<string, unknown> }>>;
};

/**
 * Every (method, path) fastify's router holds, from `printRoutes({commonPrefix: false})`:
 * a tree whose lines are `<indent><segment> (METHOD, ...)`, 4 characters per level; a
 * route's path is its segment appended to its ancestors'.
 */
function routerRoutes(app: FastifyInstance): Array<{ method: string; path: string }> {
  const out: Array<{ method: string; path: string }> = [];
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^([│ ]*)[├└]── (\S+?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1].length / 4;
    stack.length = depth;
    stack.push(m[2]);
    for (const method of m[3]?.split(', ') ?? []) out.push({ method, path: stack.join('') });
  }
  return out;
}

/** fastify's `/v1/volumes/:id/lease` as OpenAPI's `/v1/volumes/{id}/lease`. */
const openApiPath = (path: string): string => path.replace(/:(\w+)/g, '{$1}');

const SCRUB_STATUS = {
  running: false, deep: false, startedAt: null, finishedAt: 12, extentsTotal: 3, extentsDone: 3, bytesDone: 4096, inconsistent: 0,
  badPages: 0, repaired: 0, unrepaired: 0, skipped: 0, errors: 0, lastShallowAt: 12, lastDeepAt: null, deepQueued: false,
};

async function startApi(t: import('ava').ExecutionContext) {
  const config = await makeConfig();
  const rs = reports(config);
  const map: ClusterMap = withDown(initialMap(config), [1, 2]);
  const control = { keeper: { map, signed: null }, heartbeats: new Map() } as unknown as ControlPlane;
  const submitted: unknown[] = [];
  const authority = {
    async submit(change: { type: string; node?: number }) {
      if (change.node === 99) throw new ChangeError('node 99 is not in the map');
      submitted.push(change);
      return { epoch: map.epoch + 1, checksum: 7, changed: true, publishedAt: 1.5 };
    },
    async history() { return [{ epoch: 1, checksum: 3, createdAt: 1, change: 'created' }]; },
    async acquireLease(volume: number) { return volume + 100; },
    leases() { return { 1: 4, 7: 107 }; },
  } as unknown as MapAuthority;
  const scrub = { start: (deep: boolean) => ({ ...SCRUB_STATUS, deep, running: true, started: true }), status: () => SCRUB_STATUS };
  const api = await startManagementApi({
    host: '127.0.0.1', port: 0, token: config.token, authorityNode: 0, nodeId: 0, control, authority, config, recovery: () => rs[0], scrub,
  });
  t.teardown(() => api.app.close());
  const call = async (method: string, path: string, body?: unknown, tok: string | null = config.token): Promise<{ status: number; body: any }> => {
    const r = await fetch(`http://127.0.0.1:${api.port}${path}`, {
      method,
      headers: { ...(tok ? { authorization: `Bearer ${tok}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    return { status: r.status, body: await r.json() };
  };
  return { app: api.app, call, map, rs, submitted };
}

test('GET /openapi.json is a valid OpenAPI document listing every route with its method', async (t) => {
  const { app, call } = await startApi(t);
  const r = await call('GET', '/openapi.json');
  t.is(r.status, 200);
  const doc = r.body as Doc;
  const validator = new Validator();
  const res = await validator.validate(structuredClone(doc) as Parameters<Validator['validate']>[0]);
  t.true(res.valid, JSON.stringify(res.errors, null, 2));
  t.is(doc.openapi, '3.1.0');
  t.is(doc.info.title, 'Cairn management API');
  t.regex(doc.info.version, /^\d+\.\d+\.\d+/);
  t.deepEqual(doc.security, [{ clusterToken: [] }]);
  t.is(doc.paths['/v1/scrub/local'].post.requestBody?.required, false, 'the scrub body may be left out');
  t.is(doc.paths['/v1/map/changes'].post.requestBody?.required, true);

  const routes = routerRoutes(app).filter((x) => x.method !== 'HEAD' && x.path !== '/openapi.json');
  t.true(routes.length >= 12, JSON.stringify(routes));
  for (const path of ['/v1/map/changes', '/v1/volumes/:id/lease', '/v1/scrub/local']) t.true(routes.some((x) => x.path === path), path);
  const publicRoutes: string[] = [];
  for (const { method, path } of routes) {
    const op = doc.paths[openApiPath(path)]?.[method.toLowerCase()];
    t.truthy(op, `${method} ${path} is not in the document`);
    if (!op) continue;
    t.true((op.tags?.length ?? 0) > 0 && !!op.summary, `${method} ${path} has tags and a summary`);
    t.truthy(op.responses['200'], `${method} ${path} documents 200`);
    const isPublic = Array.isArray(op.security) && op.security.length === 0;
    if (isPublic) publicRoutes.push(path);
    else t.truthy(op.responses['401'], `${method} ${path} documents 401`);
  }
  // Only the dashboard's files are public, and they really answer without the token.
  t.true(publicRoutes.length > 0 && publicRoutes.every((p) => p === '/ui' || p.startsWith('/ui/')), JSON.stringify(publicRoutes));
  for (const p of publicRoutes) t.is((await app.inject({ method: 'GET', url: p })).statusCode, 200, `${p} without a token`);
});

test('no token gets 401, /openapi.json included', async (t) => {
  const { call } = await startApi(t);
  for (const path of ['/openapi.json', '/v1/map', '/v1/scrub/local']) {
    const r = await call('GET', path, undefined, null);
    t.is(r.status, 401, path);
    t.regex(r.body.error, /cluster token/);
  }
  t.is((await call('POST', '/v1/map/changes', { type: 'out', node: 1 }, 'x'.repeat(48))).status, 401);
});

test('bad bodies and parameters get 400 naming the field; good ones reach the handler', async (t) => {
  const { call, submitted } = await startApi(t);
  const bad: Array<[unknown, RegExp]> = [
    [{ type: 'reweight', node: 1, weight: 7 }, /^body\/weight must be <= 1$/],
    [{ type: 'out', node: '1' }, /^body\/node must be integer$/],
    [{ type: 'out', node: null }, /^body\/node must be integer$/],
    [{ node: 1 }, /^body\/type is required \(one of: out, in, reweight, add-node/],
    [{ type: 'explode', node: 1 }, /^body\/type must be one of: out, in, .* \(got "explode"\)$/],
    [{ type: 'settings', settings: { nout: true } }, /^body\/settings\/nout is not an allowed property$/],
    [{ type: 'add-node', node: { id: 5, host: 'h', port: 1, gossipPort: 2, apiPort: 3, devices: [{ path: '/d', sizeBytes: 1.5, partitions: 1 }] } }, /^body\/node\/devices\/0\/sizeBytes must be integer$/],
    [[1, 2], /^body must be object$/],
  ];
  for (const [body, error] of bad) {
    const r = await call('POST', '/v1/map/changes', body);
    t.is(r.status, 400, JSON.stringify(body));
    t.regex(r.body.error, error);
  }
  // What JSON Schema cannot say, zod still checks.
  const empty = await call('POST', '/v1/map/changes', { type: 'settings', settings: {} });
  t.is(empty.status, 400);
  t.regex(empty.body.error, /settings: a settings change names at least one setting/);
  t.deepEqual(submitted, [], 'no bad change reached the authority');

  t.deepEqual(await call('POST', '/v1/map/changes', { type: 'out', node: 1 }), { status: 200, body: { epoch: 3, checksum: 7, changed: true, publishedAt: 1.5 } });
  t.deepEqual(submitted, [{ type: 'out', node: 1 }]);
  const conflict = await call('POST', '/v1/map/changes', { type: 'out', node: 99 });
  t.is(conflict.status, 409);
  t.regex(conflict.body.error, /node 99 is not in the map/);

  for (const id of ['abc', '0', '1.5', String(2 ** 32)]) {
    const r = await call('POST', `/v1/volumes/${id}/lease`);
    t.is(r.status, 400, id);
    t.regex(r.body.error, /^params\/id must be /);
  }
  t.deepEqual(await call('POST', '/v1/volumes/7/lease'), { status: 200, body: { volume: 7, generation: 107 } });

  for (const body of [{ deep: 'yes' }, { deep: 'true' }, { deep: true, extra: 1 }, 5]) {
    const r = await call('POST', '/v1/scrub/local', body);
    t.is(r.status, 400, JSON.stringify(body));
    t.regex(r.body.error, /^body/);
  }
  t.like((await call('POST', '/v1/scrub/local')).body, { node: 0, started: true, deep: false });
  t.like((await call('POST', '/v1/scrub/local', { deep: true })).body, { node: 0, started: true, deep: true });
});

test('replies keep every field through their response schemas', async (t) => {
  const { call, map, rs } = await startApi(t);
  const m = (await call('GET', '/v1/map')).body;
  t.deepEqual(m.nodes, map.nodes);
  t.deepEqual(m.topology, map.topology);
  t.like(m, { epoch: map.epoch, checksum: 0, createdAt: map.createdAt, change: map.change, authority: 0, servedBy: 0 });
  t.is(m.settings.noout, false);
  const nodes = (await call('GET', '/v1/nodes')).body;
  t.deepEqual(nodes.nodes.map((n: { id: number; up: boolean; heartbeatAgeMs: null }) => [n.id, n.up, n.heartbeatAgeMs]), [[0, true, null], [1, false, null], [2, false, null]]);
  t.deepEqual((await call('GET', '/v1/recovery')).body, rs[0]);
  t.deepEqual((await call('GET', '/v1/map/history')).body, { epochs: [{ epoch: 1, checksum: 3, createdAt: 1, change: 'created' }] });
  t.deepEqual((await call('GET', '/v1/leases')).body, { leases: { 1: 4, 7: 107 } });
  t.deepEqual((await call('GET', '/v1/scrub/local')).body, { ...SCRUB_STATUS, node: 0 });
  const all = (await call('GET', '/v1/scrub')).body;
  t.deepEqual(all.nodes, [{ ...SCRUB_STATUS, node: 0 }, { node: 1, error: `marked down in the map (epoch ${map.epoch})` }, { node: 2, error: `marked down in the map (epoch ${map.epoch})` }]);
  t.like(all.totals, { nodes: 1, unreachable: 2, bytesDone: 4096 });
  const status = await call('GET', '/v1/status');
  t.is(status.status, 200);
  t.like(status.body, { servedBy: 0, epoch: map.epoch });
  t.true(Array.isArray(status.body.recovery) && typeof status.body.data === 'object', 'open fields of the status are kept');
});

test('routes registered after registerOpenApi, by a plugin or on the app, are in the document', async (t) => {
  const app = Fastify();
  t.teardown(() => app.close());
  await registerOpenApi(app);
  await app.register(async (scope) => {
    scope.get('/v1/volumes/:name', {
      schema: { tags: ['volumes'], summary: 'One volume', params: { type: 'object', properties: { name: { type: 'string' } } }, response: { 200: { type: 'object' }, ...errorReplies({ 404: '' }) } },
    }, async () => ({}));
  }, { prefix: '/x' });
  app.post('/v1/direct', { schema: { tags: ['meta'], summary: 'Direct' } }, async () => ({}));
  await app.ready();
  const doc = app.swagger() as unknown as Doc;
  t.is(doc.paths['/x/v1/volumes/{name}']?.get?.summary, 'One volume');
  t.truthy(doc.paths['/x/v1/volumes/{name}']?.get?.responses['404']);
  t.is(doc.paths['/v1/direct']?.post?.summary, 'Direct');
  t.true((await new Validator().validate(structuredClone(doc) as Parameters<Validator['validate']>[0])).valid);
});
