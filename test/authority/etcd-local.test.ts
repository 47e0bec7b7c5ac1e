/**
 * LocalEtcd (the etcd members `cairn up --etcd` runs): real etcd processes. A 3-member cluster
 * keeps taking writes with one member killed (-9), the member comes back with its data, and
 * a later start of the same directory serves the same endpoints and keys. A missing binary is
 * one clear error.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { LocalEtcd } from '../../src/authority/index.ts';

test('three members: a write with one killed, its restart with the data, the same endpoints on a later start', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-etcd-local-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let etcd = await LocalEtcd.start({ dir, members: 3 });
  try {
    const endpoints = etcd.endpoints;
    t.is(endpoints.length, 3);
    t.true(etcd.members().every((m) => m.pid !== null), 'every member runs');
    await etcd.kill(0);
    t.is(etcd.members()[0].pid, null);
    const rest = new Etcd3({ hosts: endpoints.slice(1) });
    await rest.put('k').value('with-two');
    rest.close();
    await etcd.restart(0);
    const first = new Etcd3({ hosts: [endpoints[0]] });
    // The member catches up from the others; a linearizable read through it sees the write.
    t.is(await first.get('k').string(), 'with-two', 'the restarted member serves the write it missed');
    first.close();
    await etcd.stop();
    etcd = await LocalEtcd.start({ dir });
    t.deepEqual(etcd.endpoints, endpoints, 'the same endpoints on a later start');
    const again = new Etcd3({ hosts: etcd.endpoints });
    t.is(await again.get('k').string(), 'with-two', 'and the same data');
    again.close();
  } finally {
    await etcd.stop();
  }
});

test('a missing etcd binary is one clear error naming the package', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-etcd-local-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const e = await t.throwsAsync(LocalEtcd.start({ dir, binary: join(dir, 'no-such-etcd') }));
  t.regex(e!.message, /etcd not found.*etcd-server/);
});
