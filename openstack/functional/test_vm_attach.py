"""A real NVMe/TCP attach: os-brick in the nvme-vm guest, the Cairn driver on the host.

Slow (a TCG-emulated guest boots and imports os-brick): runs only with ``CAIRN_SLOW=1``
(``openstack/run-functional --vm`` sets it) and when the nvme-vm tooling is set up
(../shared/tools/nvme-vm/setup); it is reported as skipped otherwise, and with
``CAIRN_REQUIRE_VM=1`` missing tooling is a failure instead.

The host side starts ``cairn up`` (3 nodes) and runs the driver in this process against it,
with the NVMe/TCP paths as portals at 10.0.2.2 (the host's 127.0.0.1 as the guest sees it).
``guest_attach.py`` runs in the guest: os-brick's connector properties come back to the host,
which calls the driver's ``create_volume`` and ``initialize_connection`` with them and hands
the connection info to the guest through the shared directory; the guest attaches with
``NVMeOFConnector.connect_volume`` (privsep in-process, the real ``nvme connect`` to every
portal), writes with fio crc32c verify, and ``disconnect_volume``. Back on the host the
data is read over NBD from ``cairn up``: its sha256 must match the guest's, and fio's own
``verify_only`` pass (``--ioengine=nbd``) must accept it (and reject an empty volume).
Then ``terminate_connection`` and ``delete_volume`` through the driver.
"""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

from functional import harness

NVME_VM_DIR = os.environ.get('NVME_VM_DIR', os.path.join(os.path.dirname(harness.REPO_ROOT), 'shared', 'tools', 'nvme-vm'))
NVME_VM_CACHE = os.environ.get('NVME_VM_CACHE', '/var/cache/nvme-vm')
GUEST_SCRIPT = os.path.join(harness.FUNCTIONAL_DIR, 'guest_attach.py')
#: The host's loopback as the guest reaches it (qemu user networking).
GUEST_HOST = '10.0.2.2'
SIZE_MIB = 32
GUEST_TIMEOUT_S = 900


def vm_missing():
    """Why the nvme-vm tooling cannot run here (None when it can)."""
    if not os.path.exists(os.path.join(NVME_VM_DIR, 'run-guest')):
        return 'no %s' % os.path.join(NVME_VM_DIR, 'run-guest')
    if not (os.path.exists(os.path.join(NVME_VM_CACHE, 'vmlinuz')) and os.path.exists(os.path.join(NVME_VM_CACHE, 'initramfs.img'))):
        return 'no guest kernel in %s (run %s as root)' % (NVME_VM_CACHE, os.path.join(NVME_VM_DIR, 'setup'))
    if not shutil.which('qemu-system-x86_64'):
        return 'qemu-system-x86_64 not installed (the nvme-vm setup installs it)'
    if not shutil.which('dmidecode'):
        return 'dmidecode not installed (os-brick 6.1 get_connector_properties needs it)'
    return None


def skip_reason():
    """Why this test is skipped (None: it runs). Raises when CAIRN_REQUIRE_VM demands the VM."""
    if not os.environ.get('CAIRN_SLOW'):
        return 'slow: run with openstack/run-functional --vm or CAIRN_SLOW=1'
    missing = vm_missing()
    if missing and os.environ.get('CAIRN_REQUIRE_VM'):
        raise RuntimeError('CAIRN_REQUIRE_VM is set but the nvme-vm tooling is missing: %s' % missing)
    return missing


def make_driver(cairn, workdir):
    """A CairnDriver on cinder.conf section [cairn] pointed at ``cairn``, set up.

    The config file is a real cinder.conf fragment (the options a deployment would write);
    portals are the NVMe/TCP paths as the guest reaches them.
    """
    from oslo_config import cfg

    from cinder import context
    from cinder import objects
    from cinder.volume import configuration

    from cairn_cinder import driver as cairn_driver
    from cairn_cinder import options

    objects.register_all()
    conf_path = os.path.join(workdir, 'cinder.conf')
    with open(conf_path, 'w') as f:
        f.write('[DEFAULT]\nenabled_backends = cairn\n\n[cairn]\nvolume_driver = cairn_cinder.driver.CairnDriver\n'
                'volume_backend_name = cairn\n')
        for k, v in harness.backend_options(cairn, portal_host=GUEST_HOST).items():
            f.write('%s = %s\n' % (k, ','.join(v) if isinstance(v, list) else v))
    cfg.CONF(['--config-file', conf_path], project='cinder', default_config_files=[])
    conf = configuration.Configuration(options.CAIRN_OPTS, config_group='cairn')
    drv = cairn_driver.CairnDriver(configuration=conf, host='vm-test-host')
    ctxt = context.get_admin_context()
    drv.do_setup(ctxt)
    drv.check_for_setup_error()
    return drv, ctxt


class GuestRun:
    """``run-guest guest_attach.py`` as a child process whose output lines are parsed live.

    ``on_line(key, value)`` is called (on the reader thread) for each ``KEY <json>`` line.
    """

    def __init__(self, share, log_path, on_line):
        """Starts the guest."""
        argv = [os.path.join(NVME_VM_DIR, 'run-guest'), GUEST_SCRIPT, '--share', share, '--timeout', str(GUEST_TIMEOUT_S),
                '--klog', log_path + '.klog', '--', str(SIZE_MIB)]
        if os.environ.get('CAIRN_OSBRICK_UNPATCHED'):
            argv.append('--unpatched')  # show os-brick 6.1's own failure (LP #2035811)
        self.results = {}
        self.lines = []
        self.errors = []
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     cwd=harness.FUNCTIONAL_DIR, start_new_session=True)
        self._log = open(log_path, 'w')
        self._on_line = on_line
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        """Reads the guest's output; records results and calls on_line."""
        for raw in self.proc.stdout:
            line = raw.decode('utf-8', 'replace').rstrip('\r\n')
            self.lines.append(line)
            self._log.write(line + '\n')
            self._log.flush()
            key, _sep, rest = line.partition(' ')
            if key in ('OSBRICK_PATCH', 'CONNECTOR', 'DEVICE', 'PATHS', 'FIO', 'SHA256', 'DISCONNECTED'):
                try:
                    value = json.loads(rest)
                except ValueError:
                    continue
                self.results[key] = value
                harness.log('guest %s %s' % (key, rest[:300]))
                try:
                    self._on_line(key, value)
                except Exception as e:  # noqa: BLE001 - the test reports it
                    self.errors.append(e)
            elif key in ('FAIL', 'guest:', 'run-guest:'):
                harness.log(line)

    def wait(self):
        """Waits for run-guest to exit; returns its exit code."""
        code = self.proc.wait()
        self._thread.join(10)
        self._log.close()
        return code

    def kill(self):
        """Kills run-guest (and qemu with it) if it still runs."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 9)
            except ProcessLookupError:
                pass
            self.proc.wait(30)


class VmAttachTest(unittest.TestCase):
    """os-brick attaches what the Cairn driver returned, in a real Linux NVMe/TCP initiator."""

    @classmethod
    def setUpClass(cls):
        """Starts cairn up (stopped by a class cleanup)."""
        why = skip_reason()
        if why:
            raise unittest.SkipTest(why)
        cls.dir = tempfile.mkdtemp(prefix='cairn-cinder-vm-')
        cls.addClassCleanup(lambda: None if harness.keep_dirs() else shutil.rmtree(cls.dir, ignore_errors=True))
        cls.cairn = harness.CairnCluster(cls.dir)
        cls.addClassCleanup(cls.cairn.stop)
        cls.cairn.start()
        cls.api = cls.cairn.client()

    def test_os_brick_attach_in_guest(self):
        """connect_volume in the guest, fio verify, disconnect_volume; the data is on Cairn."""
        from cinder import objects

        drv, ctxt = make_driver(self.cairn, self.dir)
        volume = objects.Volume(context=ctxt, id=str(uuid.uuid4()), _name_id=None, size=1, volume_type_id=None,
                                display_name='vm-attach')
        drv.create_volume(volume)
        self.addCleanup(drv.delete_volume, volume)
        name = volume.name
        self.assertEqual(self.api.volume(name)['sizeBytes'], 1 << 30)
        share = os.path.join(self.dir, 'share')
        os.makedirs(share)
        given = {}

        def on_line(key, value):
            """On CONNECTOR: the driver opens the volume to that host and the guest gets the info."""
            if key != 'CONNECTOR':
                return
            info = drv.initialize_connection(volume, value)
            given['connector'], given['info'] = value, info
            given['hosts'] = self.api.volume(name)['allowHosts']
            tmp = os.path.join(share, '.connection.json')
            with open(tmp, 'w') as f:
                json.dump(info, f)
            os.rename(tmp, os.path.join(share, 'connection.json'))
            harness.log('initialize_connection for %s: %s' % (value.get('nqn'), json.dumps(info['data'])))

        t0 = time.monotonic()
        guest = GuestRun(share, os.path.join(self.dir, 'guest.log'), on_line)
        try:
            code = guest.wait()
        finally:
            guest.kill()
        harness.log('guest finished in %.0f s (exit %s)' % (time.monotonic() - t0, code))
        output = '\n'.join(guest.lines[-60:])
        self.assertEqual(guest.errors, [], 'the host side failed: %r' % guest.errors)
        self.assertEqual(code, 0, 'run-guest exited %s:\n%s' % (code, output))
        r = guest.results
        for key in ('CONNECTOR', 'DEVICE', 'PATHS', 'FIO', 'SHA256', 'DISCONNECTED'):
            self.assertIn(key, r, 'the guest did not report %s:\n%s' % (key, output))

        # The driver opened the volume to exactly the guest's host NQN, with every path.
        host_nqn = r['CONNECTOR']['nqn']
        self.assertEqual(given['hosts'], [host_nqn])
        data = given['info']['data']
        self.assertEqual(given['info']['driver_volume_type'], 'nvmeof')
        self.assertEqual(data['target_nqn'], self.cairn.nqn(name))
        self.assertEqual(data['host_nqn'], host_nqn)
        self.assertEqual([tuple(p) for p in data['portals']], [(GUEST_HOST, p, 'tcp') for _h, p in self.cairn.nvmf_paths])

        # os-brick connected every portal (native multipath): one live controller per ANA path.
        # The gateway accepts the host at once: a Connect its allow-list refuses makes it read
        # the volume's record, where initialize_connection has just added the host.
        self.assertTrue(r['DEVICE']['path'].startswith('/dev/nvme'), r['DEVICE'])
        paths = r['PATHS']
        ports = sorted(int(a.split('trsvcid=')[1].split(',')[0]) for _c, a, _s in paths)
        self.assertEqual(ports, sorted(p for _h, p in self.cairn.nvmf_paths), paths)
        self.assertTrue(all(s == 'live' for _c, _a, s in paths), paths)
        self.assertEqual(r['FIO'], {'error': 0, 'written': SIZE_MIB << 20, 'verified': SIZE_MIB << 20})

        # The host reads the same bytes over NBD after the guest disconnected.
        uri = self.cairn.nbd_uri(name)
        head = harness.nbd_read(uri, SIZE_MIB << 20, self.dir)
        self.assertEqual(hashlib.sha256(head).hexdigest(), r['SHA256'], 'NBD reads what the guest wrote')
        verify = ['fio', '--name=cinder-attach', '--ioengine=nbd', '--rw=write', '--bs=64k', '--size=%dM' % SIZE_MIB,
                  '--verify=crc32c', '--verify_only', '--verify_fatal=1']
        ok = subprocess.run(verify + ['--uri=%s' % uri], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
        self.assertEqual(ok.returncode, 0, 'fio verify_only over NBD:\n%s' % ok.stdout.decode()[-3000:])
        empty = subprocess.run(verify + ['--uri=%s' % self.cairn.nbd_uri('vol0')], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=300)
        self.assertNotEqual(empty.returncode, 0, 'fio verify_only must reject a volume without the pattern')

        # terminate_connection closes the volume again; delete_volume (cleanup) removes it.
        drv.terminate_connection(volume, given['connector'])
        self.assertNotIn(host_nqn, self.api.volume(name)['allowHosts'])
        drv.delete_volume(volume)
        self.assertIsNone(self.api.volume(name))


if __name__ == '__main__':
    unittest.main()
