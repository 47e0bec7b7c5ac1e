/**
 * What a client needs from a data directory to reach its management API — the token and
 * every node's API address — read without validating the embedded topology map. Commands
 * that only talk to a running cluster (`cairn node list`, `cairn volume …`) start faster
 * this way: the full check (loadConfig) pulls in the placement library to validate the map,
 * which a client that asks the cluster anyway does not need.
 */
import { readConfigFile } from './file.ts';
import { ClusterConfigSchema } from './schema.ts';

/** The management API of a data directory's cluster. */
export interface ApiAccess {
  /** The cluster token (Bearer). */
  token: string;
  /** Base URLs (http://host:port) of the nodes that have an API port, in cluster.json order. */
  endpoints: string[];
}

const AccessSchema = ClusterConfigSchema.pick({ token: true, nodes: true });

/**
 * Reads the token and the nodes' API addresses from `<dataDir>/cluster.json` (those two
 * fields checked against the configuration's schema, the rest ignored).
 * @returns them, or null when the file does not exist.
 * @throws ConfigError naming the file and the first bad field (as loadConfig).
 */
export async function loadApiAccess(dataDir: string): Promise<ApiAccess | null> {
  const c = await readConfigFile(dataDir, AccessSchema);
  if (!c) return null;
  const endpoints = c.nodes.filter((n) => n.apiPort !== undefined).map((n) => `http://${n.host}:${n.apiPort}`);
  return { token: c.token, endpoints };
}
