/** src/api: the management API (fastify) every node serves, and its client. */
export { startManagementApi, type ManagementApiOptions } from './server.ts';
export { ApiClient, ApiError } from './client.ts';
export { nodeList, type NodeRow } from './views.ts';
export { registerVolumeRoutes, type VolumeRoutesOptions } from './volumes.ts';
