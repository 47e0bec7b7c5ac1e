/**
 * The live dashboard at `/ui` (src/api/ui/: index.html, app.js, style.css; no build step) and
 * uPlot's script and style from node_modules. These files hold no data and are served without
 * the token: the page asks the operator for it and calls the API with it, so a wrong token
 * shows nothing (the API answers 401).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { FastifyInstance } from 'fastify';

const UI_DIR = new URL('./ui/', import.meta.url);
const require = createRequire(import.meta.url);

/** Path prefix of the dashboard's files (served without the token). */
export const UI_PREFIX = '/ui';

/** The files: URL path → [content type, file]. */
function files(): Record<string, [string, string]> {
  return {
    '/ui': ['text/html; charset=utf-8', new URL('index.html', UI_DIR).pathname],
    '/ui/app.js': ['text/javascript; charset=utf-8', new URL('app.js', UI_DIR).pathname],
    '/ui/style.css': ['text/css; charset=utf-8', new URL('style.css', UI_DIR).pathname],
    '/ui/uPlot.iife.min.js': ['text/javascript; charset=utf-8', require.resolve('uplot/dist/uPlot.iife.min.js')],
    '/ui/uPlot.min.css': ['text/css; charset=utf-8', require.resolve('uplot/dist/uPlot.min.css')],
  };
}

/** True for a request path the dashboard serves without the token. */
export function isUiPath(url: string): boolean {
  const path = url.split('?')[0];
  return path === UI_PREFIX || path === `${UI_PREFIX}/` || Object.hasOwn(files(), path);
}

/** Registers GET /ui (and /ui/) and the dashboard's files, read once. */
export function registerUiRoutes(app: FastifyInstance): void {
  const cache = new Map<string, Buffer>();
  for (const [path, [type, file]] of Object.entries(files())) {
    const handler = async (_req: unknown, reply: import('fastify').FastifyReply) => {
      let body = cache.get(file);
      if (!body) cache.set(file, (body = readFileSync(file)));
      return reply.header('content-type', type).header('cache-control', 'no-cache').send(body);
    };
    // Public in the OpenAPI document (security: []): the files hold no data.
    const schema = {
      tags: ['observability'],
      summary: path === '/ui' ? 'The live dashboard (asks for the token; no data without it)' : `Dashboard file ${path}`,
      security: [],
      response: { 200: { description: `The file (${type.split(';')[0]})`, content: { [type.split(';')[0]]: { schema: { type: 'string' } } } } },
    };
    app.get(path, { schema }, handler);
    if (path === '/ui') app.get('/ui/', { schema }, handler);
  }
}
