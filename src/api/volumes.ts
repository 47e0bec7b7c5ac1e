/**
 * Volume, snapshot, clone and job routes of the management API (src/catalog does the work).
 * Reads are served by any node from the catalog's replicas; changes run on the node that
 * runs the map authority (the catalog's one mutator) and are forwarded there by the others,
 * headers included (If-Match in, ETag out).
 *
 *   GET    /v1/volumes                          every volume (with used bytes); the mutator's list when it answers, else read here
 *   POST   /v1/volumes                          create {name, size, pool?, thick?, extentBytes?, allowHosts?}: 201 new, 200 same exists, 409 other exists
 *   GET    /v1/volumes/:name                    one volume; ETag = its record version
 *   PATCH  /v1/volumes/:name                    {size?, allowShrink?, name?, allowHosts?} resize / rename / NVMe host list; If-Match -> 412 when stale
 *   POST   /v1/volumes/:name/attachment         {holder, generation}: a gateway notes it attached the volume
 *   DELETE /v1/volumes/:name                    202 + job: trims every member, then removes the record
 *   POST   /v1/volumes/:name/flatten            202 + job: copies the parent's extents into a clone
 *   POST   /v1/volumes/:name/rollback           {snapshot}: 202 + job
 *   GET    /v1/volumes/:name/snapshots          its snapshots
 *   POST   /v1/volumes/:name/snapshots          {name}: 201 new, 200 exists
 *   GET    /v1/volumes/:name/snapshots/:snap    one snapshot
 *   DELETE /v1/volumes/:name/snapshots/:snap    204 (409 while it has clones)
 *   POST   /v1/volumes/:name/snapshots/:snap/clone  {name}: 201 / 200
 *   GET    /v1/jobs, /v1/jobs/:id               background jobs (delete, flatten, rollback) with progress
 *   POST   /v1/leases/:id/resume                {generation}: a writer fenced by a snapshot resumes (409 after a takeover)
 * Errors: {error} with 400 naming the bad field, 404, 409, 412, 503 (catalog or authority unreachable), 507 (no room for a thick volume).
 */
import { deriveNguid, deriveUuid, uuidString, volumeNqn } from '../nvmf/ids.ts';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CatalogError, CatalogUnavailableError, LeaseTakenError, type Job, type JobTracker, type LeaseCoordinator, type SnapshotRecord, type VolumeCatalog, type VolumeRecord } from '../catalog/index.ts';
import type { PoolConfig } from '../config/index.ts';

/** Header a node sets on a request it forwards to the catalog's mutator (no second hop). */
const FORWARDED = 'x-cairn-forwarded';

/** What registerVolumeRoutes needs (read per request: getters may change, e.g. when the membership leader moves). */
export interface VolumeRoutesOptions {
  /** The catalog (reads everywhere; changes only where `mutator`). */
  catalog: VolumeCatalog;
  /** True on the node that runs the authority: changes run here. */
  mutator: boolean;
  /** Jobs (on the mutator). */
  jobs: JobTracker;
  /** Snapshot lease coordination (on the mutator). */
  leases?: LeaseCoordinator;
  /** Base URL of the mutator's API, for forwarding (null: unknown right now). */
  mutatorUrl: () => string | null;
  token: string;
  pools: () => PoolConfig[];
  /** Bytes each node stores per volume (every copy), from heartbeats. */
  storedBytes: () => Map<number, number>;
  /** The cluster's id: with it, each volume view names its NVMe/TCP identity (`nvmf`: subsystem NQN, namespace 1's UUID and NGUID), as gateways derive them. */
  clusterId?: string;
}

const errorSchema = { type: 'object', properties: { error: { type: 'string' } }, required: ['error'] } as const;
const nameParam = { type: 'object', properties: { name: { type: 'string', minLength: 1, maxLength: 128 } }, required: ['name'] } as const;
const snapParams = { type: 'object', properties: { name: { type: 'string', minLength: 1, maxLength: 128 }, snap: { type: 'string', minLength: 1, maxLength: 128 } }, required: ['name', 'snap'] } as const;
const parentSchema = {
  type: ['object', 'null'],
  properties: { volume: { type: 'string' }, volumeId: { type: 'integer' }, snapshot: { type: 'string' }, version: { type: 'number' }, sizeBytes: { type: 'integer' } },
} as const;
/** Volume `name`'s subsystem NQN and namespace 1's ids, as the gateways derive them (src/nvmf/ids.ts); undefined when the NQN would be too long. */
function nvmfIdentity(clusterId: string, name: string): { nqn: string; nsid: number; uuid: string; nguid: string } | undefined {
  try {
    const nqn = volumeNqn(clusterId, name);
    return { nqn, nsid: 1, uuid: uuidString(deriveUuid(nqn, 1)), nguid: deriveNguid(nqn, 1).toString('hex') };
  } catch {
    return undefined;
  }
}

const volumeSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' }, id: { type: 'integer' }, sizeBytes: { type: 'integer' }, pool: { type: 'integer' }, extentBytes: { type: 'integer' },
    thin: { type: 'boolean' }, state: { type: 'string', enum: ['ready', 'deleting'] }, createdAt: { type: 'string' },
    snapshots: { type: 'array', items: { type: 'string' } }, parent: parentSchema,
    allowHosts: { type: 'array', items: { type: 'string' }, description: 'Host NQNs allowed over NVMe/TCP; empty: any' },
    attachment: {
      type: ['object', 'null'], description: 'The last attachment that took the write lease',
      properties: { holder: { type: 'string' }, generation: { type: 'integer' }, at: { type: 'string' } },
    },
    usedBytes: { type: 'integer', description: 'Bytes of mapped pages, one copy (stored bytes ÷ replicas), from the nodes\' last heartbeats' },
    storedBytes: { type: 'integer', description: 'Bytes of mapped pages over every copy' },
    version: { type: 'integer', description: 'Record version (the ETag)' },
    nvmf: {
      type: 'object', description: 'The volume\'s NVMe/TCP identity on every Cairn gateway: its subsystem NQN and namespace 1 (NVMe Base spec: Namespace UUID, NGUID as 32 hex digits)',
      properties: { nqn: { type: 'string' }, nsid: { type: 'integer' }, uuid: { type: 'string' }, nguid: { type: 'string' } },
    },
  },
  required: ['name', 'id', 'sizeBytes', 'pool', 'thin', 'state', 'snapshots', 'version'],
} as const;
const snapshotSchema = {
  type: 'object',
  properties: {
    volume: { type: 'string' }, volumeId: { type: 'integer' }, name: { type: 'string' }, version: { type: 'number' },
    sizeBytes: { type: 'integer' }, createdAt: { type: 'string' }, clones: { type: 'array', items: { type: 'string' } },
  },
  required: ['volume', 'name', 'version', 'sizeBytes', 'clones'],
} as const;
const jobSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' }, kind: { type: 'string', enum: ['delete', 'flatten', 'rollback'] }, target: { type: 'string' },
    state: { type: 'string', enum: ['running', 'succeeded', 'failed'] },
    progress: { type: 'object', properties: { done: { type: 'integer' }, total: { type: 'integer' } } },
    startedAt: { type: 'string' }, endedAt: { type: 'string' }, error: { type: 'string' },
  },
  required: ['id', 'kind', 'target', 'state', 'progress'],
} as const;
const errors = { 400: errorSchema, 401: errorSchema, 404: errorSchema, 409: errorSchema, 412: errorSchema, 503: errorSchema } as const;

/** The innermost cause of a fetch failure (ECONNREFUSED rather than "fetch failed"). */
function causeOf(e: unknown): string {
  let x = e as Error & { cause?: unknown };
  while (x.cause instanceof Error) x = x.cause as Error & { cause?: unknown };
  return x.message;
}

/** The If-Match header as a record version, undefined when absent. @throws CatalogError 400 when malformed. */
function ifMatch(req: FastifyRequest): number | undefined {
  const h = req.headers['if-match'];
  if (h === undefined) return undefined;
  const m = /^\s*(?:W\/)?"?(\d+)"?\s*$/.exec(String(h));
  if (!m) throw new CatalogError(400, `If-Match must be a record version as returned in ETag (e.g. "3"), got ${String(h)}`);
  return Number(m[1]);
}

/** Registers the routes above on `app`. */
export function registerVolumeRoutes(app: FastifyInstance, o: VolumeRoutesOptions): void {
  const view = (r: VolumeRecord, version: number): Record<string, unknown> => {
    const stored = o.storedBytes().get(r.id) ?? 0;
    const replicas = o.pools().find((p) => p.id === r.pool)?.replicas ?? 1;
    return { ...r, kind: undefined, storedBytes: stored, usedBytes: Math.round(stored / replicas), version, nvmf: o.clusterId ? nvmfIdentity(o.clusterId, r.name) : undefined };
  };
  const snapView = (s: SnapshotRecord): Record<string, unknown> => ({ ...s, kind: undefined });

  /** Runs `fn`, mapping catalog errors to their status. */
  const guard = async (reply: FastifyReply, fn: () => Promise<unknown>): Promise<unknown> => {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof CatalogError) return reply.code(e.status).send({ error: e.message });
      if (e instanceof CatalogUnavailableError) return reply.code(503).send({ error: e.message });
      if (e instanceof LeaseTakenError) return reply.code(409).send({ error: e.message });
      throw e;
    }
  };

  /** Forwards a change to the mutator (headers that matter included); null when this node is it. */
  const forward = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | null> => {
    if (o.mutator) return null;
    // One hop only: a node that got a forwarded change but no longer runs the catalog's changes
    // (the membership leader moved) answers 503 rather than forwarding it on, perhaps in a loop.
    if (req.headers[FORWARDED] !== undefined) return reply.code(503).send({ error: 'this node does not run the catalog\'s changes (the membership leader is changing); retry' });
    const base = o.mutatorUrl();
    if (!base) return reply.code(503).send({ error: 'the catalog\'s mutator (the map authority or membership leader) is not known right now; retry' });
    try {
      const headers: Record<string, string> = { authorization: `Bearer ${o.token}`, [FORWARDED]: '1' };
      if (req.body !== undefined) headers['content-type'] = 'application/json';
      if (req.headers['if-match'] !== undefined) headers['if-match'] = String(req.headers['if-match']);
      const r = await fetch(`${base}${req.url}`, { method: req.method, headers, body: req.body !== undefined ? JSON.stringify(req.body) : undefined, signal: AbortSignal.timeout(60000) });
      const etag = r.headers.get('etag');
      if (etag) void reply.header('etag', etag);
      const text = await r.text();
      if (r.status === 204) return reply.code(204).send();
      return reply.code(r.status).header('content-type', 'application/json').send(text);
    } catch (e) {
      return reply.code(503).send({ error: `map authority at ${base} unreachable: ${causeOf(e)}` });
    }
  };

  /** The mutator's answer to a read (it answers from what it wrote), or null when it cannot be had in 2 s. */
  const fromMutator = async (req: FastifyRequest): Promise<unknown> => {
    const base = o.mutatorUrl();
    if (o.mutator || !base || req.headers[FORWARDED] !== undefined) return null;
    try {
      const r = await fetch(`${base}${req.url}`, { headers: { authorization: `Bearer ${o.token}`, [FORWARDED]: '1' }, signal: AbortSignal.timeout(2000) });
      return r.ok ? ((await r.json()) as unknown) : null;
    } catch {
      return null;
    }
  };

  app.get('/v1/volumes', {
    schema: { tags: ['volumes'], summary: 'List volumes', response: { 200: { type: 'object', properties: { volumes: { type: 'array', items: volumeSchema } }, required: ['volumes'] }, 503: errorSchema } },
  }, async (req, reply) => guard(reply, async () => {
    // The mutator lists from memory (one request); without it, this node reads every record's replicas.
    const fast = await fromMutator(req);
    if (fast) return fast;
    return { volumes: (await o.catalog.list()).map((v) => view(v.record, v.version)) };
  }));

  app.post('/v1/volumes', {
    schema: {
      tags: ['volumes'], summary: 'Create a volume (idempotent for the same name and properties)',
      body: {
        type: 'object', additionalProperties: false, required: ['name', 'size'],
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' },
          size: { type: 'integer', minimum: 4096, description: 'Bytes, a multiple of 4096' },
          pool: { type: 'integer', minimum: 0 },
          thick: { type: 'boolean', description: 'Reserve the whole size now (default thin)' },
          extentBytes: { type: 'integer', minimum: 4096, maximum: 1048576, description: 'Extent size: a power of two from 4096 to 1048576 bytes (default 1048576)' },
          allowHosts: { type: 'array', items: { type: 'string', minLength: 5, maxLength: 223 }, maxItems: 256, description: 'Host NQNs allowed over NVMe/TCP (default: any)' },
        },
      },
      response: { 200: volumeSchema, 201: volumeSchema, ...errors, 507: errorSchema },
    },
  }, async (req, reply) => {
    if (await forward(req, reply)) return reply;
    const b = req.body as { name: string; size: number; pool?: number; thick?: boolean; extentBytes?: number; allowHosts?: string[] };
    return guard(reply, async () => {
      const r = await o.catalog.create({ name: b.name, sizeBytes: b.size, pool: b.pool, thin: !b.thick, extentBytes: b.extentBytes, allowHosts: b.allowHosts });
      return reply.code(r.created ? 201 : 200).header('etag', `"${r.version}"`).send(view(r.record, r.version));
    });
  });

  app.get('/v1/volumes/:name', {
    schema: { tags: ['volumes'], summary: 'Show a volume (ETag: its record version)', params: nameParam, response: { 200: volumeSchema, ...errors } },
  }, async (req, reply) => guard(reply, async () => {
    const v = await o.catalog.get((req.params as { name: string }).name);
    return reply.header('etag', `"${v.version}"`).send(view(v.record, v.version));
  }));

  app.patch('/v1/volumes/:name', {
    schema: {
      tags: ['volumes'], summary: 'Resize (grow online; shrink needs allowShrink) or rename a volume; honours If-Match', params: nameParam,
      body: {
        type: 'object', additionalProperties: false, minProperties: 1,
        properties: {
          size: { type: 'integer', minimum: 4096 }, allowShrink: { type: 'boolean' }, name: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' },
          allowHosts: { type: 'array', items: { type: 'string', minLength: 5, maxLength: 223 }, maxItems: 256 },
        },
      },
      response: { 200: volumeSchema, ...errors, 507: errorSchema },
    },
  }, async (req, reply) => {
    if (await forward(req, reply)) return reply;
    const name = (req.params as { name: string }).name;
    const b = req.body as { size?: number; allowShrink?: boolean; name?: string; allowHosts?: string[] };
    return guard(reply, async () => {
      let match = ifMatch(req);
      let cur = await o.catalog.get(name);
      if (b.size !== undefined && b.size !== cur.record.sizeBytes) {
        cur = await o.catalog.resize(name, b.size, { allowShrink: b.allowShrink, ifMatch: match });
        match = undefined;
      }
      if (b.allowHosts !== undefined) {
        cur = await o.catalog.setAllowHosts(name, b.allowHosts, { ifMatch: match });
        match = undefined;
      }
      if (b.name !== undefined && b.name !== name) cur = await o.catalog.rename(name, b.name, { ifMatch: match });
      else if (match !== undefined && match !== cur.version) throw new CatalogError(412, `volume '${name}' is at version ${cur.version}, not ${match} (If-Match)`);
      return reply.header('etag', `"${cur.version}"`).send(view(cur.record, cur.version));
    });
  });

  app.post('/v1/volumes/:name/attachment', {
    schema: {
      tags: ['volumes'], summary: 'A gateway notes that it attached the volume (took write-lease generation N)', params: nameParam,
      body: { type: 'object', additionalProperties: false, required: ['holder', 'generation'], properties: { holder: { type: 'string', minLength: 1, maxLength: 200 }, generation: { type: 'integer', minimum: 1 } } },
      response: { 200: volumeSchema, ...errors },
    },
  }, async (req, reply) => {
    if (await forward(req, reply)) return reply;
    const b = req.body as { holder: string; generation: number };
    return guard(reply, async () => {
      await o.catalog.noteAttachment((req.params as { name: string }).name, b.holder, b.generation);
      const v = await o.catalog.get((req.params as { name: string }).name);
      return view(v.record, v.version);
    });
  });

  app.delete('/v1/volumes/:name', {
    schema: { tags: ['volumes'], summary: 'Delete a volume: a job trims it on every member, then the record goes', params: nameParam, response: { 202: jobSchema, ...errors } },
  }, async (req, reply) => {
    if (await forward(req, reply)) return reply;
    return guard(reply, async () => reply.code(202).send(await o.catalog.delete((req.params as { name: string }).name, { ifMatch: ifMatch(req) })));
  });

  app.post('/v1/volumes/:name/flatten', {
    schema: { tags: ['volumes'], summary: 'Flatten a clone: copy the rest of its parent in the background', params: nameParam, response: { 202: jobSchema, ...errors } },
  }, async (req, reply) => {
    if (await forward(req, reply)) return reply;
    return guard(reply, async () => reply.code(202).send(await o.catalog.flatten((req.params as { name: string }).name)));
  });

  app.post('/v1/volumes/:name/rollback', {
    schema: {
      tags: ['volumes'], summary: 'Roll a volume back to one of its snapshots (a job)', params: nameParam,
      body: { type: 'object', additionalProperties: false, required: ['snapshot'], properties: { snapshot: { type: 'string', minLength: 1, maxLength: 128 } } },
      response: { 202: jobSchema, ...errors },
    },
  }, async (req, reply) => {
    if (await forward(req, reply)) return reply;
    return guard(reply, async () => reply.code(202).send(await o.catalog.rollback((req.params as { name: string }).name, (req.body as { snapshot: string }).snapshot)));
  });

  app.get('/v1/volumes/:name/snapshots', {
    schema: { tags: ['snapshots'], summary: 'List the snapshots of a volume', params: nameParam, response: { 200: { type: 'object', properties: { snapshots: { type: 'array', items: snapshotSchema } }, required: ['snapshots'] }, ...errors } },
  }, async (req, reply) => guard(reply, async () => ({ snapshots: (await o.catalog.listSnapshots((req.params as { name: string }).name)).map(snapView) })));

  app.post('/v1/volumes/:name/snapshots', {
    schema: {
      tags: ['snapshots'], summary: 'Take a crash-consistent snapshot (pins; no data copy)', params: nameParam,
      body: { type: 'object', additionalProperties: false, required: ['name'], properties: { name: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' } } },
      response: { 200: snapshotSchema, 201: snapshotSchema, ...errors },
    },
  }, async (req, reply) => {
    if (await forward(req, reply)) return reply;
    return guard(reply, async () => {
      const r = await o.catalog.createSnapshot((req.params as { name: string }).name, (req.body as { name: string }).name);
      return reply.code(r.created ? 201 : 200).send(snapView(r.snapshot));
    });
  });

  app.get('/v1/volumes/:name/snapshots/:snap', {
    schema: { tags: ['snapshots'], summary: 'Show a snapshot', params: snapParams, response: { 200: snapshotSchema, ...errors } },
  }, async (req, reply) => guard(reply, async () => {
    const p = req.params as { name: string; snap: string };
    return snapView((await o.catalog.getSnapshot(p.name, p.snap)).snapshot.record);
  }));

  app.delete('/v1/volumes/:name/snapshots/:snap', {
    schema: { tags: ['snapshots'], summary: 'Delete a snapshot (releases its pins); refused while it has clones', params: snapParams, response: { 204: { type: 'null' }, ...errors } },
  }, async (req, reply) => {
    if (await forward(req, reply)) return reply;
    const p = req.params as { name: string; snap: string };
    return guard(reply, async () => {
      await o.catalog.deleteSnapshot(p.name, p.snap);
      return reply.code(204).send();
    });
  });

  app.post('/v1/volumes/:name/snapshots/:snap/clone', {
    schema: {
      tags: ['snapshots'], summary: 'Clone a snapshot into a new writable copy-on-write volume', params: snapParams,
      body: { type: 'object', additionalProperties: false, required: ['name'], properties: { name: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' } } },
      response: { 200: volumeSchema, 201: volumeSchema, ...errors, 507: errorSchema },
    },
  }, async (req, reply) => {
    if (await forward(req, reply)) return reply;
    const p = req.params as { name: string; snap: string };
    return guard(reply, async () => {
      const r = await o.catalog.clone(p.name, p.snap, (req.body as { name: string }).name);
      return reply.code(r.created ? 201 : 200).header('etag', `"${r.version}"`).send(view(r.record, r.version));
    });
  });

  app.get('/v1/jobs', {
    schema: { tags: ['jobs'], summary: 'Background jobs (delete, flatten, rollback)', response: { 200: { type: 'object', properties: { jobs: { type: 'array', items: jobSchema } }, required: ['jobs'] }, 503: errorSchema } },
  }, async (req, reply) => {
    if (await forward(req, reply)) return reply;
    return { jobs: o.jobs.list() };
  });

  app.get('/v1/jobs/:id', {
    schema: { tags: ['jobs'], summary: 'One background job with its progress', params: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] }, response: { 200: jobSchema, 404: errorSchema, 503: errorSchema } },
  }, async (req, reply) => {
    if (await forward(req, reply)) return reply;
    const j: Job | undefined = o.jobs.get((req.params as { id: string }).id);
    return j ?? reply.code(404).send({ error: `no job ${(req.params as { id: string }).id} (jobs are kept in the authority node's memory until it restarts)` });
  });

  app.post('/v1/leases/:id/resume', {
    schema: {
      tags: ['leases'], summary: 'A writer fenced by a snapshot or another catalog job resumes under a new generation',
      params: { type: 'object', properties: { id: { type: 'integer', minimum: 1 } }, required: ['id'] },
      body: { type: 'object', additionalProperties: false, required: ['generation'], properties: { generation: { type: 'integer', minimum: 0 } } },
      response: { 200: { type: 'object', properties: { volume: { type: 'integer' }, generation: { type: 'integer' } }, required: ['volume', 'generation'] }, ...errors },
    },
  }, async (req, reply) => {
    if (await forward(req, reply)) return reply;
    const id = (req.params as { id: number }).id;
    if (!o.leases) return reply.code(503).send({ error: 'this node coordinates no leases' });
    return guard(reply, async () => ({ volume: id, generation: await o.leases!.resume(id, (req.body as { generation: number }).generation) }));
  });
}
