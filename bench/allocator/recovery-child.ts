/**
 * Child of the allocator bench: fills `liveMiB` of pages sequentially (1 MiB writes),
 * overwrites `churnMiB` of random 4 KiB pages, flushes, prints "ready" and waits to be
 * SIGKILLed (no close, so recovery must roll forward from the last background checkpoint).
 * argv: device path, region bytes, live MiB, churn MiB.
 */
import { Allocator, PAGE } from '../../allocator/index.ts';

const [path, size, liveMiB, churnMiB] = process.argv.slice(2);
const a = await Allocator.open({ path, offset: 0, size: Number(size), maxUtilization: 0.9 });
const pages = (Number(liveMiB) * 1024 * 1024) / PAGE;
const mib = Buffer.alloc(1024 * 1024, 0x33);
let v = 1;
const inflight: Promise<void>[] = [];
for (let p = 0; p < pages; p += 256) {
  inflight.push(a.write(p / 256, 0, mib, v++));
  if (inflight.length >= 16) await inflight.shift();
}
await Promise.all(inflight);
const churn = (Number(churnMiB) * 1024 * 1024) / PAGE;
let issued = 0;
await Promise.all(Array.from({ length: 64 }, async () => {
  while (issued++ < churn) {
    const p = Math.floor(Math.random() * pages);
    await a.write(Math.floor(p / 256), p % 256, mib.subarray(0, PAGE), v++);
  }
}));
await a.flush();
process.stdout.write(JSON.stringify(a.stats()) + '\n');
await new Promise(() => setInterval(() => undefined, 1000));
