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

test('a malformed cluster.json is a ConfigError naming the field; the map is not its business', async (t) => {
  const { dir, cleanup } = tempDataDir();
  t.teardown(cleanup);
  const config = await createClusterConfig({ ...DEFAULT_LAYOUT, nodes: 3, volumeBytes: 0 });
  config.nodes.forEach((n, i) => (n.apiPort = 7100 + i));
  const valid = JSON.parse(JSON.stringify(config)) as Record<string, any>;
  const variant = (edit: (c: Record<string, any>) => void): string => {
    const c = structuredClone(valid);
    edit(c);
    return JSON.stringify(c);
  };
  const cases: Array<[string, RegExp]> = [
    ['{not json', /is not JSON/],
    ['[1]', /: \(root\): /],
    [variant((c) => (c.token = '')), /: token: /],
    [variant((c) => (c.nodes = {})), /: nodes: /],
    [variant((c) => delete c.nodes[0].host), /: nodes\.0\.host: /],
    [variant((c) => (c.nodes[1].apiPort = 70000)), /: nodes\.1\.apiPort: /],
  ];
  for (const [text, message] of cases) {
    writeFileSync(join(dir, CONFIG_FILE), text);
    const e = await t.throwsAsync(loadApiAccess(dir), { instanceOf: ConfigError });
    t.regex(e!.message, message, text.slice(0, 60));
  }
  // A bad topology map fails the full loader, not the API access.
  writeFileSync(join(dir, CONFIG_FILE), variant((c) => (c.map.root = 12345)));
  t.deepEqual((await loadApiAccess(dir))!.endpoints, config.nodes.map((n, i) => `http://${n.host}:${7100 + i}`));
  await t.throwsAsync(loadConfig(dir), { instanceOf: ConfigError, message: /: map: / });
});
