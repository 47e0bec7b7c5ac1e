/**
 * Write leases (DESIGN promise 5) end to end on real node processes: a second attachment
 * fences the first on every node at once, generations only grow (also across a restart of
 * the whole cluster), and a node restarted after a takeover still fences the old holder.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { LocalCluster } from '../../src/cluster/index.ts';
import { BlockDeviceError } from '../../src/volume/index.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';

const MiB = 1024 * 1024;

test('a new attachment fences the old one everywhere, across restarts', async (t) => {
  t.timeout(300000);
  const { dir, cleanup } = tempDataDir();
  let cluster = await LocalCluster.start({ dataDir: dir, layout: { deviceBytes: 256 * MiB, volumeBytes: 64 * MiB } });
  try {
    const first = await cluster.attach('vol0');
    const data = randomBytes(MiB);
    await first.write(0, data);
    const second = await cluster.attach('vol0');
    t.true(second.leaseGeneration > first.leaseGeneration);

    // The first attachment is fenced on every extent, including ones the second never touched.
    for (const offset of [0, 8 * MiB, 40 * MiB]) {
      const e = await t.throwsAsync(first.write(offset, Buffer.alloc(4096, 1)), { instanceOf: BlockDeviceError });
      t.is(e?.code, 'EFENCED', `write at ${offset}`);
    }
    t.true((await second.read(0, MiB)).equals(data), 'the fenced writes changed nothing');
    await second.write(8 * MiB, Buffer.alloc(4096, 2));
    await second.flush();
    const held = second.leaseGeneration;

    // Crash and restart node 1: it still fences the old holder (stored fence table, and
    // generations learned from the authority), with no new announcement since.
    await cluster.stopNode(1, 'SIGKILL');
    await cluster.startNode(1);
    const view = cluster.view;
    const onNode1 = [...Array(64).keys()].filter((x) => view.nodeOf(view.members(1, x, 0)[0]) === 1);
    t.true(onNode1.length > 0, 'some extent has its primary on node 1');
    for (const x of onNode1.slice(0, 4)) {
      const e = await t.throwsAsync(first.write(x * MiB, Buffer.alloc(4096, 3)), { instanceOf: BlockDeviceError });
      t.is(e?.code, 'EFENCED', `extent ${x} (primary on the restarted node 1)`);
    }
    first.close();
    second.close();
    await cluster.stop();

    // A restarted cluster keeps issuing larger generations.
    cluster = await LocalCluster.start({ dataDir: dir });
    const again = await cluster.attach('vol0');
    t.true(again.leaseGeneration > held, `generation ${again.leaseGeneration} after ${held}`);
    t.true((await again.read(0, MiB)).equals(data), 'data intact');
    again.close();
  } finally {
    await cluster.stop();
    cleanup();
  }
});
