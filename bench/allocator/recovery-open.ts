/**
 * Child of the allocator bench: opens a partition left behind by a SIGKILLed writer and
 * reports, as one JSON line on stdout, how long the open (checkpoint load + roll-forward)
 * took (wall and CPU seconds of this process), what recovery did, and how much the JS heap
 * and ArrayBuffers grew per mapped page.
 * It exits without close(), so the log is left as it was (close would write a checkpoint)
 * and the next run recovers the same way. argv: device path, region bytes.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Allocator } from '../../allocator/index.ts';

const [path, size] = process.argv.slice(2);
setFlagsFromString('--expose-gc');
const gc = ((globalThis as { gc?: () => void }).gc ?? runInNewContext('gc')) as (() => void) | undefined;
for (let i = 0; i < 3; i++) {
  gc?.();
  await new Promise((r) => setTimeout(r, 50));
}
const m0 = process.memoryUsage();
const c0 = process.cpuUsage();
const t0 = performance.now();
const a = await Allocator.open({ path, offset: 0, size: Number(size) });
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(c0);
for (let i = 0; i < 3; i++) {
  gc?.();
  await new Promise((r) => setTimeout(r, 50));
}
const m1 = process.memoryUsage();
const st = a.stats();
process.stdout.write(JSON.stringify({
  seconds,
  cpuSeconds: (cpu.user + cpu.system) / 1e6,
  recovery: st.recovery,
  liveBytes: st.liveBytes,
  mappedPages: st.mappedPages,
  mapBytes: st.mapBytes,
  measuredBytesPerPage: gc ? (m1.heapUsed + m1.arrayBuffers - m0.heapUsed - m0.arrayBuffers) / st.mappedPages : null,
}) + '\n');
process.exit(0);
