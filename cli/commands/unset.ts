import { Args, Command } from '@oclif/core';
import { DEFAULT_SETTINGS, type OperatorChange } from '../../src/clustermap/index.ts';
import { apiFlags } from '../lib/api.ts';
import { submitChange } from '../lib/change.ts';
import { SETTING_KEYS, failOneLine, formatSetting, settingsChange } from './set.ts';

/** `cairn unset KEY`: clears a flag or restores a setting's default (a new map epoch). */
export default class UnsetSetting extends Command {
  static override summary = 'Clear a cluster-wide flag, or restore a setting to its default: a new map epoch.';
  static override description = [
    'The opposite of `cairn set`. Unsetting noout lets the authority mark nodes that have been down past the grace period out again (on its next membership check). Unsetting any other key restores its default:',
    '',
    ...SETTING_KEYS.map((k) => `- ${k.key}: ${k.kind === 'flag' ? 'off' : formatSetting(k, DEFAULT_SETTINGS[k.field])}`),
  ].join('\n');

  static override examples = [
    { description: 'End maintenance: down nodes are marked out again after the grace period:', command: '<%= config.bin %> unset noout' },
    { description: 'Back to the default recovery rate:', command: '<%= config.bin %> unset recovery-rate' },
  ];

  static override args = {
    key: Args.string({ description: `Setting: ${SETTING_KEYS.map((k) => k.key).join(', ')}`, required: true }),
  };

  static override flags = apiFlags;

  async run(): Promise<void> {
    const { args, flags } = await this.parse(UnsetSetting);
    let change: OperatorChange;
    try {
      change = settingsChange('unset', args.key, undefined);
    } catch (e) {
      failOneLine(this, (e as Error).message);
    }
    await submitChange(this, flags, change);
  }
}
