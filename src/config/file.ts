/** Loading and atomically saving the cluster configuration file. */
import { readFile, writeFile, rename, open } from 'node:fs/promises';
import { join } from 'node:path';
import { validateMap } from '../../placement/index.ts';
import { ClusterConfigSchema, type ClusterConfig } from './schema.ts';

/** Name of the configuration file inside a data directory. */
export const CONFIG_FILE = 'cluster.json';

/** Thrown when the configuration file is missing, unreadable or invalid. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Reads and validates `<dataDir>/cluster.json`.
 * @returns the config, or null when the file does not exist.
 * @throws ConfigError when it exists but is not a valid configuration.
 */
export async function loadConfig(dataDir: string): Promise<ClusterConfig | null> {
  let text: string;
  try {
    text = await readFile(join(dataDir, CONFIG_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ConfigError(`cannot read ${join(dataDir, CONFIG_FILE)}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${join(dataDir, CONFIG_FILE)} is not JSON: ${(e as Error).message}`);
  }
  const parsed = ClusterConfigSchema.safeParse(json);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new ConfigError(`${join(dataDir, CONFIG_FILE)}: ${i.path.join('.') || '(root)'}: ${i.message}`);
  }
  try {
    validateMap(parsed.data.map);
  } catch (e) {
    throw new ConfigError(`${join(dataDir, CONFIG_FILE)}: map: ${(e as Error).message}`);
  }
  return parsed.data;
}

/** Writes the configuration atomically (temp file, fsync, rename). */
export async function saveConfig(dataDir: string, config: ClusterConfig): Promise<void> {
  const path = join(dataDir, CONFIG_FILE);
  const tmp = `${path}.tmp`;
  await writeFile(tmp, JSON.stringify(config, null, 2) + '\n');
  const fh = await open(tmp, 'r');
  await fh.sync();
  await fh.close();
  await rename(tmp, path);
}
