"""The Cinder services of the functional tests and the Cairn backend's options.

:class:`CinderStack` runs cinder-api, cinder-scheduler and cinder-volume as three processes
(``cinder_service.py``, Debian's python3-cinder) sharing one cinder.conf: noauth, sqlite
(``cinder-manage db sync``), a RabbitMQ transport URL, one backend ``[cairn]`` with the Cairn
driver. :func:`backend_options` makes that section's driver options for a started
``CairnCluster``.
"""

import os
import re
import signal
import subprocess
import time

from .process import FUNCTIONAL_DIR, OPENSTACK_DIR, Process, free_port, log, tail, wait_for
from .rest import CinderClient, http_json

PYTHON = '/usr/bin/python3'
API_PASTE = os.path.join(OPENSTACK_DIR, 'api-paste.ini')
CINDER_SERVICE = os.path.join(FUNCTIONAL_DIR, 'cinder_service.py')
#: The Cinder backend name (``enabled_backends``) and the host the volume service reports.
BACKEND = 'cairn'
CINDER_HOST = 'cairn-functional'


class CinderStack:
    """cinder-api, cinder-scheduler and cinder-volume as three processes on one cinder.conf.

    ``backend_options`` are the ``[cairn]`` section's driver options (besides volume_driver and
    volume_backend_name); values that are lists are joined with commas.
    """

    def __init__(self, workdir, transport_url, backend_options, driver='cairn_cinder.driver.CairnDriver'):
        """Writes cinder.conf; :meth:`start` syncs the database and starts the services."""
        self.dir = os.path.join(workdir, 'cinder')
        self.log_dir = os.path.join(self.dir, 'logs')
        for sub in ('logs', 'state', 'locks', 'coord'):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        self.api_port = free_port()
        self.conf = os.path.join(self.dir, 'cinder.conf')
        self.procs = {}
        backend = {'volume_driver': driver, 'volume_backend_name': BACKEND}
        backend.update(backend_options)
        sections = {
            'DEFAULT': {
                'debug': 'true',
                'use_stderr': 'false',
                'state_path': os.path.join(self.dir, 'state'),
                'auth_strategy': 'noauth',
                'api_paste_config': API_PASTE,
                'transport_url': transport_url,
                'osapi_volume_listen': '127.0.0.1',
                'osapi_volume_listen_port': str(self.api_port),
                'osapi_volume_workers': '1',
                'host': CINDER_HOST,
                'my_ip': '127.0.0.1',
                'enabled_backends': BACKEND,
                'report_interval': '2',
                'periodic_interval': '5',
                'periodic_fuzzy_delay': '0',
                'scheduler_driver_init_wait_time': '10',
                'backend_stats_polling_interval': '10',
                'rpc_response_timeout': '120',
            },
            'database': {'connection': 'sqlite:///%s' % os.path.join(self.dir, 'cinder.sqlite')},
            'oslo_concurrency': {'lock_path': os.path.join(self.dir, 'locks')},
            'coordination': {'backend_url': 'file://%s' % os.path.join(self.dir, 'coord')},
            BACKEND: backend,
        }
        with open(self.conf, 'w') as f:
            for name, opts in sections.items():
                f.write('[%s]\n' % name)
                for k, v in opts.items():
                    if isinstance(v, (list, tuple)):
                        v = ','.join(str(x) for x in v)
                    f.write('%s = %s\n' % (k, v))
                f.write('\n')

    def env(self):
        """The services' environment: the driver package (openstack/) importable."""
        env = dict(os.environ)
        env['PYTHONPATH'] = OPENSTACK_DIR + (':' + env['PYTHONPATH'] if env.get('PYTHONPATH') else '')
        env['PYTHONUNBUFFERED'] = '1'
        return env

    def _argv(self, service, *args):
        """The command line of one service (or cinder-manage) with this stack's config."""
        return [PYTHON, CINDER_SERVICE, service, '--config-file', self.conf] + list(args)

    @property
    def api_url(self):
        """Base URL of cinder-api."""
        return 'http://127.0.0.1:%d' % self.api_port

    def start(self, timeout=180):
        """``cinder-manage db sync``, then the three services; waits until the API answers,
        both services report up and the scheduler knows the Cairn pool."""
        t0 = time.monotonic()
        r = subprocess.run(self._argv('manage', '--log-file', os.path.join(self.log_dir, 'cinder-manage.log'), 'db', 'sync'),
                           env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300, check=False)
        if r.returncode != 0:
            raise RuntimeError('cinder-manage db sync failed (%d):\n%s\n%s' % (
                r.returncode, r.stdout.decode('utf-8', 'replace')[-3000:], tail(os.path.join(self.log_dir, 'cinder-manage.log'))))
        log('cinder-manage db sync: %.1f s' % (time.monotonic() - t0))
        for service in ('api', 'scheduler', 'volume'):
            path = os.path.join(self.log_dir, 'cinder-%s.log' % service)
            self.procs[service] = Process('cinder-%s' % service, self._argv(service, '--log-file', path),
                                          os.path.join(self.log_dir, 'cinder-%s.out' % service), env=self.env())
        log('cinder-api (port %d), cinder-scheduler, cinder-volume started' % self.api_port)
        client = self.client()

        def check_all():
            """Raises when any service has exited."""
            for p in self.procs.values():
                p.check_alive()

        def api_up():
            """True once cinder-api answers its version document."""
            check_all()
            return http_json('GET', self.api_url + '/', timeout=5)[0] in (200, 300)
        wait_for(api_up, timeout, 'cinder-api answering')

        def services_up():
            """True once os-services lists both services up."""
            check_all()
            services = client.get('/os-services')['services']
            up = {(s['binary'], s['host']) for s in services if s['state'] == 'up' and s['status'] == 'enabled'}
            return ('cinder-scheduler', CINDER_HOST) in up and ('cinder-volume', '%s@%s' % (CINDER_HOST, BACKEND)) in up
        wait_for(services_up, timeout, 'cinder-scheduler and cinder-volume up in os-services')

        def pool_known():
            """The scheduler's pools of this backend (empty until it has stats)."""
            check_all()
            pools = client.get('/scheduler-stats/get_pools?detail=true')['pools']
            return [p for p in pools if p['name'].startswith('%s@%s#' % (CINDER_HOST, BACKEND))]
        pools = wait_for(pool_known, timeout, 'the scheduler knowing the Cairn pool (cinder-volume published its stats)')
        self.pools = pools
        log('Cinder stack up in %.1f s: pool %s' % (time.monotonic() - t0, ', '.join(p['name'] for p in pools)))

    def client(self):
        """A :class:`CinderClient` for this stack's API."""
        return CinderClient(self.api_url, server_log=lambda: '\n'.join(self.grep_logs(r'ERROR|Traceback|Error:')[-40:]))

    def log_tails(self, lines=30):
        """The tails of every service's log (for failure messages)."""
        out = []
        for name in sorted(os.listdir(self.log_dir)):
            t = tail(os.path.join(self.log_dir, name), lines)
            if t:
                out.append('--- %s ---\n%s' % (name, t))
        return '\n'.join(out)

    def grep_logs(self, pattern):
        """Lines of the services' logs that match ``pattern`` (a regular expression)."""
        rx = re.compile(pattern)
        hits = []
        for name in sorted(os.listdir(self.log_dir)):
            with open(os.path.join(self.log_dir, name), 'rb') as f:
                for line in f.read().decode('utf-8', 'replace').splitlines():
                    if rx.search(line):
                        hits.append('%s: %s' % (name, line))
        return hits

    def stop(self):
        """Stops the three services (SIGTERM to each group, SIGKILL after 20 s)."""
        for service in ('api', 'volume', 'scheduler'):
            p = self.procs.get(service)
            if p:
                p.stop(signal.SIGTERM, timeout=20)


def backend_options(cairn, portal_host=None, **extra):
    """The ``[cairn]`` driver options for ``cairn`` (a started :class:`CairnCluster`).

    Every node's API, the cluster token, and every NVMe/TCP path ``cairn up`` printed as a
    portal; ``portal_host`` replaces the paths' address (e.g. 10.0.2.2, the host as the
    nvme-vm guest reaches it). ``extra`` adds or overrides options.
    """
    opts = {
        'cairn_api_addresses': ['http://%s' % a for a in cairn.api_addresses],
        'cairn_api_token': cairn.token,
        'cairn_verify_tls': 'false',
        'cairn_pool': '0',
        'cairn_nvmf_portals': ['%s:%d' % (portal_host or h, p) for h, p in cairn.nvmf_paths],
    }
    opts.update(extra)
    return opts
