/**
 * freePorts: ports picked by one process are not handed to another process on the same
 * machine while their nodes may still be starting (or down for a restart), even though
 * nothing is bound to them yet. CI once lost a membership test to a node port that a
 * concurrent test's cluster had picked in that window (EADDRINUSE at node start).
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { freePorts } from '../../src/cluster/index.ts';

const run = promisify(execFile);
const PORTS = fileURLToPath(new URL('../../src/net/ports.ts', import.meta.url));

test('ports picked in another process are not picked again while reserved', async (t) => {
  // 500 + 500 ports out of ~22,000: picked independently they would share about 11 ports
  // (P(no overlap) ≈ e^-11), so the test fails without the reservation.
  const script = `import { freePorts } from ${JSON.stringify(PORTS)}; console.log(JSON.stringify(await freePorts(500)));`;
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]);
  const theirs = new Set<number>(JSON.parse(stdout));
  t.is(theirs.size, 500);
  const ours = await freePorts(500);
  t.is(new Set(ours).size, 500);
  const shared = ours.filter((p) => theirs.has(p));
  t.deepEqual(shared, [], 'ports handed out twice');
  t.true(ours.every((p) => p >= 10000 && p < 65536));
});
