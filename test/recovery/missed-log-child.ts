/**
 * Child process of missed-log.test.ts (crash test): opens the missed log and adds records
 * until it is SIGKILLed, journaling with synchronous writes (which survive the kill):
 *   R                      log open (replay done), workload starting
 *   A node volume extent   that add's promise resolved (the record is durable)
 *   D node volume extent   before calling remove (the record may or may not survive)
 * Extents are unique per run (`base` + counter); node = extent % 7, volume = extent % 3.
 * Most acknowledged records are removed again, so the file churns and
 * compactions happen while the process may be killed.
 * argv: log path, journal path, extent base, seed.
 */
import { openSync, writeSync } from 'node:fs';
import { MissedLog } from '../../src/recovery/missed-log.ts';

const [path, journal, base, seed] = process.argv.slice(2);
const j = openSync(journal, 'a');
const log = (s: string): void => void writeSync(j, s + '\n');
let a = Number(seed) >>> 0;
const rand = (): number => {
  a = (a + 0x6d2b79f5) >>> 0;
  let t = a;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

const ml = await MissedLog.open(path);
log('R');
let next = Number(base);
let inflight = 0;
const acked: number[] = [];
for (;;) {
  while (inflight >= 64) await new Promise((r) => setImmediate(r));
  const extent = next++;
  const node = extent % 7;
  const volume = extent % 3;
  inflight++;
  void Promise.resolve(ml.add(node, volume, extent)).then(() => {
    inflight--;
    log(`A ${node} ${volume} ${extent}`);
    acked.push(extent);
  });
  if (acked.length > 0 && rand() < 0.9) {
    const e = acked.splice(Math.floor(rand() * acked.length), 1)[0];
    log(`D ${e % 7} ${e % 3} ${e}`);
    ml.remove(e % 7, e % 3, e);
  }
  if (next % 16 === 0) await new Promise((r) => setImmediate(r));
}
