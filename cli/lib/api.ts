/**
 * Reaching the management API from CLI commands: flags shared by every command that talks
 * to a running cluster, and a client that tries each node's API in turn (the first that
 * answers serves; changes are forwarded to the authority by whichever node answers).
 */
import { Flags } from '@oclif/core';
import { resolve } from 'node:path';
import { ApiClient, ApiError } from '../../src/api/client.ts';
import { loadApiAccess } from '../../src/config/index.ts';

/** Flags of API commands. */
export const apiFlags = {
  'data-dir': Flags.string({ summary: 'Data directory of the cluster (its cluster.json gives the API addresses and the token).', default: '.cairn', env: 'CAIRN_DATA_DIR' }),
  api: Flags.string({ summary: 'Management API base URL (e.g. http://127.0.0.1:7000); overrides the data directory.', env: 'CAIRN_API' }),
  token: Flags.string({ summary: 'Cluster token (with --api).', env: 'CAIRN_TOKEN' }),
  json: Flags.boolean({ summary: 'Print the API reply as JSON.', default: false }),
};

/** A client over several API endpoints: each call goes to the first that answers. */
export class ClusterApi {
  constructor(private readonly clients: ApiClient[]) {}

  /**
   * Calls `method path` on the first reachable node.
   * @throws ApiError from the node that answered, or the last unreachable one.
   */
  async call<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown, headers?: Record<string, string>): Promise<T> {
    let last: ApiError | null = null;
    for (const c of this.clients) {
      try {
        return await c.call<T>(method, path, body, headers);
      } catch (e) {
        if (!(e instanceof ApiError) || e.status !== 0) throw e;
        last = e;
      }
    }
    throw last ?? new ApiError(0, 'no API endpoint');
  }
}

/**
 * The API of the cluster named by the flags.
 * @throws Error with a readable message when neither --api/--token nor a cluster.json is usable.
 */
export async function clusterApi(flags: { 'data-dir': string; api?: string; token?: string }): Promise<ClusterApi> {
  if (flags.api) {
    if (!flags.token) throw new Error('--api needs --token (or CAIRN_TOKEN)');
    return new ClusterApi([new ApiClient(flags.api.replace(/\/$/, ''), flags.token)]);
  }
  const dir = resolve(flags['data-dir']);
  const access = await loadApiAccess(dir);
  if (!access) throw new Error(`no cluster in ${dir} (start one with \`cairn up --data-dir ${flags['data-dir']}\`, or pass --api and --token)`);
  if (!access.endpoints.length) throw new Error(`${dir}/cluster.json has no management API ports (start the cluster once with \`cairn up\`)`);
  return new ClusterApi(access.endpoints.map((url) => new ApiClient(url, access.token)));
}

/** Renders rows as a left-aligned text table with a header. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
