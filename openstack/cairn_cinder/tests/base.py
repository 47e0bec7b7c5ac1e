"""Test base for the Cairn driver tests: Cinder's own unit-test base plus a real cluster.

``ClusterTestCase`` is ``cinder.tests.unit.test.TestCase`` (a sqlite Cinder database,
config fixtures, a lock path) with real tooz file locks (``MOCK_TOOZ = False``, so the
driver's ``@coordination.synchronized`` locks are taken for real) and a real Cairn cluster
(``tests/cluster.py``). The cluster is started once per test process, by the first class
that needs it (``setUpClass``), and stopped when the process exits, so the whole suite pays
for one ``cairn up``.
"""

import atexit
import itertools
import socket
import time

from cinder import context
from cinder.tests.unit import test
from cinder.tests.unit import utils as test_utils
from cinder.volume import configuration
from cinder.volume import volume_types

from cairn_cinder import driver as cairn_driver
from cairn_cinder import options
from cairn_cinder.tests import cluster as cairn_cluster

_CLUSTER = None
_GROUPS = itertools.count()


def shared_cluster():
    """The test process's Cairn cluster, started on first use (stopped at exit)."""
    global _CLUSTER
    if _CLUSTER is None:
        c = cairn_cluster.CairnCluster()
        c.start()
        atexit.register(c.stop)
        _CLUSTER = c
    return _CLUSTER


def dead_address():
    """An http:// address on a local port nobody listens on (connection refused)."""
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return 'http://127.0.0.1:%d' % port


class ClusterTestCase(test.TestCase):
    """Cinder's TestCase with a real Cairn cluster and helpers to make drivers, Cinder
    volumes and snapshots (in Cinder's test database), and to clean Cairn up."""

    MOCK_TOOZ = False

    @classmethod
    def setUpClass(cls):
        """Starts (or reuses) the process's Cairn cluster."""
        super().setUpClass()
        cls.cluster = shared_cluster()

    def setUp(self):
        """An admin context for the Cinder objects."""
        super().setUp()
        self.ctxt = context.get_admin_context()

    # Drivers ------------------------------------------------------------------------

    def make_driver(self, setup=True, **overrides):
        """A CairnDriver on its own config section, pointed at the cluster (token, API
        addresses, NVMe/TCP paths as printed by cairn up); ``overrides`` set cairn_*
        options. With ``setup``, runs do_setup and check_for_setup_error."""
        group = 'cairn-test-%d' % next(_GROUPS)
        conf = configuration.Configuration(options.CAIRN_OPTS,
                                           config_group=group)
        d = cairn_driver.CairnDriver(configuration=conf, host='test-host')
        values = {
            'cairn_api_addresses': self.cluster.api_addresses,
            'cairn_api_token': self.cluster.token,
            'cairn_nvmf_portals': [p for p, _ana in self.cluster.nvmf_portals],
            'cairn_api_timeout': 10,
            'cairn_job_timeout': 120,
            'volume_backend_name': 'cairn',
        }
        values.update(overrides)
        for k, v in values.items():
            self.override_config(k, v, group=group)
        if setup:
            d.do_setup(self.ctxt)
            d.check_for_setup_error()
        return d

    # Cinder objects -----------------------------------------------------------------

    def make_volume(self, size=1, extra_specs=None, cleanup=True):
        """A Cinder volume in the test database (of a new type with ``extra_specs``,
        else the default type); with ``cleanup``, its Cairn volume is purged after the
        test."""
        if extra_specs is not None:
            vt = volume_types.create(self.ctxt, 'cairn-type-%d' % next(_GROUPS),
                                     extra_specs)
            type_id = vt['id']
        else:
            type_id = self.vt['id']
        vol = test_utils.create_volume(self.ctxt, size=size,
                                       volume_type_id=type_id)
        if cleanup:
            self.addCleanup(self.purge, vol.name)
        return vol

    def make_snapshot(self, volume):
        """A Cinder snapshot of ``volume`` in the test database."""
        return test_utils.create_snapshot(self.ctxt, volume.id)

    # Cairn ----------------------------------------------------------------------------

    def purge(self, name):
        """Deletes Cairn volume ``name`` and its snapshots through the API (ignoring
        what is already gone) and waits for the delete job."""
        c = self.cluster
        r = c.api('GET', '/v1/volumes/%s/snapshots' % name)
        if r.status_code == 404:
            return
        for s in r.json().get('snapshots', []):
            c.api('DELETE', '/v1/volumes/%s/snapshots/%s' % (name, s['name']))
        r = c.api('DELETE', '/v1/volumes/%s' % name)
        if r.status_code == 202:
            c.wait_for(lambda: c.volume(name) is None, timeout=120,
                       what='volume %s deleted' % name)

    def assert_job(self, kind, target, since):
        """Asserts the authority ran a ``kind`` job on ``target`` that succeeded and
        started after ``since`` (an ISO timestamp string); returns it."""
        jobs = [j for j in self.cluster.jobs()
                if j['kind'] == kind and j['target'] == target
                and j.get('startedAt', '') >= since]
        self.assertTrue(bool(jobs), 'no %s job on %s since %s' % (kind, target, since))
        self.assertEqual('succeeded', jobs[-1]['state'], jobs[-1])
        return jobs[-1]

    @staticmethod
    def now_iso():
        """The current UTC time as the API writes startedAt (ISO 8601, ms, Z)."""
        t = time.time() - 1  # a second of slack for clock granularity
        return time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(t)) + \
            '.%03dZ' % int((t % 1) * 1000)
