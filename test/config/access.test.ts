/**
 * loadApiAccess (src/config/access.ts): what CLI commands read from cluster.json to reach a
 * running cluster — the token and each node's API address — agrees with the full loader on
 * a real configuration, and a malformed file gets a ConfigError naming the field.
 */
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createClusterConfig, DEFAULT_LAYOUT } from '../../src/cluster/create.ts';
import { CONFIG_FILE, ConfigError, loadApiAccess, loadConfig, saveConfig } from '../../src/config/index.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';

test('token and API endpoints as the full loader sees them; null without cluster.json', async (t) => {
  const { dir, cleanup } = tempDataDir();
  t.teardown(cleanup);
  t.is(await loadApiAccess(dir), null);
  const config = await createClusterConfig({ ...DEFAULT_LAYOUT, nodes: 3, volumeBytes: 0 });
  config.nodes.forEach((n, i) => (n.apiPort = 7100 + i));
  delete config.nodes[1].apiPort;
  await saveConfig(dir, config);
  const full = (await loadConfig(dir))!;
  const access = (await loadApiAccess(dir))!;
  t.is(access.token, full.token);
  t.deepEqual(access.endpoints, full.nodes.filter((n) => n.apiPort !== undefined).map((n) => `http://${n.host}:${n.apiPort}`));
  t.is(access.endpoints.length, 2, 'a node without an API port is left out');
});

test('a malformed cluster.json is a ConfigError naming the field', async (t) => {
  const { dir, cleanup } = tempDataDir();
  t.teardown(cleanup);
  const cases: Array<[string, RegExp]> = [
    ['{not json', /is not JSON/],
    ['[1]', /token: expected a non-empty string/],
    ['{"token": "", "nodes": []}', /token: expected a non-empty string/],
    ['{"token": "t", "nodes": {}}', /nodes: expected an array/],
    ['{"token": "t", "nodes": [{"apiPort": 7000}]}', /nodes\.0\.host/],
    ['{"token": "t", "nodes": [{"host": "h", "apiPort": 70000}]}', /nodes\.0\.apiPort/],
  ];
  for (const [text, message] of cases) {
    writeFileSync(join(dir, CONFIG_FILE), text);
    const e = await t.throwsAsync(loadApiAccess(dir), { instanceOf: ConfigError });
    t.regex(e!.message, message, text);
  }
});
