/** src/config: the cluster configuration file (schema, load, save). */
export * from './schema.ts';
export { CONFIG_FILE, ConfigError, loadConfig, saveConfig } from './file.ts';
