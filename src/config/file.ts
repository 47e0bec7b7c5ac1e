/** Loading and atomically saving the cluster configuration file. */
import { readFile, rename, open, stat, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import type { z } from 'zod';
import { ClusterConfigSchema, type ClusterConfig } from './schema.ts';

/** Name of the configuration file inside a data directory. */
export const CONFIG_FILE = 'cluster.json';

/**
 * Permission bits of the configuration file: it holds the cluster token (DESIGN promise 6),
 * so only its owner may read it.
 */
export const CONFIG_MODE = 0o600;

/** Thrown when the configuration file is missing, unreadable or invalid. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Reads `<dataDir>/cluster.json` and checks it against `schema` (the whole configuration, or
 * a pick of it for readers that need only some fields).
 * @returns the parsed value, or null when the file does not exist.
 * @throws ConfigError naming the file, and the first bad field, when it cannot be read, is
 *   not JSON or does not match.
 */
export async function readConfigFile<S extends z.ZodTypeAny>(dataDir: string, schema: S): Promise<z.infer<S> | null> {
  const path = join(dataDir, CONFIG_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ConfigError(`cannot read ${path}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path} is not JSON: ${(e as Error).message}`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new ConfigError(`${path}: ${i.path.join('.') || '(root)'}: ${i.message}`);
  }
  return parsed.data as z.infer<S>;
}

/**
 * Reads and validates `<dataDir>/cluster.json`, its embedded topology map included.
 * @returns the config, or null when the file does not exist.
 * @throws ConfigError when it exists but is not a valid configuration.
 */
export async function loadConfig(dataDir: string): Promise<ClusterConfig | null> {
  const config = await readConfigFile(dataDir, ClusterConfigSchema);
  if (!config) return null;
  // Loaded here, not at the top: clients that only read API addresses (access.ts) skip it.
  const placement: typeof import('../../placement/index.ts') = await import('../../placement/index.ts');
  try {
    placement.validateMap(config.map);
  } catch (e) {
    throw new ConfigError(`${join(dataDir, CONFIG_FILE)}: map: ${(e as Error).message}`);
  }
  return config;
}

/**
 * Writes the configuration atomically (temp file, fsync, rename), readable by its owner only
 * (CONFIG_MODE): the file holds the cluster token.
 */
export async function saveConfig(dataDir: string, config: ClusterConfig): Promise<void> {
  const path = join(dataDir, CONFIG_FILE);
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w', CONFIG_MODE);
  try {
    // The mode given to open() applies only to a new file: a stale temp file keeps its own.
    await fh.chmod(CONFIG_MODE);
    await fh.writeFile(JSON.stringify(config, null, 2) + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

/**
 * Tightens `<dataDir>/cluster.json` to CONFIG_MODE when group or others may access it
 * (e.g. a copy made with `cp` or `scp` under the usual umask).
 * @returns true when the mode was changed; false when it was already tight or there is no file.
 * @throws ConfigError when the file exists but its mode cannot be changed (e.g. another owner).
 */
export async function secureConfigFile(dataDir: string): Promise<boolean> {
  const path = join(dataDir, CONFIG_FILE);
  let mode: number;
  try {
    mode = (await stat(path)).mode & 0o777;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new ConfigError(`cannot stat ${path}: ${(e as Error).message}`);
  }
  if ((mode & ~CONFIG_MODE) === 0) return false;
  try {
    await chmod(path, CONFIG_MODE);
  } catch (e) {
    throw new ConfigError(`${path} is readable by others (mode ${mode.toString(8).padStart(4, '0')}) and holds the cluster token; cannot change it to 0600: ${(e as Error).message}`);
  }
  return true;
}
