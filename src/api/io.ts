/**
 * Cluster-wide host I/O per volume for the dashboard and scripts: `GET /v1/io/local` is this
 * node's per-volume totals (reads it served, writes it applied as the extent's primary: each
 * host request is counted on exactly one node), `GET /v1/io` asks every up node and sums them
 * per volume. Totals since each node started; rates are the difference of two samples over
 * `at` (ms).
 */
import type { FastifyInstance } from 'fastify';
import type { ClusterMap } from '../clustermap/index.ts';
import { errorReplies } from './schemas.ts';

/** One volume's totals (counts, bytes, seconds of request time summed). */
export interface VolumeIo {
  volume: number;
  reads: number;
  writes: number;
  readBytes: number;
  writeBytes: number;
  readSeconds: number;
  writeSeconds: number;
}

/** What registerIoRoutes needs. */
export interface IoRoutesOptions {
  nodeId: number;
  token: string;
  map: () => ClusterMap;
  /** This node's totals. */
  local: () => VolumeIo[];
  /** Per-node timeout of the fan-out, ms (default 3000). */
  timeoutMs?: number;
}

const KEYS = ['reads', 'writes', 'readBytes', 'writeBytes', 'readSeconds', 'writeSeconds'] as const;
const ioItem = {
  type: 'object',
  properties: { volume: { type: 'integer' }, ...Object.fromEntries(KEYS.map((k) => [k, { type: 'number' }])) },
  required: ['volume', ...KEYS],
} as const;

/** Sums per-volume totals of several nodes. */
export function sumVolumeIo(lists: VolumeIo[][]): VolumeIo[] {
  const out = new Map<number, VolumeIo>();
  for (const list of lists) {
    for (const v of list) {
      const t = out.get(v.volume) ?? { volume: v.volume, reads: 0, writes: 0, readBytes: 0, writeBytes: 0, readSeconds: 0, writeSeconds: 0 };
      for (const k of KEYS) t[k] += v[k];
      out.set(v.volume, t);
    }
  }
  return [...out.values()].sort((a, b) => a.volume - b.volume);
}

/** Registers GET /v1/io/local and GET /v1/io on the management API. */
export function registerIoRoutes(app: FastifyInstance, o: IoRoutesOptions): void {
  app.get('/v1/io/local', {
    schema: { tags: ['observability'], summary: 'This node\'s host I/O per volume since it started', response: { 200: { type: 'object', properties: { node: { type: 'integer' }, at: { type: 'number' }, volumes: { type: 'array', items: ioItem } }, required: ['node', 'at', 'volumes'] }, ...errorReplies() } },
  }, async () => ({ node: o.nodeId, at: Date.now(), volumes: o.local() }));
  app.get('/v1/io', {
    schema: {
      tags: ['observability'], summary: 'Host I/O per volume summed over every up node (each request counted once)',
      response: { 200: { type: 'object', properties: { at: { type: 'number' }, servedBy: { type: 'integer' }, volumes: { type: 'array', items: ioItem }, unreachable: { type: 'array', items: { type: 'integer' } } }, required: ['at', 'volumes', 'unreachable'] }, ...errorReplies() },
    },
  }, async () => {
    const m = o.map();
    const unreachable: number[] = [];
    const lists = await Promise.all(m.nodes.filter((n) => n.up).map(async (n): Promise<VolumeIo[]> => {
      if (n.id === o.nodeId) return o.local();
      try {
        const r = await fetch(`http://${n.host}:${n.apiPort}/v1/io/local`, { headers: { authorization: `Bearer ${o.token}` }, signal: AbortSignal.timeout(o.timeoutMs ?? 3000) });
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        return ((await r.json()) as { volumes: VolumeIo[] }).volumes;
      } catch {
        unreachable.push(n.id);
        return [];
      }
    }));
    return { at: Date.now(), servedBy: o.nodeId, volumes: sumVolumeIo(lists), unreachable: unreachable.sort((a, b) => a - b) };
  });
}
