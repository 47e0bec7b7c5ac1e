/**
 * Must-show: `kill -9` of the gateway mid-write, then a new attachment: two reads of every
 * block, served by different members, return the same bytes (DESIGN promise 2), and a write
 * from the old lease generation is refused (promise 5).
 *
 * The gateway is a child process (gateway-child.ts) writing random 4–64 KiB blocks to the
 * first 16 MiB of the volume, 32 in flight, never flushing; it is killed with SIGKILL once it
 * has completed a few thousand writes, so writes are on the wire to some members and not to
 * others. The members are compared once right after the kill (logged only: this shows the
 * comparison can find differences; one write of the crashed generation that reached a single
 * member is added, so it always finds one), then a new attachment (a newer generation) peers —
 * reconciling every extent the nodes hold unsettled writes for — and the comparison must
 * then find every extent's copies identical, page versions and bytes, on every member and
 * through the Volume.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { LocalCluster } from '../../src/cluster/index.ts';
import { decodeVersions, type PageVersion } from '../../src/recovery/index.ts';
import { Flag, Op, Status, WireClient, statusName, versionGeneration, writeVersion, type Reply, type RequestHeader } from '../../src/wire/index.ts';
import { tempDataDir } from '../helpers/cairn-up.ts';
import { until } from '../helpers/cluster.ts';

const MiB = 1024 * 1024;
/** The span the gateway writes to. */
const SPAN = 16 * MiB;
/** Completed writes before the kill. */
const KILL_AFTER = 3000;
const CHILD = join(import.meta.dirname, 'gateway-child.ts');

/** One member's copy of an extent. */
interface Copy {
  leaf: number;
  node: number;
  versions: PageVersion[];
  data: Buffer;
}

/** Data-path connections to the nodes, by node id, for direct member requests. */
class Members {
  private readonly clients = new Map<number, WireClient>();

  constructor(private readonly cluster: LocalCluster) {}

  private async client(node: number): Promise<WireClient> {
    let c = this.clients.get(node);
    if (!c || !c.alive) {
      const n = this.cluster.view.address(node)!;
      c = new WireClient({ host: n.host, port: n.port, token: this.cluster.config.token, timeoutMs: 60000 });
      await c.connect();
      this.clients.set(node, c);
    }
    return c;
  }

  /** Sends `h` (at the initiator's epoch) to node `node`, following StaleEpoch replies. */
  async request(node: number, h: Omit<RequestHeader, 'id' | 'epoch'>, payload?: Buffer): Promise<Reply> {
    let epoch = this.cluster.view.epoch;
    for (let i = 0; ; i++) {
      const r = await (await this.client(node)).request({ ...h, epoch }, payload);
      if (r.h.status !== Status.StaleEpoch || i >= 5) return r;
      epoch = Math.max(epoch, r.h.aux);
    }
  }

  /** Page versions and bytes of `extent` on partition `leaf` (recovery read: no fence, no "current" check). */
  async copy(volume: number, extent: number, leaf: number, pages: number): Promise<Copy> {
    const node = this.cluster.view.nodeOf(leaf);
    const base = { flags: Flag.Recovery, volume, extent, partition: leaf, firstPage: 0, pages, lease: 0, version: 0, members: [] };
    const v = await this.request(node, { ...base, op: Op.Versions });
    const d = await this.request(node, { ...base, op: Op.Read });
    if (v.h.status !== Status.Ok || d.h.status !== Status.Ok) {
      throw new Error(`extent ${extent} on partition ${leaf} (node ${node}): Versions ${statusName(v.h.status)}, Read ${statusName(d.h.status)}`);
    }
    return { leaf, node, versions: decodeVersions(v.payload), data: Buffer.from(d.payload) };
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}

/** Every placed member's copy of each of the first `extents` extents of volume `id`. */
async function copies(cluster: LocalCluster, members: Members, id: number, pool: number, extents: number, pages: number): Promise<Copy[][]> {
  const view = cluster.view;
  const out: Copy[][] = [];
  for (let x = 0; x < extents; x++) {
    out.push(await Promise.all(view.members(id, x, pool).map((leaf) => members.copy(id, x, leaf, pages))));
  }
  return out;
}

/** Differences between the members' copies of each extent (empty: all identical). */
function differences(all: Copy[][]): string[] {
  const diffs: string[] = [];
  all.forEach((cs, x) => {
    const first = cs[0];
    for (const c of cs.slice(1)) {
      if (JSON.stringify(c.versions) !== JSON.stringify(first.versions)) {
        const a = new Map(first.versions.map((p) => [p.page, p.version]));
        const b = new Map(c.versions.map((p) => [p.page, p.version]));
        const pages = [...new Set([...a.keys(), ...b.keys()])].filter((p) => a.get(p) !== b.get(p));
        diffs.push(`extent ${x}: page versions differ between partition ${first.leaf} (node ${first.node}) and ${c.leaf} (node ${c.node}) on ${pages.length} page(s), e.g. page ${pages[0]}: ${a.get(pages[0])} vs ${b.get(pages[0])}`);
      } else if (!c.data.equals(first.data)) {
        let p = 0;
        while (first.data.subarray(p * 4096, p * 4096 + 4096).equals(c.data.subarray(p * 4096, p * 4096 + 4096))) p++;
        diffs.push(`extent ${x}: bytes differ between partition ${first.leaf} (node ${first.node}) and ${c.leaf} (node ${c.node}), first at page ${p}`);
      }
    }
  });
  return diffs;
}

/** The gateway child: its lease generation and completed-write count, from its stdout. */
function startGateway(dataDir: string, stateDir: string): { child: ChildProcess; state: { generation: number; done: number; errors: string[]; output: string[] }; exited: Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, '--data-dir', dataDir, '--state-dir', stateDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const state = { generation: 0, done: 0, errors: [] as string[], output: [] as string[] };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    state.output.push(line);
    if (state.output.length > 50) state.output.shift();
    try {
      const m = JSON.parse(line) as { event: string; generation?: number; done?: number; message?: string };
      if (m.event === 'lease') state.generation = m.generation!;
      if (m.event === 'writes') state.done = m.done!;
      if (m.event === 'error') state.errors.push(m.message!);
    } catch {
      // not ours
    }
  });
  child.stderr!.on('data', (d: Buffer) => {
    state.output.push(d.toString());
    if (state.output.length > 50) state.output.shift();
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return { child, state, exited };
}

test('kill -9 of the gateway mid-write, then a new attachment: every member serves the same bytes, and the old generation is fenced', async (t) => {
  t.timeout(900000);
  const { dir, cleanup } = tempDataDir();
  const stateDir = mkdtempSync(join(tmpdir(), 'cairn-gw-'));
  const cluster = await LocalCluster.start({ dataDir: dir, layout: { deviceBytes: 256 * MiB, volumeBytes: 64 * MiB } });
  const members = new Members(cluster);
  const gw = startGateway(dir, stateDir);
  let gwDone = false;
  void gw.exited.then(() => (gwDone = true));
  try {
    const rec = cluster.config.volumes.find((v) => v.name === 'vol0')!;
    const pages = rec.extentBytes / 4096;
    const extents = SPAN / rec.extentBytes;

    // The gateway takes the lease and writes; kill it -9 in the middle of its writes.
    t.true(await until(() => gw.state.generation > 0 || gwDone, 180000), `the gateway took the write lease:\n${gw.state.output.join('\n')}`);
    t.false(gwDone, `the gateway exited early:\n${gw.state.output.join('\n')}`);
    const oldGen = gw.state.generation;
    const t0 = Date.now();
    t.true(await until(() => gw.state.done >= KILL_AFTER || gwDone, 300000), `the gateway completed ${KILL_AFTER} writes (has ${gw.state.done}):\n${gw.state.output.join('\n')}`);
    t.false(gwDone, `the gateway exited early:\n${gw.state.output.join('\n')}`);
    gw.child.kill('SIGKILL');
    await gw.exited;
    t.deepEqual(gw.state.errors, [], 'no gateway write failed before the kill');
    t.log(`gateway (lease generation ${oldGen}) killed -9 after ${gw.state.done}+ writes in ${Date.now() - t0} ms`);

    // Right after the kill, before any new writer: the copies may differ (writes in flight).
    const before = differences(await copies(cluster, members, rec.id, rec.pool, extents, pages));
    t.log(`before the new attachment: ${before.length} member difference(s) over ${extents} extents${before.length ? `, e.g. ${before[0]}` : ''}`);

    // Whether the kill caught a write on its way to some members only is luck; make sure one
    // did: a write of the crashed generation, newer than all it issued, reaching one member
    // only (its version and data must end up on every member, or on none).
    const view0 = cluster.view;
    const torn = { extent: 5, page: 7, data: Buffer.alloc(4096, 0x5a), version: writeVersion(oldGen, 2 ** 31) };
    const tornPlaced = view0.members(rec.id, torn.extent, rec.pool);
    const tornLeaf = tornPlaced[tornPlaced.length - 1];
    const w = await members.request(view0.nodeOf(tornLeaf), {
      op: Op.Write, flags: 0, volume: rec.id, extent: torn.extent, partition: tornLeaf, firstPage: torn.page, pages: 1, lease: oldGen, version: torn.version, members: tornPlaced,
    }, torn.data);
    t.is(statusName(w.h.status), 'Ok', 'the torn write reached one member');
    const withTorn = differences(await copies(cluster, members, rec.id, rec.pool, extents, pages));
    t.true(withTorn.some((d) => d.startsWith(`extent ${torn.extent}:`)), `the comparison sees the torn write (${withTorn.length} difference(s))`);
    t.log(`with one more write of generation ${oldGen} on one member only (extent ${torn.extent} page ${torn.page}): ${withTorn.length} difference(s)`);

    // A new attachment: a newer generation, fencing the crashed one, peering over its unsettled extents.
    const volume = await cluster.attach('vol0');
    try {
      t.true(volume.leaseGeneration > oldGen, `new generation ${volume.leaseGeneration} > ${oldGen}`);
      t.log(`new attachment (generation ${volume.leaseGeneration}) reconciled ${volume.counters.reconciled} extent(s)`);
      t.true(volume.counters.reconciled >= 1, 'the unflushed extents were reconciled');

      // Every extent: identical page versions and bytes on each placed member, and through the Volume.
      const after = await copies(cluster, members, rec.id, rec.pool, extents, pages);
      t.deepEqual(differences(after), [], 'every extent\'s copies are identical after the new attachment');
      let written = 0;
      for (let x = 0; x < extents; x++) {
        t.is(after[x].length, cluster.config.pools.find((p) => p.id === rec.pool)!.replicas, `extent ${x} has all its members`);
        for (const c of after[x]) {
          t.true(c.versions.every((p) => p.mapped && versionGeneration(p.version) === oldGen), `extent ${x} on partition ${c.leaf}: every page version is the crashed writer's`);
        }
        written += after[x][0].versions.length;
        const viaVolume = await volume.read(x * rec.extentBytes, rec.extentBytes);
        t.true(viaVolume.equals(after[x][0].data), `extent ${x} reads the same through the Volume`);
      }
      t.true(written > 0, 'the gateway wrote pages');
      // The torn write won everywhere (newest version of the page).
      for (const c of after[torn.extent]) {
        t.is(c.versions.find((p) => p.page === torn.page)?.version, torn.version, `torn page's version on partition ${c.leaf}`);
        t.true(c.data.subarray(torn.page * 4096, torn.page * 4096 + 4096).equals(torn.data), `torn page's bytes on partition ${c.leaf}`);
      }
      // A second full comparison: two reads with no write between them return the same bytes.
      const again = await copies(cluster, members, rec.id, rec.pool, extents, pages);
      for (let x = 0; x < extents; x++) {
        t.true(again[x].every((c, i) => c.data.equals(after[x][i].data)), `extent ${x} reads the same twice on every member`);
      }

      // A write of the crashed gateway's generation is refused by a member, and changes nothing.
      const view = cluster.view;
      const placed = view.members(rec.id, 0, rec.pool);
      const target = placed[0];
      const r = await members.request(view.nodeOf(target), {
        op: Op.Write, flags: 0, volume: rec.id, extent: 0, partition: target, firstPage: 0, pages: 1,
        lease: oldGen, version: writeVersion(oldGen, gw.state.done + 100000), members: placed,
      }, Buffer.alloc(4096, 0xee));
      t.is(statusName(r.h.status), 'Fenced', 'a write of the old generation is fenced');
      t.is(r.h.aux, volume.leaseGeneration, 'the reply names the fencing generation');
      const still = await members.copy(rec.id, 0, target, pages);
      t.true(still.data.equals(after[0][0].data), 'the fenced write changed nothing');
      t.deepEqual(still.versions, after[0][0].versions);
    } finally {
      volume.close();
    }
  } finally {
    if (!gwDone) gw.child.kill('SIGKILL');
    await gw.exited;
    members.close();
    await cluster.stop();
    rmSync(stateDir, { recursive: true, force: true });
    cleanup();
  }
});
