"""os-brick accepts the driver's connection properties (must-show 2 of issue 12).

The properties come from a real ``initialize_connection`` against the test cluster and
pass through JSON, as they do over Cinder's RPC and Nova (tuples become lists). Then:

- ``NVMeOFConnProps`` (os_brick.initiator.connectors.nvmeof) parses them into one
  non-replicated target with Cairn's subsystem NQN and the namespace UUID the gateways
  report (the ``nvmf`` identity of Cairn's volume view, GET /v1/volumes/:name), the host
  NQN, discard, and one (address, port, transport) portal per ANA path of ``cairn up``.
- ``NVMeOFConnector.connect_volume`` with ``use_multipath=True`` issues one
  ``nvme connect`` per portal, and finds the multipath device by that UUID.

What is faked here, and only here: this host has no ``nvme`` kernel modules, so a real
``nvme connect`` cannot run. The connector's command execution (the ``execute`` callable
os-brick runs every command through, i.e. its ``_execute``/rootwrap call) is replaced by a
recorder that keeps the argv of each command and, for ``nvme connect``, does what the kernel
would make visible: a controller under a temporary stand-in for
``/sys/class/nvme-fabrics/ctl`` (subsysnqn, transport, address, hostnqn, state live) with
the namespace's ``uuid``. ``NVMeOFConnector.native_multipath_supported`` is set True
because it is read from /sys/module/nvme_core, absent here. The real ``nvme connect`` to
Cairn's NVMe/TCP target, with the real kernel, is tested in the nvme-vm guest by the
other part of issue 12 (must-show 4), not here.
"""

import copy
import json
import os
from unittest import mock

import fixtures

from os_brick import initiator
from os_brick.initiator import connector as brick_connector
from os_brick.initiator.connectors import nvmeof

from cairn_cinder.tests import base

HOST_NQN = 'nqn.2014-08.org.nvmexpress:uuid:5d7c1a2e-3333-4b6f-8e9a-000000000003'


class FakeNvmeHost(object):
    """Records the commands os-brick runs and, for ``nvme connect``, creates the sysfs
    entries the kernel would (see the module docstring)."""

    def __init__(self, sysfs_ctl, namespace_uuids):
        """``sysfs_ctl``: the stand-in directory for /sys/class/nvme-fabrics/ctl;
        ``namespace_uuids``: subsystem NQN -> the UUID its namespace 1 reports."""
        self.ctl = sysfs_ctl
        self.uuids = namespace_uuids
        self.commands = []

    def connects(self):
        """The argv of every ``nvme connect`` run, in order."""
        return [c for c in self.commands if c[:2] == ['nvme', 'connect']]

    def execute(self, *cmd, **kwargs):
        """Stands in for processutils.execute / rootwrap: records ``cmd`` and
        returns (stdout, stderr)."""
        cmd = [str(c) for c in cmd]
        self.commands.append(cmd)
        if cmd[:2] == ['nvme', 'connect']:
            self._connect(cmd[2:])
        return '', ''

    def _connect(self, args):
        """Makes controller nvme<K> for the portal in ``args`` with the namespace as
        ANA path nvme0c<K>n1 of multipath head nvme0n1."""
        opts = dict(zip(args[0::2], args[1::2]))
        k = len(self.connects()) - 1
        ctrl = os.path.join(self.ctl, 'nvme%d' % k)
        os.makedirs(os.path.join(ctrl, 'nvme0c%dn1' % k))
        files = {
            'subsysnqn': opts['-n'],
            'transport': opts['-t'],
            'address': 'traddr=%s,trsvcid=%s' % (opts['-a'], opts['-s']),
            'hostnqn': opts.get('-q', ''),
            'state': 'live',
            'nvme0c%dn1/uuid' % k: self.uuids[opts['-n']],
            'nvme0c%dn1/nsid' % k: '1',
        }
        for name, text in files.items():
            with open(os.path.join(ctrl, name), 'w') as f:
                f.write(text + '\n')


class OsBrickPropertiesTest(base.ClusterTestCase):
    """The driver's connection properties through os-brick's NVMe-oF connector."""

    def setUp(self):
        """A driver, a Cairn volume and its connection properties after a JSON round
        trip; the expected portals are the ANA paths cairn up printed."""
        super().setUp()
        self.driver = self.make_driver()
        self.volume = self.make_volume()
        self.driver.create_volume(self.volume)
        props = self.driver.initialize_connection(self.volume,
                                                  {'nqn': HOST_NQN})
        self.props = json.loads(json.dumps(props))
        nvmf = self.cluster.volume(self.volume.name)['nvmf']
        self.nqn = nvmf['nqn']
        self.uuid = nvmf['uuid']
        self.portals = [(p.rsplit(':', 1)[0], p.rsplit(':', 1)[1], 'tcp')
                        for p, _ana in self.cluster.nvmf_portals]

    def test_conn_props_parse_one_portal_per_ana_path(self):
        """NVMeOFConnProps: one target, Cairn's NQN and namespace UUID, the host NQN,
        discard, and (address, port, transport) for each of the three ANA paths."""
        self.assertEqual('nvmeof', self.props['driver_volume_type'])
        cp = nvmeof.NVMeOFConnProps(copy.deepcopy(self.props['data']))
        self.assertIs(False, cp.is_replicated)
        self.assertTrue(cp.discard)
        self.assertEqual(1, len(cp.targets))
        t = cp.targets[0]
        self.assertEqual(self.nqn, t.nqn)
        self.assertEqual(self.uuid, t.uuid)
        self.assertEqual(HOST_NQN, t.host_nqn)
        self.assertEqual(3, len(t.portals))
        self.assertEqual(self.portals,
                         [(p.address, p.port, p.transport) for p in t.portals])

    def _connect(self, use_multipath):
        """Runs connect_volume on the properties with a FakeNvmeHost; returns (result,
        fake host)."""
        ctl = self.useFixture(fixtures.TempDir()).path + '/'
        host = FakeNvmeHost(ctl, {self.nqn: self.uuid})
        self.useFixture(fixtures.MonkeyPatch(
            'os_brick.initiator.connectors.nvmeof.NVME_CTRL_SYSFS_PATH', ctl))
        patcher = mock.patch.object(nvmeof.NVMeOFConnector,
                                    'native_multipath_supported', True)
        patcher.start()
        self.addCleanup(patcher.stop)
        conn = brick_connector.InitiatorConnector.factory(
            initiator.NVME, 'sudo', use_multipath=use_multipath,
            execute=host.execute)
        self.assertIsInstance(conn, nvmeof.NVMeOFConnector)
        result = conn.connect_volume(copy.deepcopy(self.props['data']))
        return result, host

    def test_connect_volume_multipath_connects_every_portal(self):
        """With use_multipath, connect_volume runs one `nvme connect` per ANA path
        (tcp, Cairn's NQN, our host NQN) and returns the multipath device whose
        namespace UUID is the driver's vol_uuid."""
        result, host = self._connect(use_multipath=True)
        connects = host.connects()
        self.assertEqual(3, len(connects), host.commands)
        seen = []
        for argv in connects:
            opts = dict(zip(argv[2::2], argv[3::2]))
            self.assertEqual('tcp', opts['-t'])
            self.assertEqual(self.nqn, opts['-n'])
            self.assertEqual(HOST_NQN, opts['-q'])
            seen.append((opts['-a'], opts['-s'], 'tcp'))
        self.assertEqual(self.portals, seen)
        self.assertEqual({'type': 'block', 'path': '/dev/nvme0n1'}, result)

    def test_connect_volume_without_multipath_connects_once(self):
        """Without use_multipath, os-brick stops after the first portal that
        connects: a single `nvme connect`, to the first (ANA-optimized) path."""
        result, host = self._connect(use_multipath=False)
        connects = host.connects()
        self.assertEqual(1, len(connects), host.commands)
        self.assertIn(self.portals[0][0], connects[0])
        self.assertIn(self.portals[0][1], connects[0])
        self.assertEqual('/dev/nvme0n1', result['path'])
