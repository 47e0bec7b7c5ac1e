"""The full Cinder stack against a real Cairn cluster, driven through the Cinder REST API.

One class, one stack (started once in setUpClass, stopped in a class cleanup even when the
start fails): Debian's rabbitmq-server on private ports, cinder-api, cinder-scheduler and
cinder-volume as three processes on sqlite with ``volume_driver =
cairn_cinder.driver.CairnDriver``, and ``cairn up`` with three storage nodes. The tests run
in name order and build on each other (a later test fails, naming the earlier one, when
what it needs is missing):

01 the scheduler's pool has the driver's stats (capacity from the cluster, thin, NVMe/TCP)
02 create a volume; Cairn holds ``volume-<id>`` of that size, closed to every host
03 write pattern A over NBD, extend to 2 GiB; Cairn's record and the NBD export grow
04 snapshot; Cairn holds ``snapshot-<id>`` of the volume; then pattern B is written
05 volume from the snapshot; in Cairn a clone of that snapshot, reading A
06 clone of the volume; in Cairn an independent (flattened) volume reading B
07 attach flow: reserve, initialize_connection for two hosts (os-brick parses what comes
   back), attach, terminate one host, force-detach without a connector; Cairn's allow-list
   follows every step
08 revert to the snapshot (microversion 3.40); the volume reads A again
09 deleting the snapshot while the volume made from it still is its clone is refused:
   SnapshotIsBusy, the snapshot stays available, Cinder leaves a user message
10 delete everything (clones first, then the snapshot, then the volume); Cairn has none
   of them left, and no temporary snapshot either
"""

import os
import unittest
import uuid

from functional import harness

GiB = 1 << 30
PATTERN_BYTES = 4 << 20


def pattern(tag):
    """PATTERN_BYTES of data that differ per ``tag`` (random, but fixed within a run)."""
    seed = os.urandom(32)
    block = (tag.encode() + seed) * (4096 // (len(tag) + 32) + 1)
    block = block[:4096]
    return block * (PATTERN_BYTES // 4096)


class CinderStackTest(unittest.TestCase):
    """Create, extend, snapshot, volume from snapshot, clone, connections, revert, delete."""

    stack = None
    state = {}

    @classmethod
    def setUpClass(cls):
        """Starts RabbitMQ, cairn up and the Cinder services (stopped by a class cleanup)."""
        stack = harness.FullStack()
        cls.addClassCleanup(stack.stop)
        stack.start()
        cls.stack = stack
        cls.cinder = stack.cinder.client()
        cls.cairn_api = stack.cairn.client()
        cls.state = {}
        cls.pattern_a = pattern('A')
        cls.pattern_b = pattern('B')

    # helpers ----------------------------------------------------------------------------

    def need(self, key, test):
        """The value an earlier test stored under ``key``; fails naming ``test`` if absent."""
        if key not in self.state:
            self.fail('needs %s, which did not complete' % test)
        return self.state[key]

    def cairn_volume(self, volume_id):
        """Cairn's record of the Cinder volume ``volume_id`` (its name is volume-<id>)."""
        rec = self.cairn_api.volume('volume-%s' % volume_id)
        self.assertIsNotNone(rec, 'Cairn has no volume volume-%s' % volume_id)
        return rec

    def nbd(self, volume_id):
        """The NBD URI of Cinder volume ``volume_id`` on cairn up."""
        return self.stack.cairn.nbd_uri('volume-%s' % volume_id)

    def wait_nbd_export(self, volume_id, size=None):
        """Waits until cairn up serves the volume over NBD (at ``size`` bytes, if given)."""
        uri = self.nbd(volume_id)

        def served():
            """The export's size once it is served (at ``size``, if given)."""
            n = harness.nbd_size(uri)
            return n if size is None or n == size else None
        return harness.wait_for(served, 60, 'NBD export of volume-%s%s' % (volume_id, '' if size is None else ' at %d bytes' % size))

    def read_head(self, volume_id):
        """The first PATTERN_BYTES of the volume, read over NBD."""
        return harness.nbd_read(self.nbd(volume_id), PATTERN_BYTES, self.stack.dir)

    def create_and_wait(self, **kw):
        """Creates a Cinder volume and waits until it is available; returns it."""
        v = self.cinder.create_volume(**kw)
        try:
            return self.cinder.wait_volume(v['id'], 'available')
        except AssertionError as e:
            raise AssertionError('%s\n%s' % (e, '\n'.join(self.stack.cinder.grep_logs(r'ERROR|Traceback')[-20:])))

    # tests ------------------------------------------------------------------------------

    def test_01_pool_stats(self):
        """The scheduler knows the Cairn pool with the driver's stats, from the cluster."""
        pools = self.cinder.get('/scheduler-stats/get_pools?detail=true')['pools']
        mine = [p for p in pools if p['name'].startswith('%s@%s#' % (harness.CINDER_HOST, harness.BACKEND))]
        self.assertEqual(len(mine), 1, pools)
        caps = mine[0]['capabilities']
        # 3 nodes x 1 GiB devices, 3 replicas: about 1 GiB usable (the cluster's own figure).
        nodes = self.cairn_api.call('GET', '/v1/nodes')['nodes']
        raw = sum(n['capacityBytes'] for n in nodes if n.get('in'))
        self.assertAlmostEqual(caps['total_capacity_gb'], round(raw / 3 / GiB, 2), delta=0.01)
        self.assertGreater(caps['free_capacity_gb'], 0)
        self.assertLessEqual(caps['free_capacity_gb'], caps['total_capacity_gb'])
        self.assertTrue(caps['thin_provisioning_support'])
        self.assertTrue(caps['online_extend_support'])
        self.assertFalse(caps['multiattach'])
        self.assertEqual(caps['storage_protocol'], 'NVMe-TCP')
        self.assertEqual(caps['volume_backend_name'], harness.BACKEND)

    def test_02_create_volume(self):
        """POST /volumes: Cairn holds volume-<id> of that size, thin, closed to every host."""
        v = self.create_and_wait(size=1, name='fn-source')
        self.state['src'] = v['id']
        rec = self.cairn_volume(v['id'])
        self.assertEqual(rec['sizeBytes'], 1 * GiB)
        self.assertTrue(rec['thin'])
        self.assertEqual(rec['state'], 'ready')
        self.assertEqual(rec['pool'], 0)
        self.assertEqual(len(rec['allowHosts']), 1, 'a placeholder host only: %s' % rec['allowHosts'])
        self.assertNotIn('nvmexpress', rec['allowHosts'][0])
        self.assertEqual(v['size'], 1)
        self.assertEqual(v['os-vol-host-attr:host'], '%s@%s#%s' % (harness.CINDER_HOST, harness.BACKEND, harness.BACKEND))

    def test_03_extend(self):
        """os-extend to 2 GiB (after writing pattern A): Cairn's record and the export grow."""
        src = self.need('src', 'test_02_create_volume')
        self.wait_nbd_export(src, 1 * GiB)
        harness.nbd_write(self.nbd(src), self.pattern_a, self.stack.dir)
        self.cinder.action(src, 'os-extend', {'new_size': 2})
        v = self.cinder.wait_volume(src, 'available')
        self.assertEqual(v['size'], 2)
        self.assertEqual(self.cairn_volume(src)['sizeBytes'], 2 * GiB)
        self.wait_nbd_export(src, 2 * GiB)
        self.assertEqual(self.read_head(src), self.pattern_a, 'pattern A survives the extend')
        self.state['extended'] = True

    def test_04_snapshot(self):
        """POST /snapshots: Cairn holds snapshot-<id> of volume-<src>; then B is written."""
        src = self.need('src', 'test_02_create_volume')
        self.need('extended', 'test_03_extend')
        s = self.cinder.create_snapshot(src, 'fn-snap')
        s = self.cinder.wait_snapshot(s['id'], 'available')
        self.assertEqual(s['size'], 2)
        snaps = self.cairn_api.snapshots('volume-%s' % src)
        self.assertIn('snapshot-%s' % s['id'], snaps)
        self.assertEqual(snaps['snapshot-%s' % s['id']]['sizeBytes'], 2 * GiB)
        self.assertIn('snapshot-%s' % s['id'], self.cairn_volume(src)['snapshots'])
        # The snapshot keeps A while the volume moves on to B.
        harness.nbd_write(self.nbd(src), self.pattern_b, self.stack.dir)
        self.assertEqual(self.read_head(src), self.pattern_b)
        snap_uri = self.stack.cairn.nbd_uri('volume-%s@snapshot-%s' % (src, s['id']))
        self.assertEqual(harness.nbd_read(snap_uri, PATTERN_BYTES, self.stack.dir), self.pattern_a)
        self.state['snap'] = s['id']

    def test_05_volume_from_snapshot(self):
        """POST /volumes {snapshot_id}: a Cairn clone of the snapshot, reading A."""
        src = self.need('src', 'test_02_create_volume')
        snap = self.need('snap', 'test_04_snapshot')
        v = self.create_and_wait(size=2, snapshot_id=snap, name='fn-from-snap')
        self.state['from_snap'] = v['id']
        rec = self.cairn_volume(v['id'])
        self.assertEqual(rec['sizeBytes'], 2 * GiB)
        self.assertIsNotNone(rec['parent'], rec)
        self.assertEqual(rec['parent']['volume'], 'volume-%s' % src)
        self.assertEqual(rec['parent']['snapshot'], 'snapshot-%s' % snap)
        self.assertIn('volume-%s' % v['id'], self.cairn_api.snapshots('volume-%s' % src)['snapshot-%s' % snap]['clones'])
        self.wait_nbd_export(v['id'])
        self.assertEqual(self.read_head(v['id']), self.pattern_a, 'the volume from the snapshot reads pattern A')

    def test_06_clone(self):
        """POST /volumes {source_volid}: an independent Cairn volume reading B; no
        temporary snapshot is left on the source."""
        src = self.need('src', 'test_02_create_volume')
        self.need('snap', 'test_04_snapshot')
        v = self.create_and_wait(size=2, source_volid=src, name='fn-clone')
        self.state['clone'] = v['id']
        rec = self.cairn_volume(v['id'])
        self.assertEqual(rec['sizeBytes'], 2 * GiB)
        self.assertIsNone(rec.get('parent'), 'a Cinder clone is flattened: %s' % rec.get('parent'))
        self.assertEqual(sorted(self.cairn_api.snapshots('volume-%s' % src)), ['snapshot-%s' % self.state['snap']])
        self.wait_nbd_export(v['id'])
        self.assertEqual(self.read_head(v['id']), self.pattern_b, 'the clone reads the source\'s current data (B)')

    def test_07_connections(self):
        """reserve, initialize_connection (two hosts), attach, terminate one host,
        force-detach without a connector: Cairn's allow-list follows each step."""
        from os_brick.initiator.connectors import nvmeof

        src = self.need('src', 'test_02_create_volume')
        stack = self.stack
        name = 'volume-%s' % src
        hosts = ['nqn.2014-08.org.nvmexpress:uuid:%s' % uuid.uuid4() for _ in range(2)]
        connectors = [{'host': 'fn-compute-%d' % i, 'nqn': h, 'uuid': str(uuid.uuid4()), 'ip': '127.0.0.1',
                       'platform': 'x86_64', 'os_type': 'linux', 'multipath': False, 'nvme_native_multipath': True}
                      for i, h in enumerate(hosts)]
        self.cinder.action(src, 'os-reserve', {})
        self.cinder.wait_volume(src, 'attaching')
        infos = [self.cinder.action(src, 'os-initialize_connection', {'connector': c})['connection_info'] for c in connectors]
        for info, h in zip(infos, hosts):
            self.assertEqual(info['driver_volume_type'], 'nvmeof')
            data = info['data']
            self.assertEqual(data['target_nqn'], stack.cairn.nqn(name))
            self.assertEqual(data['host_nqn'], h)
            self.assertEqual([tuple(p) for p in data['portals']], [(a, p, 'tcp') for a, p in stack.cairn.nvmf_paths])
            # os-brick reads them as one target with one (address, port, transport) per ANA path.
            props = nvmeof.NVMeOFConnProps(dict(data))
            self.assertEqual(len(props.targets), 1)
            self.assertEqual([(p.address, p.port, p.transport) for p in props.targets[0].portals],
                             [(a, str(p), 'tcp') for a, p in stack.cairn.nvmf_paths])
            self.assertEqual(props.targets[0].nqn, stack.cairn.nqn(name))
        self.assertEqual(sorted(self.cairn_volume(src)['allowHosts']), sorted(hosts), 'both hosts may connect')
        self.cinder.action(src, 'os-attach', {'instance_uuid': str(uuid.uuid4()), 'mountpoint': '/dev/vdb', 'mode': 'rw'})
        v = self.cinder.wait_volume(src, 'in-use')
        attachment = v['attachments'][0]['attachment_id']
        self.cinder.action(src, 'os-terminate_connection', {'connector': connectors[1]})
        self.assertEqual(self.cairn_volume(src)['allowHosts'], [hosts[0]], 'the second host was removed')
        self.cinder.action(src, 'os-force_detach', {'attachment_id': attachment})
        self.cinder.wait_volume(src, 'available')
        left = self.cairn_volume(src)['allowHosts']
        self.assertFalse(set(left) & set(hosts), 'force-detach without a connector removes every host: %s' % left)
        self.assertEqual(len(left), 1, 'only the placeholder is left: %s' % left)
        self.state['detached'] = True

    def test_08_revert(self):
        """revert to the snapshot (microversion 3.40): the volume reads A again; Cinder's
        temporary backup snapshot is gone afterwards."""
        src = self.need('src', 'test_02_create_volume')
        snap = self.need('snap', 'test_04_snapshot')
        self.assertEqual(self.read_head(src), self.pattern_b)
        self.cinder.action(src, 'revert', {'snapshot_id': snap}, microversion='3.40')
        v = self.cinder.wait_volume(src, 'available', timeout=180)
        self.assertEqual(v['size'], 2)
        self.assertEqual(self.read_head(src), self.pattern_a, 'the reverted volume reads pattern A')
        snaps = self.cairn_api.snapshots('volume-%s' % src)
        self.assertEqual(sorted(snaps), ['snapshot-%s' % snap], 'only the Cinder snapshot remains: %s' % sorted(snaps))
        self.assertEqual(self.cinder.snapshot(snap)['status'], 'available')

    def test_09_snapshot_with_clone_is_busy(self):
        """DELETE of the snapshot while the volume made from it is still its clone: the
        driver maps Cairn's 409 to SnapshotIsBusy, so Cinder keeps the snapshot available
        and tells the user (a message on the snapshot); Cairn still has it."""
        src = self.need('src', 'test_02_create_volume')
        snap = self.need('snap', 'test_04_snapshot')
        self.need('from_snap', 'test_05_volume_from_snapshot')
        self.cinder.request('DELETE', '/snapshots/%s' % snap)

        def message():
            """The user message Cinder wrote for the snapshot, once there is one."""
            msgs = self.cinder.get('/messages', microversion='3.3')['messages']
            return [m for m in msgs if m['resource_uuid'] == snap]
        msgs = harness.wait_for(message, 60, 'a user message about snapshot %s' % snap)
        self.assertEqual(msgs[0]['resource_type'], 'VOLUME_SNAPSHOT', msgs)
        self.assertIn('busy', msgs[0]['user_message'].lower() + msgs[0].get('event_id', '').lower(), msgs)
        self.assertEqual(self.cinder.wait_snapshot(snap, 'available')['status'], 'available')
        self.assertIn('snapshot-%s' % snap, self.cairn_api.snapshots('volume-%s' % src))

    def test_10_delete_everything(self):
        """DELETE the two copies, the snapshot and the volume: Cairn holds none of them."""
        src = self.need('src', 'test_02_create_volume')
        names = []
        for key in ('from_snap', 'clone'):
            if key in self.state:
                self.cinder.request('DELETE', '/volumes/%s' % self.state[key])
                names.append('volume-%s' % self.state[key])
        for key in ('from_snap', 'clone'):
            if key in self.state:
                self.cinder.wait_volume(self.state[key], None, timeout=180)
        if 'snap' in self.state:
            self.cinder.request('DELETE', '/snapshots/%s' % self.state['snap'])
            self.cinder.wait_snapshot(self.state['snap'], None, timeout=120)
        self.cinder.request('DELETE', '/volumes/%s' % src)
        self.cinder.wait_volume(src, None, timeout=180)
        names.append('volume-%s' % src)
        left = self.cairn_api.volumes()
        for n in names:
            self.assertNotIn(n, left, '%s is still in Cairn' % n)
        self.assertEqual([n for n in left if n.startswith('volume-')], [], 'no Cinder volume is left in Cairn')
        self.assertEqual(self.cinder.get('/volumes')['volumes'], [])
        self.assertEqual(self.cinder.get('/snapshots')['snapshots'], [])
        for check in ('snap', 'from_snap', 'clone'):
            self.assertIn(check, self.state, 'an earlier test did not create its %s' % check)


if __name__ == '__main__':
    unittest.main()
