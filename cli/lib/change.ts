/** Submitting a map change from a CLI command and reporting the outcome. */
import type { Command } from '@oclif/core';
import type { SubmitResult } from '../../src/authority/index.ts';
import type { OperatorChange } from '../../src/clustermap/index.ts';
import { clusterApi } from './api.ts';

/** Changes that move placement: new members backfill, then copies no longer placed are trimmed. */
const MOVES_DATA = new Set(['out', 'reweight', 'remove-node', 'remove-device']);

/**
 * Submits `change` through the API of the cluster named by `flags` and prints the new
 * epoch (or that nothing changed); exits 1 with the server's message on failure.
 */
export async function submitChange(cmd: Command, flags: { 'data-dir': string; api?: string; token?: string; json: boolean }, change: OperatorChange): Promise<void> {
  let r: SubmitResult;
  try {
    const api = await clusterApi(flags);
    r = await api.call<SubmitResult>('POST', '/v1/map/changes', change);
  } catch (e) {
    cmd.error((e as Error).message, { exit: 1 });
  }
  if (flags.json) {
    cmd.log(JSON.stringify(r));
    return;
  }
  if (!r.changed) {
    cmd.log(`No change: the map (epoch ${r.epoch}) already says so.`);
    return;
  }
  cmd.log(`Map epoch ${r.epoch} published (checksum ${r.checksum.toString(16).padStart(8, '0')}).`);
  if (MOVES_DATA.has(change.type)) {
    cmd.warn('this change moves placement: new members copy their extents from current holders in the background (watch `cairn recovery status`); copies no longer placed are trimmed once every new member has them.');
  }
}
