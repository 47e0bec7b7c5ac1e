"""A real Cairn cluster for the tests: ``cairn up`` in a temporary data directory.

``CairnCluster.start()`` runs ``node bin/cairn.js up --data-dir <tmp> --nodes 3 --devices 1
--device-size 1GiB --nbd-port 0 --nvmf-port 0 --base-port 0`` from the repository root (the
program ``npx cairn up`` runs; started without npm's wrapper processes so that SIGINT
reaches it directly), reads the API addresses and token from ``<tmp>/cluster.json`` and the
NVMe/TCP paths and NBD address from what ``cairn up`` prints, and waits until
``GET /v1/status`` answers and the volumes API works. ``stop()`` sends SIGINT (Ctrl-C:
drain, flush, stop the nodes) and waits for the process to end.

``api()`` talks to the cluster's own REST API with plain ``requests``, so that tests check
what the driver did independently of the driver's client. ``nbd_write``/``nbd_read_check``
write and verify data patterns over NBD with qemu-io (when installed).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import requests

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
START_TIMEOUT = 180
STOP_TIMEOUT = 60


class CairnCluster(object):
    """One local Cairn cluster started with ``cairn up`` (see the module docstring)."""

    def __init__(self, nodes=3, device_size='1GiB'):
        """Remembers the size of the cluster to start."""
        self.nodes = nodes
        self.device_size = device_size
        self.proc = None
        self.data_dir = None
        self.config = None
        self.token = None
        self.api_addresses = []
        self.nvmf_portals = []
        self.nbd = None
        self.output_path = None

    # Lifecycle ------------------------------------------------------------------------

    def start(self):
        """Starts ``cairn up`` and waits until its API serves volumes.

        :raises RuntimeError: it exited or was not ready in START_TIMEOUT seconds (the
            message holds the end of its output).
        """
        self.data_dir = tempfile.mkdtemp(prefix='cairn-cinder-test-')
        self.output_path = os.path.join(self.data_dir, 'cairn-up.out')
        cmd = ['node', os.path.join(REPO, 'bin', 'cairn.js'), 'up',
               '--data-dir', self.data_dir, '--nodes', str(self.nodes),
               '--devices', '1', '--device-size', self.device_size,
               '--nbd-port', '0', '--nvmf-port', '0', '--base-port', '0',
               '--no-metrics']
        out = open(self.output_path, 'wb')
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=out,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        out.close()
        deadline = time.monotonic() + START_TIMEOUT
        try:
            self._wait_printed(deadline)
            self._read_config()
            self._wait_api(deadline)
        except Exception:
            self.stop()
            raise
        return self

    def output(self):
        """What ``cairn up`` printed so far."""
        with open(self.output_path, 'r', errors='replace') as f:
            return f.read()

    def _fail(self, why):
        """Raises RuntimeError with ``why`` and the end of cairn up's output."""
        raise RuntimeError('%s; cairn up output:\n%s' % (why, self.output()[-4000:]))

    def _wait_printed(self, deadline):
        """Waits until cairn up printed its paths and 'Press Ctrl-C', then parses
        the NVMe/TCP paths and the NBD address."""
        while True:
            text = self.output()
            if 'Press Ctrl-C to stop.' in text:
                break
            if self.proc.poll() is not None:
                self._fail('cairn up exited with %s' % self.proc.returncode)
            if time.monotonic() > deadline:
                self._fail('cairn up not ready in %s s' % START_TIMEOUT)
            time.sleep(0.5)
        self.nvmf_portals = re.findall(
            r'NVMe/TCP path \d+: (\S+:\d+) \(ANA ([a-z-]+)\)', text)
        m = re.search(r'NBD export: nbd://([^/\s]+)/', text)
        self.nbd = m.group(1) if m else None
        if not self.nvmf_portals:
            self._fail('cairn up printed no NVMe/TCP path')

    def _read_config(self):
        """Reads the token and the nodes' API addresses from cluster.json."""
        with open(os.path.join(self.data_dir, 'cluster.json')) as f:
            self.config = json.load(f)
        self.token = self.config['token']
        self.api_addresses = ['http://%s:%s' % (n['host'], n['apiPort'])
                              for n in self.config['nodes']]

    def _wait_api(self, deadline):
        """Waits until GET /v1/status and GET /v1/volumes answer 200 on every node."""
        last = None
        while time.monotonic() < deadline:
            try:
                ok = all(
                    requests.get(a + path, headers=self.headers(),
                                 timeout=5).status_code == 200
                    for a in self.api_addresses
                    for path in ('/v1/status', '/v1/volumes'))
                if ok:
                    return
            except requests.RequestException as e:
                last = e
            if self.proc.poll() is not None:
                self._fail('cairn up exited with %s' % self.proc.returncode)
            time.sleep(0.5)
        self._fail('the API did not serve volumes in time (%s)' % last)

    def stop(self):
        """Stops cairn up with SIGINT and waits; SIGKILLs its process group if it is
        still running after STOP_TIMEOUT seconds. Removes the data directory unless
        CAIRN_KEEP_TEST_DIRS=1."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if self.data_dir and os.environ.get('CAIRN_KEEP_TEST_DIRS') != '1':
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # Cairn's own API ------------------------------------------------------------------

    def headers(self):
        """The bearer-token header."""
        return {'Authorization': 'Bearer %s' % self.token}

    def api(self, method, path, body=None, address=None, headers=None):
        """One request to the cluster's API (node 0 unless ``address``); returns the
        ``requests`` response."""
        h = self.headers()
        h.update(headers or {})
        return requests.request(method, (address or self.api_addresses[0]) + path,
                                json=body, headers=h, timeout=30)

    def volume(self, name):
        """GET /v1/volumes/:name as JSON, or None on 404."""
        r = self.api('GET', '/v1/volumes/%s' % name)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.json()

    def snapshot(self, volume, snap):
        """GET /v1/volumes/:name/snapshots/:snap as JSON, or None on 404."""
        r = self.api('GET', '/v1/volumes/%s/snapshots/%s' % (volume, snap))
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.json()

    def jobs(self):
        """GET /v1/jobs: every job the authority remembers."""
        r = self.api('GET', '/v1/jobs')
        r.raise_for_status()
        return r.json()['jobs']

    def wait_for(self, predicate, timeout=30, what='condition'):
        """Polls ``predicate()`` until it is truthy; returns its value.

        :raises AssertionError: still falsy after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            v = predicate()
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError('timed out waiting for %s' % what)
            time.sleep(0.3)

    # Data over NBD --------------------------------------------------------------------

    @staticmethod
    def have_qemu_io():
        """True when qemu-io (Debian qemu-utils) is installed."""
        return shutil.which('qemu-io') is not None

    def _qemu_io(self, export, command, read_only=False):
        """Runs one qemu-io command on NBD export ``export``; returns its output.

        :raises AssertionError: qemu-io failed or reported a pattern mismatch.
        """
        cmd = ['qemu-io', '-f', 'raw']
        if read_only:
            cmd.append('-r')
        cmd += ['-c', command, 'nbd://%s/%s' % (self.nbd, export)]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        out = p.stdout + p.stderr
        if p.returncode != 0 or 'Pattern verification failed' in out \
                or 'failed' in out.lower():
            raise AssertionError('%s -> %s: %s' % (' '.join(cmd), p.returncode,
                                                   out))
        return out

    def nbd_write(self, export, pattern, offset=0, length=1 << 20):
        """Writes ``length`` bytes of byte ``pattern`` at ``offset`` over NBD."""
        return self._qemu_io(export, 'write -P %d %d %d' % (pattern, offset,
                                                            length))

    def nbd_read_check(self, export, pattern, offset=0, length=1 << 20):
        """Reads ``length`` bytes at ``offset`` over NBD and checks they are all
        byte ``pattern``. :raises AssertionError: they are not."""
        return self._qemu_io(export, 'read -P %d %d %d' % (pattern, offset,
                                                           length),
                             read_only=True)
