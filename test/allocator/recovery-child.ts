/**
 * Child process of recovery.test.ts: writes three records into a fresh partition — A
 * (key 1 pages 0..9) and A2 (key 1 pages 10..19), each followed by a flush, then B (key 2
 * pages 0..3) without one — prints where their pages are, and waits to be SIGKILLed.
 * argv: device path.
 */
import { Allocator } from '../../allocator/index.ts';
import { pagesData } from './helpers.ts';

const [path] = process.argv.slice(2);
const a = await Allocator.open({ path, offset: 0, size: 4 * 1024 * 1024, segmentBytes: 64 * 1024, summaryHoldMs: 0 });
await a.write(1, 0, pagesData(1, 0, 10, 1), 1);
await a.flush();
await a.write(1, 10, pagesData(1, 10, 10, 2), 2);
await a.flush();
await a.write(2, 0, pagesData(2, 0, 4, 3), 3);
process.stdout.write(JSON.stringify({ a3: a.locate(1, 3), a2: a.locate(1, 10), b: a.locate(2, 0) }) + '\n');
await new Promise(() => setInterval(() => undefined, 1000));
