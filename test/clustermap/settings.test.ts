/**
 * Cluster-wide settings in the map: the 'settings' operator change merges keys, a change
 * that alters nothing makes no epoch, mapSettings fills in defaults, maps signed before
 * settings existed still parse and verify, and bad settings changes are rejected.
 */
import test from 'ava';
import {
  ClusterMapSchema, DEFAULT_SETTINGS, OperatorChangeSchema, applyChange, buildTopology, decodeMap, describeChange, encodeMap, generateAuthorityKeys,
  initialMap, mapSettings, openSignedMap, parsePrivateKey, parsePublicKey, signMap, type ClusterMap, type OperatorChange,
} from '../../src/clustermap/index.ts';
import type { ClusterConfig } from '../../src/config/index.ts';
import { settingsChange } from '../../cli/commands/set.ts';
import { formatDuration, parseDuration } from '../../cli/lib/duration.ts';

const CLUSTER = '00000000-0000-4000-8000-000000000002';
const MiB = 1024 * 1024;

function config(nodes = 3): ClusterConfig {
  return {
    format: 1, clusterId: CLUSTER, token: 'x'.repeat(32), pools: [], volumes: [], map: buildTopology([], 1),
    nodes: Array.from({ length: nodes }, (_, id) => ({ id, host: '127.0.0.1', port: 7000 + id, gossipPort: 7100 + id, apiPort: 7200 + id, devices: [{ path: `n${id}.img`, sizeBytes: 1 << 30, partitions: 4 }] })),
  };
}

const settings = (s: Extract<OperatorChange, { type: 'settings' }>['settings']): OperatorChange => ({ type: 'settings', settings: s });

test('defaults: 64 MiB/s recovery, daily scrub, weekly deep scrub, noout off', (t) => {
  t.deepEqual(DEFAULT_SETTINGS, { noout: false, recoveryBytesPerSec: 64 * MiB, scrubIntervalMs: 24 * 3600 * 1000, deepScrubIntervalMs: 7 * 24 * 3600 * 1000 });
  const m = initialMap(config());
  t.is(m.settings, undefined);
  t.deepEqual(mapSettings(m), DEFAULT_SETTINGS);
  // Overlay: keys the map carries win, the others stay defaults.
  t.deepEqual(mapSettings({ ...m, settings: { noout: true } }), { ...DEFAULT_SETTINGS, noout: true });
});

test('a settings change merges into the map, makes one epoch, and shows in its change line', (t) => {
  const m1 = initialMap(config());
  const m2 = applyChange(m1, settings({ noout: true }), 1000)!;
  t.truthy(m2);
  t.is(m2.epoch, 2);
  t.is(m2.change, 'set noout');
  t.deepEqual(m2.nodes, m1.nodes);
  t.true(mapSettings(m2).noout);

  const m3 = applyChange(m2, settings({ recoveryBytesPerSec: 32 * MiB }), 2000)!;
  t.is(m3.change, 'set recovery rate to 32 MiB/s');
  t.deepEqual(mapSettings(m3), { ...DEFAULT_SETTINGS, noout: true, recoveryBytesPerSec: 32 * MiB }, 'earlier keys stay');

  const m4 = applyChange(m3, settings({ scrubIntervalMs: 12 * 3600 * 1000, deepScrubIntervalMs: 0 }), 3000)!;
  t.is(m4.change, 'set scrub interval to 12h, turn scheduled deep scrub off');
  t.deepEqual(mapSettings(m4), { noout: true, recoveryBytesPerSec: 32 * MiB, scrubIntervalMs: 12 * 3600 * 1000, deepScrubIntervalMs: 0 });

  // Unset: back to the default, and a key at its default is not stored.
  const m5 = applyChange(m4, settings({ noout: false }), 4000)!;
  t.is(m5.change, 'unset noout');
  t.false(mapSettings(m5).noout);
  t.false('noout' in (m5.settings ?? {}));
  const m6 = applyChange(m5, settings({ recoveryBytesPerSec: DEFAULT_SETTINGS.recoveryBytesPerSec, scrubIntervalMs: DEFAULT_SETTINGS.scrubIntervalMs, deepScrubIntervalMs: DEFAULT_SETTINGS.deepScrubIntervalMs }), 5000)!;
  t.deepEqual(mapSettings(m6), DEFAULT_SETTINGS);
  t.false('settings' in m6, 'a map back at every default carries no settings object');
  t.regex(m6.change, /recovery rate to 64 MiB\/s \(the default\)/);

  // Every epoch encodes canonically and verifies signed.
  const keys = generateAuthorityKeys();
  for (const m of [m2, m3, m4, m5, m6]) {
    t.deepEqual(decodeMap(encodeMap(m)), m);
    t.deepEqual(openSignedMap(signMap(m, parsePrivateKey(keys.privateKeyPem)).wire, parsePublicKey(keys.publicKey), CLUSTER).map, m);
  }
});

test('a settings change that alters nothing returns null (no new epoch)', (t) => {
  const m1 = initialMap(config());
  t.is(applyChange(m1, settings({ noout: false }), 1000), null, 'unset noout when it is not set');
  t.is(applyChange(m1, settings({ recoveryBytesPerSec: DEFAULT_SETTINGS.recoveryBytesPerSec }), 1000), null);
  const m2 = applyChange(m1, settings({ noout: true, scrubIntervalMs: 3600000 }), 1000)!;
  t.is(applyChange(m2, settings({ noout: true }), 2000), null, 'set noout twice');
  t.is(applyChange(m2, settings({ scrubIntervalMs: 3600000, noout: true }), 2000), null, 'same values, other key order');
  // Node changes still compare as before, settings unchanged.
  const m3 = applyChange(m2, { type: 'out', node: 1 }, 3000)!;
  t.deepEqual(m3.settings, m2.settings, 'other changes carry the settings along');
  t.is(applyChange(m3, { type: 'out', node: 1 }, 4000), null);
});

test('describeChange reads like the operator typed it', (t) => {
  t.is(describeChange(settings({ noout: true })), 'set noout');
  t.is(describeChange(settings({ noout: false })), 'unset noout');
  t.is(describeChange(settings({ recoveryBytesPerSec: 0 })), 'set recovery rate to unlimited');
  t.is(describeChange(settings({ recoveryBytesPerSec: 1000000000 })), 'set recovery rate to 953.67 MiB/s (1000000000 B/s)');
  t.is(describeChange(settings({ scrubIntervalMs: 0 })), 'turn scheduled scrub off');
  t.is(describeChange(settings({ deepScrubIntervalMs: 14 * 86400000 })), 'set deep scrub interval to 14d');
  t.is(describeChange(settings({ scrubIntervalMs: 90000 })), 'set scrub interval to 90s');
});

test('a map signed before settings existed parses, verifies and takes the defaults', (t) => {
  // Built by hand, as an older authority wrote it: no settings key at all.
  const m = initialMap(config());
  const old: Record<string, unknown> = { ...m };
  delete old.settings;
  const parsed = ClusterMapSchema.safeParse(JSON.parse(JSON.stringify(old)));
  t.true(parsed.success);
  const keys = generateAuthorityKeys();
  const s = signMap(old as ClusterMap, parsePrivateKey(keys.privateKeyPem));
  const opened = openSignedMap(s.wire, parsePublicKey(keys.publicKey), CLUSTER);
  t.false('settings' in opened.map);
  t.deepEqual(mapSettings(opened.map), DEFAULT_SETTINGS);
  // And a settings change applies to it.
  t.true(mapSettings(applyChange(opened.map, settings({ noout: true }), 1)!).noout);
});

test('bad settings are rejected by OperatorChangeSchema and by the map schema', (t) => {
  const bad: Array<[unknown, RegExp]> = [
    [{ type: 'settings', settings: {} }, /at least one setting/],
    [{ type: 'settings' }, /Required/],
    [{ type: 'settings', settings: { noout: 'yes' } }, /boolean/],
    [{ type: 'settings', settings: { recoveryBytesPerSec: -1 } }, /greater than or equal to 0/],
    [{ type: 'settings', settings: { recoveryBytesPerSec: 1.5 } }, /integer/],
    [{ type: 'settings', settings: { scrubIntervalMs: Number.POSITIVE_INFINITY } }, /./],
    [{ type: 'settings', settings: { deepScrubIntervalMs: '7d' } }, /number/],
    [{ type: 'settings', settings: { nooout: true } }, /Unrecognized key/],
  ];
  for (const [body, message] of bad) {
    const r = OperatorChangeSchema.safeParse(body);
    t.false(r.success, JSON.stringify(body));
    if (!r.success) t.regex(r.error.issues[0].message, message, JSON.stringify(body));
  }
  t.true(OperatorChangeSchema.safeParse({ type: 'settings', settings: { noout: true, recoveryBytesPerSec: 0 } }).success);
  const m = initialMap(config());
  t.false(ClusterMapSchema.safeParse({ ...m, settings: { scrubIntervalMs: -5 } }).success);
  t.true(ClusterMapSchema.safeParse({ ...m, settings: { scrubIntervalMs: 5 } }).success);
});

test('the CLI turns `cairn set/unset KEY [VALUE]` into valid settings changes', (t) => {
  const ok: Array<[ReturnType<typeof settingsChange>, OperatorChange]> = [
    [settingsChange('set', 'noout', undefined), settings({ noout: true })],
    [settingsChange('unset', 'noout', undefined), settings({ noout: false })],
    [settingsChange('set', 'recovery-rate', '32MiB'), settings({ recoveryBytesPerSec: 32 * MiB })],
    [settingsChange('set', 'recovery-rate', '32MiB/s'), settings({ recoveryBytesPerSec: 32 * MiB })],
    [settingsChange('set', 'recovery-rate', '0'), settings({ recoveryBytesPerSec: 0 })],
    [settingsChange('unset', 'recovery-rate', undefined), settings({ recoveryBytesPerSec: DEFAULT_SETTINGS.recoveryBytesPerSec })],
    [settingsChange('set', 'scrub-interval', '12h'), settings({ scrubIntervalMs: 12 * 3600000 })],
    [settingsChange('set', 'deep-scrub-interval', '7d'), settings({ deepScrubIntervalMs: 7 * 86400000 })],
    [settingsChange('unset', 'deep-scrub-interval', undefined), settings({ deepScrubIntervalMs: DEFAULT_SETTINGS.deepScrubIntervalMs })],
  ];
  for (const [got, want] of ok) {
    t.deepEqual(got, want);
    t.true(OperatorChangeSchema.safeParse(got).success);
  }
  t.throws(() => settingsChange('set', 'nooutt', undefined), { message: /unknown setting 'nooutt'; the settings are: noout, recovery-rate, scrub-interval, deep-scrub-interval/ });
  t.throws(() => settingsChange('set', 'noout', 'yes'), { message: /takes no value/ });
  t.throws(() => settingsChange('unset', 'scrub-interval', '1h'), { message: /takes no value/ });
  t.throws(() => settingsChange('set', 'recovery-rate', undefined), { message: /needs a value/ });
  t.throws(() => settingsChange('set', 'recovery-rate', 'fast'), { message: /not a size/ });
  t.throws(() => settingsChange('set', 'scrub-interval', 'often'), { message: /not a duration/ });
});

test('durations: 30s, 10m, 12h, 7d, 250ms and plain milliseconds', (t) => {
  t.is(parseDuration('30s'), 30000);
  t.is(parseDuration('10m'), 600000);
  t.is(parseDuration('12h'), 43200000);
  t.is(parseDuration('7d'), 604800000);
  t.is(parseDuration('250ms'), 250);
  t.is(parseDuration('90000'), 90000);
  t.is(parseDuration('1.5h'), 5400000);
  t.is(parseDuration('0'), 0);
  for (const bad of ['', '-1s', '1w', 'h', '1 2s', '1e3']) t.throws(() => parseDuration(bad), { message: /is not a duration/ }, bad);
  t.is(formatDuration(604800000), '7d');
  t.is(formatDuration(43200000), '12h');
  t.is(formatDuration(90000), '90s');
  t.is(formatDuration(250), '250ms');
  t.is(formatDuration(0), '0');
});
