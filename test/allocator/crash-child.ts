/**
 * Child process of crash.test.ts: opens the allocator and runs a random workload until it
 * is SIGKILLed, logging every step to a journal file with synchronous writes (which
 * survive the kill) so the parent can tell what was issued, acknowledged and flushed:
 *   W id key first count version   before issuing a write
 *   T id key first count version   before issuing a trim
 *   A id                           the write/trim resolved
 *   F fid                          before calling flush (covers every W/T issued before)
 *   D fid                          that flush resolved
 *   R                              allocator open (recovery done), workload starting
 * argv: device path, journal path, first version, seed, keys, pages per key.
 */
import { openSync, writeSync } from 'node:fs';
import { Allocator } from '../../allocator/index.ts';
import { pagesData, rng } from './helpers.ts';

const [path, journal, firstVersion, seed, nKeys, nPages] = process.argv.slice(2);
const j = openSync(journal, 'a');
const log = (s: string): void => void writeSync(j, s + '\n');
const a = await Allocator.open({ path, offset: 64 * 1024, size: 4 * 1024 * 1024, segmentBytes: 32 * 1024, checkpointMinBytes: 256 * 1024, checkpointFactor: 0.5 });
log('R');
const rand = rng(Number(seed));
let version = Number(firstVersion);
let id = 0;
let fid = 0;
let inflight = 0;
const keys = Number(nKeys);
const pages = Number(nPages);
for (;;) {
  while (inflight >= 32) await new Promise((r) => setImmediate(r));
  const key = Math.floor(rand() * keys) * 2 ** 32 + 7;
  const first = Math.floor(rand() * pages);
  const x = rand();
  const myId = ++id;
  const v = version++;
  inflight++;
  if (x < 0.12) {
    const count = Math.min(1 + Math.floor(rand() * 8), pages - first);
    log(`T ${myId} ${key} ${first} ${count} ${v}`);
    void a.trim(key, first, count, v).then(() => { inflight--; log(`A ${myId}`); });
  } else {
    const count = Math.min(1 + Math.floor(rand() * 4), pages - first);
    log(`W ${myId} ${key} ${first} ${count} ${v}`);
    void a.write(key, first, pagesData(key, first, count, v), v).then(() => { inflight--; log(`A ${myId}`); });
  }
  if (rand() < 0.08) {
    const f = ++fid;
    log(`F ${f}`);
    void a.flush().then(() => log(`D ${f}`));
  }
  if (id % 8 === 0) await new Promise((r) => setImmediate(r));
}
