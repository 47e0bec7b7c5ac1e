/**
 * What a client needs from a data directory to reach its management API — the token and
 * every node's API address — read without validating the whole configuration. Commands
 * that only talk to a running cluster (`cairn node list`, `cairn volume …`) start faster
 * this way: the full check (loadConfig) pulls in the placement library to validate the
 * embedded map, which a client that asks the cluster anyway does not need.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CONFIG_FILE, ConfigError } from './file.ts';

/** The management API of a data directory's cluster. */
export interface ApiAccess {
  /** The cluster token (Bearer). */
  token: string;
  /** Base URLs (http://host:port) of the nodes that have an API port, in cluster.json order. */
  endpoints: string[];
}

/**
 * Reads the token and the nodes' API addresses from `<dataDir>/cluster.json`.
 * @returns them, or null when the file does not exist.
 * @throws ConfigError naming the file and the field when it cannot be read, is not JSON, or
 *   lacks a token or a well-formed nodes list (host, optional apiPort 1-65535).
 */
export async function loadApiAccess(dataDir: string): Promise<ApiAccess | null> {
  const path = join(dataDir, CONFIG_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ConfigError(`cannot read ${path}: ${(e as Error).message}`);
  }
  let json: { token?: unknown; nodes?: unknown };
  try {
    json = JSON.parse(text) as typeof json;
  } catch (e) {
    throw new ConfigError(`${path} is not JSON: ${(e as Error).message}`);
  }
  if (typeof json !== 'object' || json === null) throw new ConfigError(`${path}: (root): expected an object`);
  if (typeof json.token !== 'string' || json.token.length === 0) throw new ConfigError(`${path}: token: expected a non-empty string`);
  if (!Array.isArray(json.nodes)) throw new ConfigError(`${path}: nodes: expected an array`);
  const endpoints: string[] = [];
  json.nodes.forEach((n: { host?: unknown; apiPort?: unknown } | null, i) => {
    if (typeof n !== 'object' || n === null || typeof n.host !== 'string' || n.host.length === 0) throw new ConfigError(`${path}: nodes.${i}.host: expected a non-empty string`);
    if (n.apiPort === undefined) return;
    if (typeof n.apiPort !== 'number' || !Number.isInteger(n.apiPort) || n.apiPort < 1 || n.apiPort > 65535) throw new ConfigError(`${path}: nodes.${i}.apiPort: expected an integer port 1-65535`);
    endpoints.push(`http://${n.host}:${n.apiPort}`);
  });
  return { token: json.token, endpoints };
}
