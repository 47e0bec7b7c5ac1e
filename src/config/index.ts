/** src/config: the cluster configuration file (schema, load, save). */
export * from './schema.ts';
export { CONFIG_FILE, CONFIG_MODE, ConfigError, loadConfig, saveConfig, secureConfigFile } from './file.ts';
export { loadApiAccess, type ApiAccess } from './access.ts';
