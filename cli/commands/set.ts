import { Args, Command } from '@oclif/core';
import { DEFAULT_SETTINGS, type MapSettings, type OperatorChange } from '../../src/clustermap/index.ts';
import { apiFlags } from '../lib/api.ts';
import { submitChange } from '../lib/change.ts';
import { formatDuration, parseDuration } from '../lib/duration.ts';
import { formatSize, parseSize } from '../lib/size.ts';

/** One cluster-wide setting as the CLI names it, and the map settings field it changes. */
export interface SettingKey {
  /** Name on the command line (`cairn set KEY`). */
  key: string;
  /** Field of MapSettings. */
  field: keyof MapSettings;
  /** flag: set/unset without a value; rate: bytes/s; duration: milliseconds. */
  kind: 'flag' | 'rate' | 'duration';
  /** One line for help and `cairn map show`. */
  summary: string;
}

/** The settings `cairn set` and `cairn unset` know, in the order help and `map show` list them. */
export const SETTING_KEYS: readonly SettingKey[] = [
  { key: 'noout', field: 'noout', kind: 'flag', summary: 'down nodes are not marked out automatically, for maintenance' },
  { key: 'recovery-rate', field: 'recoveryBytesPerSec', kind: 'rate', summary: 'per-node rate of resync, backfill, rebalance and scrub; 0 = unlimited' },
  { key: 'scrub-interval', field: 'scrubIntervalMs', kind: 'duration', summary: 'how often each extent is scrubbed; 0 = never on schedule' },
  { key: 'deep-scrub-interval', field: 'deepScrubIntervalMs', kind: 'duration', summary: 'how often each extent is deep-scrubbed; 0 = never on schedule' },
];

/** "noout, recovery-rate, scrub-interval, deep-scrub-interval". */
const KEY_LIST = SETTING_KEYS.map((k) => k.key).join(', ');

/**
 * Renders a setting's value the way the CLI accepts it: "on"/"off", "64 MiB/s" (or
 * "unlimited"), "24h" (or "0 (never on schedule)").
 */
export function formatSetting(k: SettingKey, value: MapSettings[keyof MapSettings]): string {
  switch (k.kind) {
    case 'flag': return value ? 'on' : 'off';
    case 'rate': return value === 0 ? 'unlimited' : `${formatSize(value as number)}/s`;
    case 'duration': return value === 0 ? '0 (never on schedule)' : formatDuration(value as number);
  }
}

/**
 * The map change of `cairn set KEY [VALUE]` (mode 'set') or `cairn unset KEY` (mode
 * 'unset': flags off, other keys back to DEFAULT_SETTINGS).
 * @throws Error with a one-line message on an unknown key, a missing, unexpected or
 *         malformed value.
 */
export function settingsChange(mode: 'set' | 'unset', key: string, value: string | undefined): OperatorChange {
  const k = SETTING_KEYS.find((x) => x.key === key);
  if (!k) throw new Error(`unknown setting '${key}'; the settings are: ${KEY_LIST}`);
  let v: MapSettings[keyof MapSettings];
  if (mode === 'unset') {
    if (value !== undefined) throw new Error(`\`cairn unset ${key}\` takes no value`);
    v = k.kind === 'flag' ? false : DEFAULT_SETTINGS[k.field];
  } else if (k.kind === 'flag') {
    if (value !== undefined) throw new Error(`${key} is a flag: \`cairn set ${key}\` takes no value (\`cairn unset ${key}\` clears it)`);
    v = true;
  } else {
    if (value === undefined) throw new Error(`\`cairn set ${key}\` needs a value (${k.kind === 'rate' ? 'e.g. 32MiB' : 'e.g. 12h'})`);
    v = k.kind === 'rate' ? parseSize(value.replace(/\/s$/i, '')) : parseDuration(value);
  }
  return { type: 'settings', settings: { [k.field]: v } };
}

/** `cairn set KEY [VALUE]`: changes a cluster-wide setting (a new map epoch). */
export default class SetSetting extends Command {
  static override summary = 'Change a cluster-wide setting: a new map epoch, signed and gossiped to every node and initiator.';
  static override description = [
    'Settings live in the cluster map, so every node applies the same value from the same epoch on, and each change shows in `cairn map history`. `cairn map show` prints the settings in force; `cairn unset KEY` restores a default.',
    '',
    'Settings:',
    ...SETTING_KEYS.map((k) => `- ${k.key}: ${k.summary} (default ${formatSetting(k, DEFAULT_SETTINGS[k.field])})`),
    '',
    'Rates take sizes per second (32MiB, 512M, 1GB, plain bytes; "/s" optional). Durations take 30s, 10m, 12h, 7d or plain milliseconds.',
  ].join('\n');

  static override examples = [
    { description: 'Keep down nodes in during maintenance (Ceph\'s noout):', command: '<%= config.bin %> set noout' },
    { description: 'Limit recovery traffic to 32 MiB/s per node:', command: '<%= config.bin %> set recovery-rate 32MiB' },
    { description: 'Recover as fast as the devices allow:', command: '<%= config.bin %> set recovery-rate 0' },
    { description: 'Scrub every extent twice a day, deep-scrub weekly:', command: '<%= config.bin %> set scrub-interval 12h && <%= config.bin %> set deep-scrub-interval 7d' },
  ];

  static override args = {
    key: Args.string({ description: `Setting: ${KEY_LIST}`, required: true }),
    value: Args.string({ description: 'Value (none for noout): a rate such as 32MiB, or a duration such as 12h' }),
  };

  static override flags = apiFlags;

  async run(): Promise<void> {
    const { args, flags } = await this.parse(SetSetting);
    let change: OperatorChange;
    try {
      change = settingsChange('set', args.key, args.value);
    } catch (e) {
      failOneLine(this, (e as Error).message);
    }
    await submitChange(this, flags, change);
  }
}

/**
 * Prints `message` as one line on stderr (oclif's this.error wraps at the terminal width)
 * and exits 1.
 * @throws oclif's ExitError (how a command exits).
 */
export function failOneLine(cmd: Command, message: string): never {
  cmd.logToStderr(` ›   Error: ${message}`);
  return cmd.exit(1);
}
