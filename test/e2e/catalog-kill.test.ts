/**
 * The volume catalog survives `kill -9` of any one node (3 nodes, catalog pool size 3,
 * min_size 2), on real node processes (LocalCluster, fast failure detection):
 *
 * 1. kill -9 of a node that does not run the map authority (node 1): right away, a surviving
 *    node lists every volume and shows one, and a volume opens (VolumeSet: catalog lookup,
 *    write lease from the authority) and takes 1 MiB written and read back. A volume created
 *    while node 1 is down (a degraded catalog write: 2 of 3 copies) is shown by node 1's own
 *    API once it is back, and node 1 holds its own copy of that record again (resync carries
 *    the catalog like any volume).
 * 2. kill -9 of the authority's node (node 0): reads need no authority, so nodes 1 and 2 still
 *    list and show every volume. Changes do: the catalog's one mutator is the authority's node
 *    (src/catalog/store.ts), so a create sent to node 1 or 2 is forwarded there and answers
 *    503 naming the unreachable map authority. That is the documented limit until the
 *    authority itself survives the loss of a machine (issue 14); once node 0 is back, creates
 *    work again.
 *
 * Every wait polls a condition; nothing sleeps a fixed time.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { ApiClient, ApiError } from '../../src/api/index.ts';
import { catalogExtent, indexKeyOf, volumeKey } from '../../src/catalog/keys.ts';
import { LocalCluster } from '../../src/cluster/index.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';
import { eventually, processGone } from '../helpers/cluster.ts';
import { recoveryReport, resyncDone } from '../helpers/recovery.ts';

const MiB = 1 << 20;
/** Fast failure detection (as the other e2e tests): a killed node is marked down in ~1–2 s. */
const MEMBERSHIP = { heartbeatMs: 250, downAfterMs: 1200, digestMs: 250 };
const NAMES = ['alpha', 'bravo', 'charlie'];

interface VolumeView {
  name: string;
  id: number;
  sizeBytes: number;
  state: string;
}


/** kill -9 of node `id`'s process; resolves once the process is gone. */
async function kill9(cluster: LocalCluster, id: number): Promise<number> {
  const pid = cluster.pidOf(id);
  if (!pid) throw new Error(`node ${id} is not running`);
  process.kill(pid, 'SIGKILL');
  if (!(await eventually(async () => processGone(pid) && cluster.pidOf(id) === undefined, 10000))) throw new Error(`node ${id} (pid ${pid}) did not exit`);
  return pid;
}

/** The status of a call that must fail, and its message. */
async function failure(p: Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await p;
    return { status: 200, message: 'succeeded' };
  } catch (e) {
    if (e instanceof ApiError) return { status: e.status, message: e.message };
    throw e;
  }
}

/** The open attempted right after node 1's kill (checked by the known-gap test below). */
let early: { ok: boolean; upInMap: boolean; error: string } | null = null;

test.serial('the catalog survives kill -9 of any one node; changes wait for the authority', async (t) => {
  t.timeout(120000);
  const { dir, cleanup } = tempDataDir();
  const T0 = Date.now();
  const cluster = await LocalCluster.start({
    dataDir: dir,
    layout: { nodes: 3, devicesPerNode: 1, deviceBytes: 128 * MiB, partitionsPerDevice: 2, replicas: 3, volumeBytes: 0, membership: MEMBERSHIP },
    startTimeoutMs: 45000,
  });
  const api = (id: number): ApiClient => {
    const n = cluster.config.nodes[id];
    return new ApiClient(`http://${n.host}:${n.apiPort}`, cluster.config.token, 30000);
  };
  const names = async (id: number): Promise<string[]> => (await api(id).call<{ volumes: VolumeView[] }>('GET', '/v1/volumes')).volumes.map((v) => v.name).sort();
  let set: ReturnType<LocalCluster['volumeSet']> | null = null;
  try {
    t.true(await eventually(async () => (await names(0)) !== null, 30000), 'the catalog serves');
    for (const name of NAMES) await api(0).call('POST', '/v1/volumes', { name, size: 16 * MiB });
    t.deepEqual(await names(2), NAMES);

    // ---- 1. kill -9 of node 1 (not the authority) ----
    const killedAt = Date.now();
    await kill9(cluster, 1);
    // Open right away, alongside the reads, before the map marks node 1 down: see the last test.
    set = cluster.volumeSet({ ioTimeoutMs: 30000 });
    const upWhenOpened = cluster.view.isUp(1);
    const earlyOpen = set.open('charlie').then(() => ({ ok: true, upInMap: upWhenOpened, error: '' }), (e: Error) => ({ ok: false, upInMap: upWhenOpened, error: e.message }));
    t.deepEqual(await names(2), NAMES, 'node 2 lists every volume right after the kill');
    t.deepEqual(await names(0), NAMES, 'so does node 0');
    const shown = await api(2).call<VolumeView>('GET', '/v1/volumes/bravo');
    t.is(shown.sizeBytes, 16 * MiB);
    t.log(`node 1 killed; list and show through node 2 in ${Date.now() - killedAt} ms`);

    early = await earlyOpen;
    t.log(`open right after the kill (node 1 ${upWhenOpened ? 'still up' : 'already down'} in the map): ${early.ok ? 'ok' : early.error}`);
    await set.close();

    // Once the map marks node 1 down, a volume opens and serves I/O on the other two copies.
    t.true(await eventually(async () => !cluster.view.isUp(1), 30000), 'the map marks node 1 down');
    t.log(`node 1 marked down ${Date.now() - killedAt} ms after the kill`);
    set = cluster.volumeSet({ ioTimeoutMs: 30000 });
    const opened = await set.open('charlie');
    t.truthy(opened, 'charlie opens with node 1 down');
    const data = randomBytes(MiB);
    await opened!.device.write(3 * MiB, data);
    await opened!.device.flush();
    t.true((await opened!.device.read(3 * MiB, MiB)).equals(data), '1 MiB written and read back with node 1 down');
    t.log(`open + 1 MiB write/flush/read with node 1 down done ${Date.now() - killedAt} ms after the kill`);
    await set.close();
    set = null;

    // A change while node 1 is down: the catalog write is degraded (2 of 3 copies, min_size 2).
    const created = await api(2).call<VolumeView>('POST', '/v1/volumes', { name: 'delta', size: 32 * MiB });
    t.is(created.name, 'delta');
    t.deepEqual(await names(0), [...NAMES, 'delta'].sort());

    await cluster.startNode(1);
    t.true(await cluster.waitPeered([1], 30000), 'node 1 peered after its restart');
    const back = await api(1).call<VolumeView>('GET', '/v1/volumes/delta');
    t.is(back.id, created.id, 'node 1\'s API shows the volume created while it was down');
    t.is(back.sizeBytes, 32 * MiB);
    t.deepEqual(await names(1), [...NAMES, 'delta'].sort(), 'and lists it');
    // Node 1 itself holds the records it missed again (not only served from the others' copies).
    const missedExtents = [catalogExtent(volumeKey('delta')), catalogExtent(indexKeyOf('delta'))];
    const holds = async (): Promise<boolean> => {
      const r = await recoveryReport(cluster, 1);
      return !!r && !r.peering && missedExtents.every((x) => r.held.some(([v, e, b]) => v === 0 && e === x && b > 0) && !r.stale.some(([v, e]) => v === 0 && e === x));
    };
    t.true(await eventually(holds, 30000), 'node 1 holds current copies of the catalog records written while it was down');
    t.true(await resyncDone(cluster, 30000, [1]), 'no resync owed to node 1');

    // ---- 2. kill -9 of node 0 (the map authority, the catalog's mutator) ----
    const authority = cluster.config.authority?.node ?? 0;
    t.is(authority, 0, 'node 0 runs the map authority');
    const killed0 = Date.now();
    await kill9(cluster, 0);
    const all = [...NAMES, 'delta'].sort();
    t.deepEqual(await names(1), all, 'node 1 lists every volume with the authority down');
    t.deepEqual(await names(2), all, 'node 2 too');
    t.is((await api(1).call<VolumeView>('GET', '/v1/volumes/delta')).id, created.id);
    t.is((await api(2).call<VolumeView>('GET', '/v1/volumes/alpha')).sizeBytes, 16 * MiB);
    t.log(`node 0 killed; reads through nodes 1 and 2 in ${Date.now() - killed0} ms`);
    for (const via of [1, 2]) {
      const f = await failure(api(via).call('POST', '/v1/volumes', { name: 'echo', size: 16 * MiB }));
      t.is(f.status, 503, `a create through node ${via} with the authority down: ${f.message}`);
      t.regex(f.message, /authority/i, 'the 503 says the map authority is unreachable');
      t.log(`create through node ${via}: 503 ${f.message}`);
    }
    t.false((await names(1)).includes('echo'), 'the refused create left nothing behind');

    await cluster.startNode(0);
    const restarted = Date.now();
    let last = '';
    const createsAgain = await eventually(async () => {
      try {
        await api(2).call('POST', '/v1/volumes', { name: 'echo', size: 16 * MiB });
        return true;
      } catch (e) {
        last = (e as Error).message;
        return false;
      }
    }, 30000);
    t.true(createsAgain, `creates work again once node 0 is back (last: ${last})`);
    t.log(`node 0 back; first create accepted ${Date.now() - restarted} ms after its restart`);
    // Node 1 asks the mutator (node 0, just restarted and peering) for the list, with a 2 s
    // bound, and reads the records' replicas itself when that runs out; under a loaded CI run
    // that read once missed the new record (read-after-write through a non-mutator: see the
    // issue-14 note). Wait for it, and say how long it took.
    const listed = Date.now();
    t.true(await eventually(async () => (await names(1)).includes('echo'), 15000), 'node 1 lists the volume created after node 0 came back');
    if (Date.now() - listed > 500) t.log(`node 1 listed 'echo' only after ${Date.now() - listed} ms`);
    t.deepEqual(await names(1), [...all, 'echo'].sort());
    t.log(`total ${Date.now() - T0} ms`);
  } finally {
    await set?.close().catch(() => undefined);
    await cluster.stop(10000);
    cleanup();
  }
});

// Opening a volume in the second or two after a node's crash, before the map marks it down:
// announceLease (src/initiator/writer-change.ts) waits, bounded by the I/O timeout, for the map
// to mark the unreachable node down, as writes do, instead of failing with ECONNREFUSED.
test.serial('opening a volume right after kill -9 of a node, while the map still shows it up, works', (t) => {
  t.truthy(early, 'the open was attempted');
  t.true(early!.upInMap, 'the attempt ran before the map marked node 1 down (otherwise it proves nothing)');
  t.true(early!.ok, early!.error);
});
