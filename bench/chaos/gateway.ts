/**
 * The chaos suite's gateway: a child process that attaches a volume of the local cluster in
 * a data directory (follows the gossiped map, looks the volume up in the catalog, takes the volume's write lease — a new
 * generation, fencing any earlier gateway) and serves it over NBD, like `cairn up` does in
 * process. It runs in its own process so that the suite can kill it -9 and start another.
 *
 *   node --import tsx bench/chaos/gateway.ts --data-dir DIR --state-dir TMP --port P [--host H] [--volume vol0]
 *
 * Every write it acknowledges is first appended to TMP/acks.log as "<ms since 1970> <offset> <length>"
 * (a synchronous append, so the line is in the file before the NBD reply leaves): the record
 * of what this gateway acked survives its kill -9, for checking the writes of an fio job that
 * the kill cut short.
 *
 * Prints one JSON line on stdout once it serves: {"event":"ready","generation":G,"port":P,"epoch":E}.
 * Over the IPC channel it answers {cmd:"flush",id} with {event:"flushed",id,error?} after a
 * volume flush. It stops (drains NBD, flushes, exits 0) on SIGTERM or when the parent's IPC
 * channel closes.
 */
import '../../src/gossip/polyfill.ts';
import { mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileLogger } from '../../src/logging/index.ts';
import { loadConfig, type VolumeConfig } from '../../src/config/index.ts';
import { ApiPool } from '../../src/gateway/index.ts';
import { MapFollower, Volume, grantLease, takeWriteLease } from '../../src/initiator/index.ts';
import { NbdServer } from '../../src/nbd/index.ts';
import { ForwardingDevice, type BlockDevice } from '../../src/volume/index.ts';
import { ConnectionPool } from '../../src/wire/index.ts';

/** A BlockDevice that appends every completed write to a file before resolving it. */
class AckRecorder extends ForwardingDevice {
  /** Records the writes to `inner` in the file open as `fd`. */
  constructor(inner: BlockDevice, private readonly fd: number) {
    super(inner);
  }

  /** Writes to the volume, then records the write (before the caller can ack it). */
  override async write(offset: number, data: Buffer, fua?: boolean): Promise<void> {
    await this.inner.write(offset, data, fua);
    writeSync(this.fd, `${Date.now()} ${offset} ${data.length}\n`);
  }
}

const { values: v } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    'state-dir': { type: 'string' },
    port: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    volume: { type: 'string', default: 'vol0' },
  },
});
const fail = (msg: string): never => {
  process.stderr.write(`chaos gateway: ${msg}\n`);
  process.exit(1);
};
const dataDir = v['data-dir'] ?? fail('usage: gateway.ts --data-dir DIR --state-dir TMP --port P [--host H] [--volume NAME]');
const stateDir = v['state-dir'] ?? fail('--state-dir is required');
const port = Number(v.port ?? fail('--port is required'));
const config = (await loadConfig(dataDir)) ?? fail(`no cluster.json in ${dataDir}`);

mkdirSync(stateDir, { recursive: true });
const acks = openSync(join(stateDir, 'acks.log'), 'a');
const { log } = fileLogger(join(stateDir, 'gateway.log'), { base: { gateway: process.pid } });
const follower = await MapFollower.start({ config, host: v.host, log, persistPath: join(stateDir, 'map.current') });
follower.control.redial();
const found = await new ApiPool(() => follower.current.map, config.token)
  .call<VolumeConfig>('GET', `/v1/volumes/${encodeURIComponent(v.volume!)}`)
  .catch((e: Error) => fail(`no volume ${v.volume} in the catalog of ${dataDir}: ${e.message}`));
const record: VolumeConfig = { id: found.id, name: found.name, sizeBytes: found.sizeBytes, pool: found.pool, extentBytes: found.extentBytes, thin: found.thin, lease: 0 };
const connections = new ConnectionPool({ token: config.token, address: (id) => follower.current.address(id) });
const volume = new Volume({
  views: follower,
  connections,
  record,
  lease: 0,
  log,
  renewLease: () => grantLease(follower.current, config.token, record.id),
});
const generation = await takeWriteLease(volume, record.id, follower.current, config.token);
const nbd = new NbdServer({ log: log.child({ subsystem: 'nbd' }) });
nbd.addExport(record.name, new AckRecorder(volume, acks), `Cairn volume ${record.name} (chaos gateway)`);
const bound = await nbd.listen(port, v.host);
process.stdout.write(`${JSON.stringify({ event: 'ready', generation, port: bound, epoch: follower.current.epoch })}\n`);

process.on('message', (m: { cmd?: string; id?: number }) => {
  if (m?.cmd !== 'flush') return;
  volume.flush().then(
    () => process.send?.({ event: 'flushed', id: m.id }),
    (e: Error) => process.send?.({ event: 'flushed', id: m.id, error: e.message }),
  );
});

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await nbd.close();
  await volume.flush().catch((e: Error) => log.warn({ err: e.message }, 'final flush failed'));
  volume.close();
  connections.close();
  await follower.stop();
  log.flush();
  process.exit(0);
}
process.on('SIGTERM', () => void stop());
process.on('disconnect', () => void stop());
