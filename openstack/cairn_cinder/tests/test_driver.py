"""CairnDriver against a real Cairn cluster (``cairn up``), on Cinder's own test base.

Every driver method is called as Cinder's volume manager calls it, with Cinder volume and
snapshot objects from Cinder's test database; every result is checked in Cairn's own REST
API (GET /v1/volumes/:name, snapshots, jobs, nodes) and, where data matters (snapshots,
clones, revert), by writing and reading patterns over Cairn's NBD exports with qemu-io.
The error cases map to Cinder's exceptions: API unreachable and wrong token ->
VolumeBackendAPIException, name taken -> CairnVolumeExists (a VolumeBackendAPIException),
volume with snapshots -> VolumeIsBusy, snapshot with clones -> SnapshotIsBusy, volume-type
specs Cairn cannot honour -> InvalidVolumeType.
"""

import unittest

from oslo_utils import units

from cinder import exception

from cairn_cinder import client as cairn_client
from cairn_cinder import driver as cairn_driver
from cairn_cinder.tests import base

HOST_A = 'nqn.2014-08.org.nvmexpress:uuid:0f4b7e1c-1111-4a5e-9c1d-000000000001'
HOST_B = 'nqn.2014-08.org.nvmexpress:uuid:0f4b7e1c-2222-4a5e-9c1d-000000000002'
MiB = 1 << 20


def needs_qemu_io(fn):
    """Skips a data check when qemu-io (Debian qemu-utils) is not installed."""
    return unittest.skipUnless(base.cairn_cluster.CairnCluster.have_qemu_io(),
                               'qemu-io (qemu-utils) is not installed')(fn)


class CairnDriverTest(base.ClusterTestCase):
    """The driver's methods and error mapping against the shared cluster."""

    def setUp(self):
        """A set-up driver on the cluster."""
        super().setUp()
        self.driver = self.make_driver()

    # Setup ----------------------------------------------------------------------------

    def test_setup_learns_cluster_id_and_pools(self):
        """do_setup reads the cluster id from GET /v1/map and the pools from
        GET /v1/status."""
        self.assertEqual(self.cluster.config['clusterId'], self.driver.cluster_id)
        self.assertEqual(3, self.driver.pools[0]['size'])

    def test_replicas_option_must_match_the_pool(self):
        """cairn_replicas that the pool does not keep stops the driver at setup."""
        self.make_driver(cairn_replicas=3)  # the pool keeps 3: fine
        d = self.make_driver(setup=False, cairn_replicas=2)
        d.do_setup(self.ctxt)
        self.assertRaises(exception.InvalidConfigurationValue,
                          d.check_for_setup_error)

    def test_setup_needs_portals(self):
        """No NVMe/TCP portals configured: check_for_setup_error refuses."""
        d = self.make_driver(setup=False, cairn_nvmf_portals=[])
        d.do_setup(self.ctxt)
        self.assertRaises(exception.InvalidConfigurationValue,
                          d.check_for_setup_error)

    # Errors of the API itself ---------------------------------------------------------

    def test_api_unreachable(self):
        """No address answers: do_setup, create_volume and delete_volume raise
        VolumeBackendAPIException (CairnUnreachable); stats say backend_state down."""
        d = self.make_driver(setup=False,
                             cairn_api_addresses=[base.dead_address(),
                                                  base.dead_address()])
        e = self.assertRaises(exception.VolumeBackendAPIException,
                              d.do_setup, self.ctxt)
        self.assertIsInstance(e, cairn_client.CairnUnreachable)
        vol = self.make_volume(cleanup=False)
        self.assertRaises(exception.VolumeBackendAPIException,
                          d.create_volume, vol)
        self.assertRaises(exception.VolumeBackendAPIException,
                          d.delete_volume, vol)
        self.assertIsNone(self.cluster.volume(vol.name))
        stats = d.get_volume_stats(refresh=True)
        self.assertEqual('down', stats['backend_state'])
        self.assertEqual(0, stats['free_capacity_gb'])

    def test_failover_to_a_live_address(self):
        """A dead address in the list is skipped: every call still works, whichever
        address the round-robin starts at."""
        d = self.make_driver(cairn_api_addresses=[base.dead_address()]
                             + self.cluster.api_addresses[:1])
        vol = self.make_volume()
        d.create_volume(vol)
        for _i in range(3):
            self.assertEqual(vol.name, d.client.get_volume(vol.name)[0]['name'])
        self.assertIsNotNone(self.cluster.volume(vol.name))

    def test_wrong_token(self):
        """A wrong token: do_setup raises VolumeBackendAPIException (401)."""
        d = self.make_driver(setup=False, cairn_api_token='not-the-token')
        e = self.assertRaises(exception.VolumeBackendAPIException,
                              d.do_setup, self.ctxt)
        self.assertEqual(401, e.status)

    # Volumes --------------------------------------------------------------------------

    def test_create_and_delete_volume(self):
        """create_volume makes a thin 1 GiB volume in pool 0 that no host may attach;
        delete_volume runs the delete job and the record goes."""
        vol = self.make_volume(size=1)
        since = self.now_iso()
        self.driver.create_volume(vol)
        rec = self.cluster.volume(vol.name)
        self.assertEqual(units.Gi, rec['sizeBytes'])
        self.assertEqual(0, rec['pool'])
        self.assertTrue(rec['thin'])
        self.assertEqual('ready', rec['state'])
        self.assertEqual([cairn_driver.NO_HOST_NQN], rec['allowHosts'])
        self.driver.delete_volume(vol)
        self.assertIsNone(self.cluster.volume(vol.name))
        self.assert_job('delete', vol.name, since)

    def test_delete_missing_volume_succeeds(self):
        """Deleting a volume Cairn does not have is not an error."""
        vol = self.make_volume(cleanup=False)
        self.driver.delete_volume(vol)

    def test_name_taken(self):
        """The name held by a volume with other properties: CairnVolumeExists, a
        VolumeBackendAPIException; the same properties: an idempotent success."""
        vol = self.make_volume(size=1)
        r = self.cluster.api('POST', '/v1/volumes',
                             {'name': vol.name, 'size': 2 * units.Gi})
        self.assertEqual(201, r.status_code, r.text)
        e = self.assertRaises(cairn_driver.CairnVolumeExists,
                              self.driver.create_volume, vol)
        self.assertIsInstance(e, exception.VolumeBackendAPIException)
        self.assertEqual(2 * units.Gi,
                         self.cluster.volume(vol.name)['sizeBytes'])
        # A retried create of the very same volume is fine.
        vol2 = self.make_volume(size=1)
        self.driver.create_volume(vol2)
        self.driver.create_volume(vol2)
        self.assertEqual(units.Gi, self.cluster.volume(vol2.name)['sizeBytes'])

    def test_delete_volume_with_snapshot_is_busy(self):
        """A volume with snapshots: VolumeIsBusy, and the volume stays."""
        vol = self.make_volume()
        self.driver.create_volume(vol)
        snap = self.make_snapshot(vol)
        self.driver.create_snapshot(snap)
        self.assertRaises(exception.VolumeIsBusy, self.driver.delete_volume, vol)
        self.assertEqual('ready', self.cluster.volume(vol.name)['state'])

    def test_extend_volume(self):
        """extend_volume grows the Cairn volume to the new size."""
        vol = self.make_volume(size=1)
        self.driver.create_volume(vol)
        self.driver.extend_volume(vol, 3)
        self.assertEqual(3 * units.Gi,
                         self.cluster.volume(vol.name)['sizeBytes'])

    def test_extra_specs(self):
        """cairn:replicas equal to the pool's count is accepted; another count, an
        unknown cairn:pool or a malformed value is InvalidVolumeType (nothing is
        created); provisioning:type thick asks Cairn for a thick volume (this small
        cluster cannot hold 1 GiB thick: the API's 507 comes back as a
        VolumeBackendAPIException)."""
        ok = self.make_volume(extra_specs={'cairn:replicas': '3',
                                           'cairn:pool': '0'})
        self.driver.create_volume(ok)
        self.assertEqual(0, self.cluster.volume(ok.name)['pool'])
        for specs in ({'cairn:replicas': '2'}, {'cairn:pool': '7'},
                      {'cairn:replicas': 'three'},
                      {'provisioning:type': 'fat'}):
            vol = self.make_volume(extra_specs=specs)
            e = self.assertRaises(exception.InvalidVolumeType,
                                  self.driver.create_volume, vol)
            self.assertIsNone(self.cluster.volume(vol.name), specs)
            if specs == {'cairn:replicas': '2'}:
                self.assertIn('replicas per pool', str(e))
        thick = self.make_volume(extra_specs={'provisioning:type': 'thick'})
        e = self.assertRaises(exception.VolumeBackendAPIException,
                              self.driver.create_volume, thick)
        self.assertEqual(507, e.status)
        self.assertIn('thick', e.error)

    # Snapshots ------------------------------------------------------------------------

    def test_create_and_delete_snapshot(self):
        """create_snapshot makes the Cairn snapshot; delete_snapshot removes it; a
        missing snapshot (or volume) deletes fine."""
        vol = self.make_volume()
        self.driver.create_volume(vol)
        snap = self.make_snapshot(vol)
        self.driver.create_snapshot(snap)
        rec = self.cluster.snapshot(vol.name, snap.name)
        self.assertEqual(units.Gi, rec['sizeBytes'])
        self.assertEqual([snap.name], self.cluster.volume(vol.name)['snapshots'])
        self.driver.delete_snapshot(snap)
        self.assertIsNone(self.cluster.snapshot(vol.name, snap.name))
        self.driver.delete_snapshot(snap)  # already gone
        self.assertEqual([], self.cluster.volume(vol.name)['snapshots'])

    def test_snapshot_of_missing_volume(self):
        """A snapshot of a volume Cairn does not have: VolumeNotFound."""
        vol = self.make_volume(cleanup=False)
        snap = self.make_snapshot(vol)
        self.assertRaises(exception.VolumeNotFound,
                          self.driver.create_snapshot, snap)

    @needs_qemu_io
    def test_volume_from_snapshot_is_a_clone(self):
        """create_volume_from_snapshot makes a copy-on-write clone with the snapshot's
        data (not later writes), grown to the requested size and closed to hosts; the
        snapshot cannot be deleted while the clone exists (SnapshotIsBusy) and can be
        once the clone is deleted."""
        c = self.cluster
        vol = self.make_volume(size=1)
        self.driver.create_volume(vol)
        c.nbd_write(vol.name, 0x5a, 0, MiB)
        snap = self.make_snapshot(vol)
        self.driver.create_snapshot(snap)
        c.nbd_write(vol.name, 0xa5, 0, MiB)  # after the snapshot

        clone = self.make_volume(size=2)
        self.driver.create_volume_from_snapshot(clone, snap)
        rec = c.volume(clone.name)
        self.assertEqual(vol.name, rec['parent']['volume'])
        self.assertEqual(snap.name, rec['parent']['snapshot'])
        self.assertEqual(2 * units.Gi, rec['sizeBytes'])
        self.assertEqual([cairn_driver.NO_HOST_NQN], rec['allowHosts'])
        self.assertEqual([clone.name], c.snapshot(vol.name, snap.name)['clones'])
        c.nbd_read_check(clone.name, 0x5a, 0, MiB)
        c.nbd_read_check(vol.name, 0xa5, 0, MiB)

        self.assertRaises(exception.SnapshotIsBusy,
                          self.driver.delete_snapshot, snap)
        self.assertIsNotNone(c.snapshot(vol.name, snap.name))
        self.driver.delete_volume(clone)
        self.driver.delete_snapshot(snap)
        self.assertIsNone(c.snapshot(vol.name, snap.name))

    def test_volume_from_snapshot_flattened(self):
        """With cairn_flatten_volume_from_snapshot the new volume is flattened (no
        parent, a flatten job ran) and the snapshot can be deleted at once."""
        d = self.make_driver(cairn_flatten_volume_from_snapshot=True)
        vol = self.make_volume()
        d.create_volume(vol)
        snap = self.make_snapshot(vol)
        d.create_snapshot(snap)
        clone = self.make_volume()
        since = self.now_iso()
        d.create_volume_from_snapshot(clone, snap)
        self.assertIsNone(self.cluster.volume(clone.name)['parent'])
        self.assert_job('flatten', clone.name, since)
        d.delete_snapshot(snap)
        self.assertIsNone(self.cluster.snapshot(vol.name, snap.name))

    def test_clone_refuses_specs_it_cannot_honour(self):
        """A clone stays in its source's pool with its provisioning: a volume type
        naming another pool, another replica count or thick provisioning is
        InvalidVolumeType, and no clone is left behind."""
        vol = self.make_volume()
        self.driver.create_volume(vol)
        snap = self.make_snapshot(vol)
        self.driver.create_snapshot(snap)
        for specs in ({'cairn:pool': '7'}, {'cairn:replicas': '2'},
                      {'provisioning:type': 'thick'}):
            clone = self.make_volume(extra_specs=specs)
            self.assertRaises(exception.InvalidVolumeType,
                              self.driver.create_volume_from_snapshot, clone,
                              snap)
            self.assertIsNone(self.cluster.volume(clone.name), specs)
        self.assertEqual([], self.cluster.snapshot(vol.name, snap.name)['clones'])

    @needs_qemu_io
    def test_cloned_volume(self):
        """create_cloned_volume gives an independent copy: the source's data, no
        parent (flattened), the requested size, no temporary snapshot left on the
        source, and the source can be deleted right away."""
        c = self.cluster
        src = self.make_volume(size=1)
        self.driver.create_volume(src)
        c.nbd_write(src.name, 0x3c, 4 * MiB, MiB)
        dst = self.make_volume(size=2)
        since = self.now_iso()
        self.driver.create_cloned_volume(dst, src)
        rec = c.volume(dst.name)
        self.assertIsNone(rec['parent'])
        self.assertEqual(2 * units.Gi, rec['sizeBytes'])
        self.assertEqual([cairn_driver.NO_HOST_NQN], rec['allowHosts'])
        self.assertEqual([], c.volume(src.name)['snapshots'])
        self.assert_job('flatten', dst.name, since)
        self.driver.delete_volume(src)
        self.assertIsNone(c.volume(src.name))
        c.nbd_read_check(dst.name, 0x3c, 4 * MiB, MiB)

    @needs_qemu_io
    def test_revert_to_snapshot(self):
        """revert_to_snapshot runs Cairn's rollback job: the volume reads the
        snapshot's data again and keeps its size."""
        c = self.cluster
        vol = self.make_volume(size=1)
        self.driver.create_volume(vol)
        c.nbd_write(vol.name, 0x11, 0, MiB)
        snap = self.make_snapshot(vol)
        self.driver.create_snapshot(snap)
        c.nbd_write(vol.name, 0x22, 0, MiB)
        c.nbd_read_check(vol.name, 0x22, 0, MiB)
        since = self.now_iso()
        self.driver.revert_to_snapshot(self.ctxt, vol, snap)
        self.assert_job('rollback', vol.name, since)
        self.assertEqual(units.Gi, c.volume(vol.name)['sizeBytes'])
        c.nbd_read_check(vol.name, 0x11, 0, MiB)

    # Connections ----------------------------------------------------------------------

    def test_initialize_and_terminate_connection(self):
        """initialize_connection adds the host NQN to allowHosts (replacing the
        placeholder) and returns nvmeof properties with one portal per ANA path;
        terminate_connection removes it again, back to the placeholder."""
        c = self.cluster
        vol = self.make_volume()
        self.driver.create_volume(vol)
        props = self.driver.initialize_connection(vol, {'nqn': HOST_A,
                                                        'host': 'a'})
        self.assertEqual([HOST_A], c.volume(vol.name)['allowHosts'])
        self.assertEqual('nvmeof', props['driver_volume_type'])
        data = props['data']
        nqn = 'nqn.2024-01.io.cairn:%s:%s' % (c.config['clusterId'], vol.name)
        self.assertEqual(nqn, data['target_nqn'])
        self.assertEqual('1', data['ns_id'])
        self.assertEqual(HOST_A, data['host_nqn'])
        self.assertIs(True, data['discard'])
        expected = [(p.rsplit(':', 1)[0], int(p.rsplit(':', 1)[1]), 'tcp')
                    for p, _ana in c.nvmf_portals]
        self.assertEqual(3, len(expected))
        self.assertEqual(expected, data['portals'])

        # Twice for the same host: listed once. A second host joins it.
        self.driver.initialize_connection(vol, {'nqn': HOST_A})
        self.driver.initialize_connection(vol, {'nqn': HOST_B})
        self.assertEqual([HOST_A, HOST_B], c.volume(vol.name)['allowHosts'])
        self.driver.terminate_connection(vol, {'nqn': HOST_A})
        self.assertEqual([HOST_B], c.volume(vol.name)['allowHosts'])
        self.driver.terminate_connection(vol, {'nqn': HOST_B}, force=False)
        self.assertEqual([cairn_driver.NO_HOST_NQN],
                         c.volume(vol.name)['allowHosts'])

    def test_connection_properties_are_the_volume_views_nvmf_identity(self):
        """The subsystem NQN, namespace id and namespace UUID in the connection
        properties are the nvmf identity of Cairn's volume view (GET
        /v1/volumes/:name, what the gateways report), whichever node answers; the
        driver derives none of them."""
        c = self.cluster
        vol = self.make_volume()
        self.driver.create_volume(vol)
        data = self.driver.initialize_connection(vol, {'nqn': HOST_A})['data']
        for address in c.api_addresses:
            r = c.api('GET', '/v1/volumes/%s' % vol.name, address=address)
            self.assertEqual(200, r.status_code, r.text)
            nvmf = r.json()['nvmf']
            self.assertEqual(nvmf['nqn'], data['target_nqn'])
            self.assertEqual(str(nvmf['nsid']), data['ns_id'])
            self.assertEqual(nvmf['uuid'], data['vol_uuid'])
        # The UUID as os-brick compares it with sysfs: lower-case, with dashes.
        self.assertRegex(data['vol_uuid'],
                         '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-'
                         '[0-9a-f]{12}$')

    def test_initialize_connection_needs_the_nvmf_identity(self):
        """A volume view without nvmf (a Cairn API older than the driver):
        initialize_connection raises VolumeBackendAPIException and leaves the
        allow-list alone."""
        c = self.cluster
        vol = self.make_volume()
        self.driver.create_volume(vol)
        real_get = self.driver.client.get_volume

        def old_api_get(name):
            """The real read without the nvmf identity."""
            rec, etag = real_get(name)
            rec = dict(rec)
            rec.pop('nvmf', None)
            return rec, etag

        self.driver.client.get_volume = old_api_get
        self.assertRaises(exception.VolumeBackendAPIException,
                          self.driver.initialize_connection, vol,
                          {'nqn': HOST_A})
        self.assertEqual([cairn_driver.NO_HOST_NQN],
                         c.volume(vol.name)['allowHosts'])

    def test_terminate_without_connector_removes_every_host(self):
        """A forced detach without a connector removes every host."""
        vol = self.make_volume()
        self.driver.create_volume(vol)
        self.driver.initialize_connection(vol, {'nqn': HOST_A})
        self.driver.initialize_connection(vol, {'nqn': HOST_B})
        self.driver.terminate_connection(vol, None, force=True)
        self.assertEqual([cairn_driver.NO_HOST_NQN],
                         self.cluster.volume(vol.name)['allowHosts'])

    def test_connection_errors(self):
        """A connector without an NQN: InvalidConnectorException; a volume Cairn does
        not have: VolumeNotFound on attach, nothing to do on detach."""
        vol = self.make_volume()
        self.driver.create_volume(vol)
        self.assertRaises(exception.InvalidConnectorException,
                          self.driver.initialize_connection, vol,
                          {'host': 'h', 'initiator': 'iqn.x'})
        self.driver.terminate_connection(vol, {'host': 'h'})
        missing = self.make_volume(cleanup=False)
        self.assertRaises(exception.VolumeNotFound,
                          self.driver.initialize_connection, missing,
                          {'nqn': HOST_A})
        self.driver.terminate_connection(missing, {'nqn': HOST_A})

    def test_host_update_retries_on_stale_etag(self):
        """Another client changes allowHosts between the driver's read and its PATCH:
        Cairn answers 412 to the stale If-Match, the driver reads again and both
        hosts end up allowed."""
        c = self.cluster
        vol = self.make_volume()
        self.driver.create_volume(vol)
        real_get = self.driver.client.get_volume
        reads = []

        def racing_get(name):
            """The real read, followed (the first time) by another client's change."""
            rec, etag = real_get(name)
            reads.append(etag)
            if len(reads) == 1:
                # Someone else adds HOST_B right after our read (a real change).
                r = c.api('PATCH', '/v1/volumes/%s' % name,
                          {'allowHosts': [HOST_B]},
                          headers={'If-Match': '"%s"' % etag})
                self.assertEqual(200, r.status_code, r.text)
            return rec, etag

        self.driver.client.get_volume = racing_get
        self.driver.initialize_connection(vol, {'nqn': HOST_A})
        self.assertEqual(2, len(reads))
        self.assertNotEqual(reads[0], reads[1])
        self.assertEqual([HOST_B, HOST_A], c.volume(vol.name)['allowHosts'])

    # Stats ----------------------------------------------------------------------------

    def test_volume_stats(self):
        """get_volume_stats reports the cluster's capacity (raw ÷ replicas from
        GET /v1/nodes), free space, provisioned bytes and the capabilities."""
        vol = self.make_volume(size=1)
        self.driver.create_volume(vol)
        stats = self.driver.get_volume_stats(refresh=True)
        nodes = self.cluster.api('GET', '/v1/nodes').json()['nodes']
        raw = sum(n['capacityBytes'] for n in nodes if n['in'])
        used = sum(n['usedBytes'] for n in nodes if n['in'])
        self.assertAlmostEqual(raw / 3 / units.Gi, stats['total_capacity_gb'],
                               places=1)
        self.assertGreater(stats['total_capacity_gb'], 0.5)
        self.assertLess(stats['free_capacity_gb'], stats['total_capacity_gb'])
        self.assertAlmostEqual((raw - used) / 3 / units.Gi,
                               stats['free_capacity_gb'], delta=0.05)
        vols = self.cluster.api('GET', '/v1/volumes').json()['volumes']
        self.assertAlmostEqual(
            sum(v['sizeBytes'] for v in vols if v['pool'] == 0) / units.Gi,
            stats['provisioned_capacity_gb'], places=1)
        self.assertGreaterEqual(stats['provisioned_capacity_gb'], 2)  # vol0 + ours
        for key, value in (('thin_provisioning_support', True),
                           ('online_extend_support', True),
                           ('multiattach', False),
                           ('storage_protocol', 'NVMe-TCP'),
                           ('vendor_name', 'Cairn'),
                           ('volume_backend_name', 'cairn'),
                           ('backend_state', 'up'),
                           ('replicas', 3)):
            self.assertEqual(value, stats[key], key)
        # What the volume manager does after setup: the cairn: extra specs are listed.
        self.driver.init_capabilities()
        props = self.driver.capabilities['properties']
        self.assertIn('cairn:pool', props)
        self.assertIn('cairn:replicas', props)
