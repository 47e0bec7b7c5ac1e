/**
 * A stand-alone initiator control-plane process:
 * `node --import tsx src/initiator/follower-main.ts --data-dir DIR [--no-follow]`.
 * Joins the cluster's gossip as an initiator peer (MapFollower) and reports to a parent over
 * IPC: {type: 'ready', peerId, port, epoch}, then {type: 'map', epoch, at, down} for each
 * accepted epoch (at: ms since 1970, sub-ms precision; down: ids of nodes marked down).
 * Message {type: 'fetch', epoch} asks it to fetch a map on demand (answered with
 * {type: 'fetched', epoch}); {type: 'ping'} with {type: 'pong', at} (a same-run reference for
 * the benchmark: how fast a plain IPC message reaches the process). SIGTERM or the parent going away stop it. Used by the tests and
 * the gossip benchmark to run many initiators as real processes.
 */
import '../gossip/polyfill.ts';
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { fileLogger } from '../logging/index.ts';
import { loadConfig } from '../config/index.ts';
import type { SignedMap } from '../clustermap/index.ts';
import { MapFollower } from './map-follower.ts';

const { values } = parseArgs({ options: { 'data-dir': { type: 'string' }, 'no-follow': { type: 'boolean' }, name: { type: 'string' } } });
const dataDir = values['data-dir'];
if (!dataDir) {
  process.stderr.write('usage: follower-main.ts --data-dir DIR [--no-follow] [--name NAME]\n');
  process.exit(2);
}
const name = values.name ?? `initiator-${process.pid}`;
const { log } = fileLogger(join(dataDir, 'logs', `${name}.log`), { base: { initiator: name } });
const config = await loadConfig(dataDir);
if (!config) {
  process.stderr.write(`no cluster in ${dataDir}\n`);
  process.exit(1);
}
const follower = await MapFollower.start({ config: config!, host: config!.nodes[0].host, log, followMaps: !values['no-follow'] });
const report = (s: SignedMap): void => {
  if (process.connected) process.send?.({ type: 'map', epoch: s.epoch, at: follower.control.keeper.acceptedAt.get(s.epoch), down: s.map.nodes.filter((n) => !n.up).map((n) => n.id) });
};
follower.control.on('map', report);
process.on('message', (m: { type?: string; epoch?: number }) => {
  if (m?.type === 'ping' && process.connected) process.send?.({ type: 'pong', at: performance.timeOrigin + performance.now() });
  if (m?.type === 'fetch') void follower.refresh(m.epoch ?? 0).then((v) => process.connected && process.send?.({ type: 'fetched', epoch: v.epoch }));
});
process.send?.({ type: 'ready', peerId: follower.control.peerId, port: follower.control.gossipPort, epoch: follower.epoch });

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await follower.stop();
  log.flush();
  process.exit(0);
}
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
process.on('disconnect', () => void stop());
