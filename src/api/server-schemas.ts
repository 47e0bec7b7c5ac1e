/**
 * Route schemas of the management API's core routes (src/api/server.ts): what fastify checks
 * requests against, how it serializes replies, and what the OpenAPI document says of them.
 * Open payloads (the map's topology, recovery reports, the cluster status) name their main
 * fields and let the rest through (openObject), so nothing a handler returns disappears.
 */
import { MapNodeSchema, MapSettingsSchema, OperatorChangeSchema } from '../clustermap/index.ts';
import type { FastifySchema } from 'fastify';
import { errorReplies, fromZod, openObject, type JsonSchema } from './schemas.ts';

const int: JsonSchema = { type: 'integer' };
const num: JsonSchema = { type: 'number' };
const str: JsonSchema = { type: 'string' };
const bool: JsonSchema = { type: 'boolean' };
const ms = (description: string): JsonSchema => ({ type: 'number', description: `${description} (ms since 1970)` });
const epoch: JsonSchema = { type: 'integer', minimum: 1, description: 'Map epoch.' };
const servedBy: JsonSchema = { type: 'integer', description: 'Id of the node that answered.' };
/** 503 of the routes that forward to the authority node when it runs elsewhere. */
const forwarded = { 503: 'The authority node is not in the map or does not answer.' };

/** GET /v1/map */
export const getMap: FastifySchema = {
  tags: ['map'],
  summary: "This node's current topology map",
  description: 'Answered from the map this node holds (learnt by gossip), with every setting in force (defaults filled in).',
  response: {
    200: openObject('The map at its epoch.', {
      epoch,
      checksum: { type: 'integer', description: 'crc32c of the canonical map bytes (0 before the first signed map).' },
      createdAt: ms('When the authority made this epoch'),
      change: { type: 'string', description: 'What changed at this epoch.' },
      authority: { type: 'integer', description: 'Node id of the map authority (embedded), or of the membership leader (etcd).' },
      authorityKind: { type: 'string', enum: ['embedded', 'etcd'], description: 'Where epochs are ordered: inside one node, or in etcd.' },
      clusterId: { type: 'string', description: 'The cluster\'s id (in NVMe subsystem NQNs: nqn.2024-01.io.cairn:<clusterId>:<volume>).' },
      servedBy,
      nodes: { type: 'array', items: fromZod(MapNodeSchema, 'A storage node of the map.') },
      topology: openObject('The placement tree (buckets and partition leaves) derived from the nodes.'),
      settings: fromZod(MapSettingsSchema, 'Cluster-wide settings in force.'),
    }, ['epoch', 'checksum', 'createdAt', 'change', 'authority', 'servedBy', 'nodes', 'topology', 'settings']),
    ...errorReplies(),
  },
};

const nodeRow = openObject('One storage node as this node sees it (src/api/views.ts NodeRow); bytes.', {
  id: int,
  address: { type: 'string', description: 'host:port of its data path.' },
  up: bool,
  in: bool,
  reweight: num,
  weight: { type: 'number', description: 'Sum of its leaf weights in the map (0 when out).' },
  devices: int,
  capacityBytes: num,
  usedBytes: num,
  liveBytes: num,
  heartbeatAgeMs: { type: ['number', 'null'], description: 'Milliseconds since its last heartbeat reached this node; null if none yet.' },
  epochSeen: { type: ['integer', 'null'], description: 'Epoch in its last heartbeat; null if none yet.' },
  volumes: { type: 'array', items: openObject('Bytes of a volume it stores.', { volume: int, storedBytes: num }) },
});

/** GET /v1/nodes */
export const getNodes: FastifySchema = {
  tags: ['nodes'],
  summary: 'Every node: address, up/down, in/out, weight, capacity, usage',
  response: {
    200: openObject('The node table.', { epoch, servedBy, nodes: { type: 'array', items: nodeRow } }, ['epoch', 'servedBy', 'nodes']),
    ...errorReplies(),
  },
};

/** GET /v1/map/history */
export const getHistory: FastifySchema = {
  tags: ['map'],
  summary: 'Every epoch of the map, oldest first',
  description: 'Answered by the authority (forwarded to it when it runs on another node).',
  response: {
    200: openObject('The history.', {
      epochs: {
        type: 'array',
        items: openObject('One epoch.', { epoch, checksum: int, createdAt: ms('When it was made'), change: str }, ['epoch', 'checksum', 'createdAt', 'change']),
      },
    }, ['epochs']),
    ...errorReplies(forwarded),
  },
};

/** POST /v1/map/changes */
export const postChange: FastifySchema = {
  tags: ['map'],
  summary: 'Submit an operator change (out, in, reweight, add-node, ...) to the authority',
  description: 'Applied by the authority as the next epoch, or answered `changed: false` when it alters nothing.',
  body: fromZod(OperatorChangeSchema, 'An operator change; `type` picks its shape.'),
  response: {
    200: openObject('What the authority did.', {
      epoch,
      checksum: int,
      changed: { type: 'boolean', description: 'False when the change altered nothing (no new epoch).' },
      publishedAt: ms('When the epoch was published'),
    }, ['epoch', 'checksum', 'changed', 'publishedAt']),
    ...errorReplies({ 400: '', 409: '', ...forwarded }),
  },
};

/** POST /v1/volumes/:id/lease */
export const postLease: FastifySchema = {
  tags: ['volumes'],
  summary: "Grant the volume's next write-lease generation",
  params: {
    type: 'object',
    properties: { id: { type: 'integer', minimum: 1, maximum: 0xffffffff, description: 'Volume id.' } },
    required: ['id'],
  },
  response: {
    200: openObject('The grant.', { volume: int, generation: { type: 'integer', description: 'Never granted before for this volume.' } }, ['volume', 'generation']),
    ...errorReplies({ 400: '', ...forwarded }),
  },
};

/** GET /v1/leases */
export const getLeases: FastifySchema = {
  tags: ['volumes'],
  summary: 'The last write-lease generation granted per volume',
  response: {
    200: openObject('The generations.', {
      leases: { type: 'object', description: 'Volume id -> generation.', additionalProperties: { type: 'integer' } },
    }, ['leases']),
    ...errorReplies(forwarded),
  },
};

/** GET /v1/recovery */
export const getRecovery: FastifySchema = {
  tags: ['recovery'],
  summary: "This node's recovery report",
  description: 'Extents held, resync records, stale extents, peering, recovered counters, progress and traffic (src/recovery/report.ts NodeRecoveryReport).',
  response: {
    200: openObject('NodeRecoveryReport.', { node: int, epoch, peering: bool }),
    ...errorReplies({ 404: 'The node was started without a report source.' }),
  },
};

/** GET /v1/status */
export const getStatus: FastifySchema = {
  tags: ['recovery'],
  summary: 'Cluster health at a glance',
  description: 'Asks every up node for its recovery report (3 s each) and computes health, degraded, recovering and inactive extents (src/api/status.ts ClusterStatus); nodes that do not answer are listed under `unreachable`.',
  response: {
    200: openObject('ClusterStatus, plus servedBy.', {
      health: { type: 'string', enum: ['HEALTH_OK', 'HEALTH_WARN', 'HEALTH_ERR'] },
      checks: { type: 'array', items: str, description: 'Why the health is not HEALTH_OK, one line each.' },
      epoch,
      clusterId: str,
      servedBy,
    }),
    ...errorReplies({ 503: 'The node was started without the cluster config.' }),
  },
};
