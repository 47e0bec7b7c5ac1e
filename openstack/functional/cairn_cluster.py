"""The Cairn cluster of the functional tests: ``cairn up`` on a temporary data directory.

:class:`CairnCluster` runs ``cairn up`` (bin/cairn.js, what ``npx cairn up`` runs) with free
ports; its management API addresses and token come from ``cluster.json``, its NVMe/TCP paths
and NBD port from its output. A volume's NQN is the ``nvmf.nqn`` of its view in the API
(GET /v1/volumes/:name), the identity the gateways serve it under.
"""

import json
import os
import re
import signal

from .process import REPO_ROOT, Process, log, tail, wait_for
from .rest import CairnClient

CAIRN_BIN = os.path.join(REPO_ROOT, 'bin', 'cairn.js')


class CairnCluster:
    """A real Cairn cluster: ``cairn up`` with ``nodes`` storage nodes on a temporary data dir.

    One device of ``device_size`` per node, every port picked free, no Prometheus metrics
    (less work on a 2-core machine). ``host`` is where it listens (the NVMe/TCP paths too); :attr:`nvmf_paths` are the
    (host, port) pairs ``cairn up`` printed, :attr:`nbd_port` its NBD port.
    """

    def __init__(self, workdir, nodes=3, device_size='1GiB', host='127.0.0.1', extra_args=()):
        """Lays out the data directory; :meth:`start` runs it."""
        self.data_dir = os.path.join(workdir, 'cairn')
        os.makedirs(self.data_dir, exist_ok=True)
        self.nodes = nodes
        self.device_size = device_size
        self.host = host
        self.extra_args = list(extra_args)
        self.proc = None
        self.config = None
        self.nvmf_paths = []
        self.nbd_port = None

    def start(self, timeout=120):
        """Starts ``cairn up`` and waits for its 'NBD export:' line; reads cluster.json."""
        argv = ['node', CAIRN_BIN, 'up', '--data-dir', self.data_dir, '--nodes', str(self.nodes), '--devices', '1',
                '--device-size', self.device_size, '--nbd-port', '0', '--nvmf-port', '0', '--base-port', '0',
                '--host', self.host, '--no-metrics'] + self.extra_args
        log('cairn up (%d nodes) in %s' % (self.nodes, self.data_dir))
        self.proc = Process('cairn up', argv, os.path.join(self.data_dir, 'up.log'), cwd=REPO_ROOT)

        def ready():
            """The 'NBD export:' match once cairn up printed it."""
            self.proc.check_alive()
            return re.search(r'NBD export: nbd://[^:\s]+:(\d+)/', tail(self.proc.log_path, 200))
        m = wait_for(ready, timeout, 'cairn up')
        self.nbd_port = int(m.group(1))
        out = tail(self.proc.log_path, 200)
        self.nvmf_paths = [(h, int(p)) for h, p in re.findall(r'NVMe/TCP path \d+: ([\d.]+):(\d+)', out)]
        with open(os.path.join(self.data_dir, 'cluster.json')) as f:
            self.config = json.load(f)
        log('cairn up ready: cluster %s, API %s, NVMe/TCP %s, NBD %d' % (
            self.cluster_id, ','.join(self.api_addresses), ','.join('%s:%d' % p for p in self.nvmf_paths), self.nbd_port))

    @property
    def cluster_id(self):
        """The cluster id (part of every volume's NQN)."""
        return self.config['clusterId']

    @property
    def token(self):
        """The management API token."""
        return self.config['token']

    @property
    def api_addresses(self):
        """Every node's management API as host:port."""
        return ['%s:%d' % (n['host'], n['apiPort']) for n in self.config['nodes']]

    def client(self):
        """A :class:`CairnClient` over every node's API."""
        return CairnClient(['http://%s' % a for a in self.api_addresses], self.token)

    def nqn(self, volume):
        """The NVMe subsystem NQN of ``volume``: ``nvmf.nqn`` of its view in the API
        (GET /v1/volumes/:name), the identity every gateway serves it under.

        :raises AssertionError: when the volume does not exist or its view has no ``nvmf.nqn``.
        """
        record = self.client().volume(volume)
        nqn = ((record or {}).get('nvmf') or {}).get('nqn')
        if not nqn:
            raise AssertionError('volume %s: no nvmf.nqn in its view in the Cairn API: %r' % (volume, record))
        return nqn

    def nbd_uri(self, export):
        """The NBD URI of ``export`` (a volume name, or VOLUME@SNAPSHOT)."""
        return 'nbd://%s:%d/%s' % (self.host, self.nbd_port, export)

    def stop(self):
        """SIGINT (cairn up drains, flushes and stops its nodes), then anything left is killed."""
        if self.proc:
            code = self.proc.stop(signal.SIGINT, timeout=60, group=False)
            log('cairn up stopped (exit %s)' % code)
            return code
        return None
