/**
 * Ceph's noout on a real cluster (3 node processes on 127.0.0.1, out after 1.5 s down):
 * with noout set through the management API, a node killed with SIGKILL is marked down but
 * stays in well past outAfterMs; once noout is unset it is marked out on the authority's
 * next membership check. Then `cairn set` / `cairn unset` against the same cluster: exit
 * codes, the settings in `cairn map show`, and one clear line for an unknown key.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { LocalCluster } from '../../src/cluster/index.ts';
import { ApiClient } from '../../src/api/index.ts';
import type { SubmitResult } from '../../src/authority/index.ts';
import { DEFAULT_SETTINGS, type MapNode, type MapSettings } from '../../src/clustermap/index.ts';
import { CAIRN, tempDataDir } from '../helpers/cairn-up.ts';
import { until } from '../helpers/cluster.ts';

const VICTIM = 2;
const OUT_AFTER_MS = 1500;
const DOWN_AFTER_MS = 1000;

type MapReply = { epoch: number; change: string; nodes: MapNode[]; settings: MapSettings };

let cluster: LocalCluster;
let api: ApiClient;
let dir: string;
let cleanup: () => void;

const run = promisify(execFile);

/** Runs `cairn ...args`; resolves with exit code, stdout and stderr (never rejects). */
async function cairn(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [CAIRN, ...args], { encoding: 'utf8', env: { ...process.env, CAIRN_DATA_DIR: dir } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** The map as the authority's node serves it, polled by the tests. */
let latest: MapReply | null = null;
let polling = true;
let poller: Promise<void> = Promise.resolve();

function victim(): MapNode | undefined {
  return latest?.nodes.find((n) => n.id === VICTIM);
}

test.before(async () => {
  const d = tempDataDir();
  dir = d.dir;
  cleanup = d.cleanup;
  cluster = await LocalCluster.start({
    dataDir: d.dir,
    layout: {
      nodes: 3, devicesPerNode: 1, deviceBytes: 16 << 20, partitionsPerDevice: 2, replicas: 3, volumeBytes: 0,
      membership: { heartbeatMs: 250, downAfterMs: DOWN_AFTER_MS, outAfterMs: OUT_AFTER_MS, digestMs: 500 },
    },
    startTimeoutMs: 120000,
  });
  // Node 1 answers; changes are forwarded to the authority (node 0).
  api = new ApiClient(`http://127.0.0.1:${cluster.config.nodes[1].apiPort}`, cluster.config.token);
  const authority = new ApiClient(`http://127.0.0.1:${cluster.config.nodes[0].apiPort}`, cluster.config.token);
  latest = await authority.call<MapReply>('GET', '/v1/map');
  poller = (async () => {
    while (polling) {
      latest = await authority.call<MapReply>('GET', '/v1/map').catch(() => latest);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
});

test.after.always(async () => {
  polling = false;
  await poller;
  await cluster?.stop();
  cleanup?.();
});

test.serial('noout keeps a down node in past outAfterMs; unsetting it lets the authority mark it out', async (t) => {
  t.deepEqual(latest!.settings, DEFAULT_SETTINGS, 'GET /v1/map carries the settings in force');
  const set = await api.call<SubmitResult>('POST', '/v1/map/changes', { type: 'settings', settings: { noout: true } });
  t.true(set.changed);
  t.true(await until(() => (latest?.epoch ?? 0) >= set.epoch, 5000));
  t.true(latest!.settings.noout);
  // Every peer learns it by gossip: the in-process initiator too.
  t.true(await until(() => cluster.follower!.control.keeper.map.settings?.noout === true, 5000), 'the initiator did not get the noout epoch');

  await cluster.stopNode(VICTIM, 'SIGKILL');
  t.true(await until(() => victim()?.up === false, DOWN_AFTER_MS + 15000), 'the killed node was not marked down');
  const downSince = victim()!.downSince!;
  t.true(victim()!.in);

  // The bounded "it did not happen" window: three times the grace period past downSince.
  const holdUntil = downSince + 3 * OUT_AFTER_MS;
  const wentOut = await until(() => victim()?.in === false, Math.max(0, holdUntil - Date.now()));
  t.false(wentOut, `node ${VICTIM} was marked out with noout set (${latest!.change})`);
  t.true(Date.now() - downSince > 2 * OUT_AFTER_MS);
  const log = readFileSync(join(dir, 'logs', 'node0.log'), 'utf8');
  const held = log.split('\n').filter((l) => l.includes(`noout set: node ${VICTIM} down past outAfterMs stays in`));
  t.is(held.length, 1, 'the authority logs the hold once');

  const unsetAt = Date.now();
  const unset = await api.call<SubmitResult>('POST', '/v1/map/changes', { type: 'settings', settings: { noout: false } });
  t.true(unset.changed);
  t.true(await until(() => victim()?.in === false, 10000), 'the node was not marked out after noout was unset');
  t.true(victim()!.autoOut);
  t.false(latest!.settings.noout);
  t.log(`node ${VICTIM} marked out ${Date.now() - unsetAt} ms after unset noout (down ${unsetAt - downSince} ms by then)`);

  const history = await api.call<{ epochs: Array<{ epoch: number; change: string }> }>('GET', '/v1/map/history');
  const changes = history.epochs.map((e) => e.change);
  const iSet = changes.indexOf('set noout');
  const iUnset = changes.indexOf('unset noout');
  const iOut = changes.findIndex((c) => c.includes(`${VICTIM} out (down past the grace period)`));
  t.true(iSet >= 0 && iSet < iUnset && iUnset < iOut, JSON.stringify(changes));
});

test.serial('cairn set / unset: exit codes, the settings in map show, one line for an unknown key', async (t) => {
  // Each run loads the CLI afresh (seconds on a busy machine): the failures run side by side.
  const [unknown, unknownUnset, noValue] = await Promise.all([cairn('set', 'nooutt'), cairn('unset', 'bogus'), cairn('set', 'recovery-rate')]);
  t.is(unknown.code, 1);
  t.is(unknown.stdout, '');
  t.is(unknown.stderr.trim().split('\n').length, 1, unknown.stderr);
  t.regex(unknown.stderr, /unknown setting 'nooutt'.*noout, recovery-rate, scrub-interval, deep-scrub-interval/);
  t.is(unknownUnset.code, 1);
  t.is(unknownUnset.stderr.trim().split('\n').length, 1, unknownUnset.stderr);
  t.is(noValue.code, 1, 'a missing value');
  t.regex(noValue.stderr, /needs a value/);

  const set = await cairn('set', 'noout', '--json');
  t.is(set.code, 0, set.stderr);
  t.true((JSON.parse(set.stdout) as SubmitResult).changed);
  const rate = await cairn('set', 'recovery-rate', '32MiB');
  t.is(rate.code, 0, rate.stderr);
  t.regex(rate.stdout, /Map epoch \d+ published/);

  const [show, json] = await Promise.all([cairn('map', 'show'), cairn('map', 'show', '--json')]);
  t.is(show.code, 0, show.stderr);
  t.regex(show.stdout, /settings: noout on, recovery-rate 32 MiB\/s \(set\), scrub-interval 1d, deep-scrub-interval 7d/);
  t.deepEqual((JSON.parse(json.stdout) as MapReply).settings, { ...DEFAULT_SETTINGS, noout: true, recoveryBytesPerSec: 32 << 20 });

  const unset = await cairn('unset', 'recovery-rate');
  t.is(unset.code, 0, unset.stderr);
  const again = await cairn('unset', 'noout');
  t.is(again.code, 0, again.stderr);
  const history = await api.call<{ epochs: Array<{ change: string }> }>('GET', '/v1/map/history');
  const changes = history.epochs.map((e) => e.change).slice(-4);
  t.deepEqual(changes, ['set noout', 'set recovery rate to 32 MiB/s', 'set recovery rate to 64 MiB/s (the default)', 'unset noout']);
  const after = await api.call<MapReply>('GET', '/v1/map');
  t.deepEqual(after.settings, DEFAULT_SETTINGS);
});
