/**
 * Child process of gateway-crash.test.ts: a gateway (initiator) of the local cluster in a
 * data directory, in its own process so that the test can kill it -9 mid-write.
 *
 *   node --import tsx test/e2e/gateway-child.ts --data-dir DIR --state-dir TMP [--volume vol0]
 *     [--span BYTES] [--depth N] [--every N]
 *
 * Reads DIR's cluster.json, follows the gossiped map (MapFollower, its map persisted under
 * TMP), looks the volume up in the catalog (any node's API), takes the volume's write lease (a new generation from the authority), then writes
 * random 4 KiB–64 KiB page-aligned blocks of random bytes at random offsets in the first
 * `span` bytes (default 16 MiB), `depth` (default 32) in flight, forever, never flushing.
 * Prints JSON lines on stdout:
 *   {"event":"lease","generation":G}           the lease is held, writes start
 *   {"event":"writes","done":N,"inflight":K}   every `every` (default 250) completed writes
 *   {"event":"error","message":...}            a write failed (the loop goes on)
 */
import '../../src/gossip/polyfill.ts';
import { randomBytes, randomInt } from 'node:crypto';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino, destination } from 'pino';
import { loadConfig, type VolumeConfig } from '../../src/config/index.ts';
import { ApiPool } from '../../src/gateway/index.ts';
import { MapFollower, Volume, takeWriteLease } from '../../src/initiator/index.ts';
import { ConnectionPool, PAGE_SIZE } from '../../src/wire/index.ts';

const { values: v } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    'state-dir': { type: 'string' },
    volume: { type: 'string', default: 'vol0' },
    span: { type: 'string', default: String(16 * 1024 * 1024) },
    depth: { type: 'string', default: '32' },
    every: { type: 'string', default: '250' },
  },
});
const out = (o: object): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
const dataDir = v['data-dir'];
const stateDir = v['state-dir'];
if (!dataDir || !stateDir) {
  process.stderr.write('usage: gateway-child.ts --data-dir DIR --state-dir TMP [--volume NAME]\n');
  process.exit(2);
}
const config = await loadConfig(dataDir);
if (!config) {
  process.stderr.write(`no cluster.json in ${dataDir}\n`);
  process.exit(1);
}

const log = pino({ base: { gateway: process.pid } }, destination({ dest: join(stateDir, 'gateway.log'), sync: true, mkdir: true }));
const follower = await MapFollower.start({ config, host: config.nodes[0].host, log, persistPath: join(stateDir, 'map.current') });
follower.control.redial();
let record: VolumeConfig;
try {
  const r = await new ApiPool(() => follower.current.map, config.token).call<VolumeConfig>('GET', `/v1/volumes/${encodeURIComponent(v.volume!)}`);
  record = { id: r.id, name: r.name, sizeBytes: r.sizeBytes, pool: r.pool, extentBytes: r.extentBytes, thin: r.thin, lease: 0 };
} catch (e) {
  process.stderr.write(`no volume ${v.volume} in the catalog of ${dataDir}: ${(e as Error).message}\n`);
  process.exit(1);
}
const connections = new ConnectionPool({ token: config.token, address: (id) => follower.current.address(id) });
const volume = new Volume({ views: follower, connections, record, lease: 0, log });
const generation = await takeWriteLease(volume, record.id, follower.current, config.token);
out({ event: 'lease', generation, epoch: follower.current.epoch });

const span = Math.min(Number(v.span), record.sizeBytes);
const depth = Number(v.depth);
const every = Number(v.every);
const spanPages = span / PAGE_SIZE;
let done = 0;
let inflight = 0;

/** One random write: 1–16 pages of random bytes at a random page inside the span. */
async function one(): Promise<void> {
  const pages = randomInt(1, 17);
  const first = randomInt(0, spanPages - pages + 1);
  await volume.write(first * PAGE_SIZE, randomBytes(pages * PAGE_SIZE));
}

function next(): void {
  inflight++;
  one().then(
    () => {
      if (++done % every === 0) out({ event: 'writes', done, inflight });
    },
    // A failed write is reported and, after a pause, replaced by a new one.
    (e: Error) => {
      out({ event: 'error', message: e.message });
      return new Promise((r) => setTimeout(r, 100));
    },
  ).finally(() => {
    inflight--;
    next();
  });
}
for (let i = 0; i < depth; i++) next();
