"""Starts and stops the real components of the functional tests.

- :class:`RabbitMQ`: Debian's rabbitmq-server on private ports (AMQP, Erlang distribution and
  epmd), with its node name, mnesia, logs, config and Erlang cookie (a private HOME) in a
  temporary directory.
- :class:`CairnCluster`: ``cairn up`` (bin/cairn.js, what ``npx cairn up`` runs) on a temporary
  data directory with free ports; its management API addresses and token come from
  ``cluster.json``, its NVMe/TCP paths and NBD port from its output.
- :class:`CinderStack`: cinder-api, cinder-scheduler and cinder-volume as three processes
  (``cinder_service.py``), sharing one cinder.conf: noauth, sqlite (``cinder-manage db sync``),
  the RabbitMQ above, one backend ``[cairn]`` with the Cairn driver.
- :class:`CinderClient` and :class:`CairnClient`: small REST clients (urllib) for the two APIs.

Every process runs in its own session and is stopped (by its own process group) in ``stop()``;
:class:`FullStack` starts and stops the whole set. :func:`nbd_write`, :func:`nbd_read` and
:func:`nbd_size` reach volume data with libnbd's real clients (nbdcopy, nbdinfo) through the
NBD export ``cairn up`` serves for every volume. Only the standard library is used here;
Cinder itself is Debian's python3-cinder.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

PYTHON = '/usr/bin/python3'
FUNCTIONAL_DIR = os.path.dirname(os.path.abspath(__file__))
OPENSTACK_DIR = os.path.dirname(FUNCTIONAL_DIR)
REPO_ROOT = os.path.dirname(OPENSTACK_DIR)
API_PASTE = os.path.join(OPENSTACK_DIR, 'api-paste.ini')
CAIRN_BIN = os.path.join(REPO_ROOT, 'bin', 'cairn.js')
CINDER_SERVICE = os.path.join(FUNCTIONAL_DIR, 'cinder_service.py')
RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server'
#: The Cinder backend name (``enabled_backends``) and the host the volume service reports.
BACKEND = 'cairn'
CINDER_HOST = 'cairn-functional'
#: Cinder's project in the noauth URLs and token (hex: Cinder's default project_id_regex
#: is [0-9a-f-]+, and a path with another project id finds no route).
PROJECT = 'ca1f' * 8
#: The user in the noauth token (noauth makes every request an admin one).
USER = 'admin'


def log(msg):
    """Prints a progress line of the harness (flushed, so it interleaves with test output)."""
    print('  [harness %s] %s' % (time.strftime('%H:%M:%S'), msg), flush=True)


def keep_dirs():
    """True when CAIRN_KEEP_TEST_DIRS is set: temporary directories are kept for a post-mortem."""
    return bool(os.environ.get('CAIRN_KEEP_TEST_DIRS'))


def free_port(host='127.0.0.1'):
    """A TCP port that was free a moment ago on ``host`` (bound to 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for(check, timeout, what, interval=0.5):
    """Calls ``check()`` until it returns something truthy and returns that.

    :raises TimeoutError: naming ``what`` (and the last exception ``check`` raised, if any)
        after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - reported when the wait times out
            last = e
        if time.monotonic() > deadline:
            raise TimeoutError('%s: not within %d s%s' % (what, timeout, '' if last is None else ' (last error: %r)' % (last,)))
        time.sleep(interval)


def tail(path, lines=40):
    """The last ``lines`` lines of a text file ('' when it does not exist)."""
    try:
        with open(path, 'rb') as f:
            data = f.read().decode('utf-8', 'replace')
    except OSError:
        return ''
    return '\n'.join(data.splitlines()[-lines:])


class HttpError(Exception):
    """An HTTP answer with a status of 400 or more: ``status`` and the decoded ``body``."""

    def __init__(self, method, url, status, body):
        """Keeps the request and the answer for the message."""
        super().__init__('%s %s -> %s: %s' % (method, url, status, body))
        self.status = status
        self.body = body


def http_json(method, url, body=None, headers=None, timeout=60):
    """Sends one HTTP request with a JSON body and returns ``(status, headers, json_or_text)``.

    :raises HttpError: for a status >= 400.
    """
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header('Accept', 'application/json')
    if data is not None:
        req.add_header('Content-Type', 'application/json')
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, hdrs, raw = r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        raw = e.read()
        status, hdrs = e.code, dict(e.headers)
        if status < 400:  # urllib raises for a 3xx it does not follow (GET / answers 300)
            return status, hdrs, _decode(raw)
        raise HttpError(method, url, status, _decode(raw)) from None
    return status, hdrs, _decode(raw)


def _decode(raw):
    """JSON when ``raw`` parses, else its text (None when empty)."""
    if not raw:
        return None
    text = raw.decode('utf-8', 'replace')
    try:
        return json.loads(text)
    except ValueError:
        return text


class Process:
    """A child process in its own session, with stdout and stderr going to a log file."""

    def __init__(self, name, argv, log_path, env=None, cwd=None):
        """Starts ``argv``; ``name`` is used in messages."""
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, 'ab')
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=env, cwd=cwd, start_new_session=True)

    @property
    def pid(self):
        """The child's process id (also its process group id)."""
        return self.proc.pid

    def alive(self):
        """True while the child has not exited."""
        return self.proc.poll() is None

    def check_alive(self):
        """:raises RuntimeError: with the log's tail when the child has exited."""
        if not self.alive():
            raise RuntimeError('%s exited with %s:\n%s' % (self.name, self.proc.returncode, tail(self.log_path)))

    def stop(self, sig=signal.SIGTERM, timeout=30, group=True):
        """Sends ``sig`` (to the whole process group when ``group``), waits up to ``timeout`` s,
        then SIGKILLs the group. Returns the exit code."""
        if self.alive():
            try:
                if group:
                    os.killpg(self.proc.pid, sig)
                else:
                    self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log('%s did not stop within %d s of %s: SIGKILL' % (self.name, timeout, sig.name))
        # Whatever is left in its group (workers, node children) goes too.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()
        return self.proc.returncode


class RabbitMQ:
    """Debian's rabbitmq-server on private ports, its state under ``workdir``.

    AMQP on ``port``, Erlang distribution on ``dist_port``, a private epmd on ``epmd_port``
    (so neither a system epmd nor another test's node is touched), node name
    ``cairnfn<port>@localhost``, no plugins; the Erlang cookie lives in a private HOME.
    """

    def __init__(self, workdir):
        """Picks the ports and lays out the directories; :meth:`start` runs it."""
        self.dir = os.path.join(workdir, 'rabbitmq')
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.nodename = 'cairnfn%d@localhost' % self.port
        self.proc = None
        for sub in ('home', 'mnesia', 'log'):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        with open(os.path.join(self.dir, 'enabled_plugins'), 'w') as f:
            f.write('[].\n')
        open(os.path.join(self.dir, 'rabbitmq-env.conf'), 'w').close()
        with open(os.path.join(self.dir, 'rabbitmq.conf'), 'w') as f:
            f.write('listeners.tcp.default = 127.0.0.1:%d\nloopback_users.guest = true\n' % self.port)

    @property
    def url(self):
        """The oslo.messaging transport URL."""
        return 'rabbit://guest:guest@127.0.0.1:%d/' % self.port

    def env(self):
        """The environment of rabbitmq-server and epmd: every path and port private."""
        d = self.dir
        env = dict(os.environ)
        env.update({
            'HOME': os.path.join(d, 'home'),
            'RABBITMQ_CONF_ENV_FILE': os.path.join(d, 'rabbitmq-env.conf'),
            'RABBITMQ_CONFIG_FILE': os.path.join(d, 'rabbitmq.conf'),
            'RABBITMQ_ENABLED_PLUGINS_FILE': os.path.join(d, 'enabled_plugins'),
            'RABBITMQ_NODENAME': self.nodename,
            'RABBITMQ_NODE_IP_ADDRESS': '127.0.0.1',
            'RABBITMQ_NODE_PORT': str(self.port),
            'RABBITMQ_DIST_PORT': str(self.dist_port),
            'RABBITMQ_MNESIA_BASE': os.path.join(d, 'mnesia'),
            'RABBITMQ_LOG_BASE': os.path.join(d, 'log'),
            'RABBITMQ_LOGS': '-',
            'RABBITMQ_PID_FILE': os.path.join(d, 'rabbit.pid'),
            'RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS': '-kernel inet_dist_use_interface {127,0,0,1}',
            'ERL_EPMD_PORT': str(self.epmd_port),
            'ERL_EPMD_ADDRESS': '127.0.0.1',
        })
        return env

    def start(self, timeout=90):
        """Starts the broker and waits for 'Server startup complete' and its AMQP port."""
        if not os.path.exists(RABBITMQ_SERVER):
            raise RuntimeError('%s not found: apt-get install -y --no-install-recommends rabbitmq-server' % RABBITMQ_SERVER)
        log('rabbitmq-server: AMQP 127.0.0.1:%d, dist %d, epmd %d' % (self.port, self.dist_port, self.epmd_port))
        self.proc = Process('rabbitmq-server', [RABBITMQ_SERVER], os.path.join(self.dir, 'server.log'), env=self.env(), cwd=self.dir)

        def ready():
            """True once the broker logged its startup and accepts TCP."""
            self.proc.check_alive()
            if 'Server startup complete' not in tail(self.proc.log_path, 400):
                return False
            with socket.create_connection(('127.0.0.1', self.port), timeout=2):
                return True
        wait_for(ready, timeout, 'rabbitmq-server startup')

    def stop(self):
        """Stops the broker (SIGTERM to its group) and its private epmd."""
        if self.proc:
            self.proc.stop(signal.SIGTERM, timeout=30)
        epmd = shutil.which('epmd') or '/usr/bin/epmd'
        if os.path.exists(epmd):
            # epmd -daemon left its session; `epmd -kill` on our private port stops only ours.
            subprocess.run([epmd, '-kill'], env=self.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10, check=False)


class CairnClient:
    """The Cairn management API (``/v1/...``, bearer token), over any node's address."""

    def __init__(self, base_urls, token):
        """``base_urls``: e.g. ['http://127.0.0.1:7100', ...]; requests go to the first that answers."""
        self.base_urls = list(base_urls)
        self.token = token

    def call(self, method, path, body=None, headers=None):
        """One request; returns the decoded body. :raises HttpError: on >= 400."""
        hdrs = {'Authorization': 'Bearer %s' % self.token}
        hdrs.update(headers or {})
        last = None
        for base in self.base_urls:
            try:
                return http_json(method, base + path, body, hdrs)[2]
            except HttpError:
                raise
            except OSError as e:
                last = e
        raise last

    def volumes(self):
        """Every volume record, by name."""
        return {v['name']: v for v in self.call('GET', '/v1/volumes')['volumes']}

    def volume(self, name):
        """One volume record, or None when the catalog has no such volume (404)."""
        try:
            return self.call('GET', '/v1/volumes/%s' % urllib.parse.quote(name, safe=''))
        except HttpError as e:
            if e.status == 404:
                return None
            raise

    def snapshots(self, volume):
        """The snapshot records of ``volume``, by name."""
        snaps = self.call('GET', '/v1/volumes/%s/snapshots' % urllib.parse.quote(volume, safe=''))['snapshots']
        return {s['name']: s for s in snaps}


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
        """The NVMe subsystem NQN of ``volume``."""
        return 'nqn.2024-01.io.cairn:%s:%s' % (self.cluster_id, volume)

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
        return CinderClient(self.api_url)

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


class CinderClient:
    """The Cinder block storage API v3 under noauth (``X-Auth-Token: USER:PROJECT``)."""

    def __init__(self, base_url, project=PROJECT, user=USER):
        """``base_url``: cinder-api's http://host:port."""
        self.base = '%s/v3/%s' % (base_url, project)
        self.token = '%s:%s' % (user, project)

    def request(self, method, path, body=None, microversion=None):
        """One request under ``/v3/<project>``; returns the decoded body. :raises HttpError:"""
        headers = {'X-Auth-Token': self.token}
        if microversion:
            headers['OpenStack-API-Version'] = 'volume %s' % microversion
        return http_json(method, self.base + path, body, headers)[2]

    def get(self, path, microversion=None):
        """GET ``path``."""
        return self.request('GET', path, microversion=microversion)

    def action(self, volume_id, name, args, microversion=None):
        """POST /volumes/<id>/action {name: args}."""
        return self.request('POST', '/volumes/%s/action' % volume_id, {name: args}, microversion)

    def create_volume(self, size, **kw):
        """POST /volumes; returns the volume dict (status 'creating')."""
        body = {'size': size}
        body.update(kw)
        return self.request('POST', '/volumes', {'volume': body})['volume']

    def create_snapshot(self, volume_id, name):
        """POST /snapshots; returns the snapshot dict."""
        return self.request('POST', '/snapshots', {'snapshot': {'volume_id': volume_id, 'name': name}})['snapshot']

    def volume(self, volume_id):
        """GET /volumes/<id> (None once it is gone)."""
        try:
            return self.get('/volumes/%s' % volume_id)['volume']
        except HttpError as e:
            if e.status == 404:
                return None
            raise

    def snapshot(self, snapshot_id):
        """GET /snapshots/<id> (None once it is gone)."""
        try:
            return self.get('/snapshots/%s' % snapshot_id)['snapshot']
        except HttpError as e:
            if e.status == 404:
                return None
            raise

    def _wait(self, getter, kind, obj_id, status, timeout):
        """Polls ``getter(obj_id)`` until its status is ``status`` (None: gone).

        :raises AssertionError: when it reaches an error status or times out.
        """
        deadline = time.monotonic() + timeout
        last = None
        while True:
            cur = getter(obj_id)
            if cur is None:
                if status is None:
                    return None
                raise AssertionError('%s %s vanished while waiting for %s' % (kind, obj_id, status))
            last = cur['status']
            if status is not None and last == status:
                return cur
            if last.startswith('error') and status != last:
                raise AssertionError('%s %s went to %s (waiting for %s)' % (kind, obj_id, last, status or 'deletion'))
            if time.monotonic() > deadline:
                raise AssertionError('%s %s stayed %s for %d s (waiting for %s)' % (kind, obj_id, last, timeout, status or 'deletion'))
            time.sleep(0.5)

    def wait_volume(self, volume_id, status='available', timeout=120):
        """Waits for a volume's status (None: deleted); returns the volume."""
        return self._wait(self.volume, 'volume', volume_id, status, timeout)

    def wait_snapshot(self, snapshot_id, status='available', timeout=120):
        """Waits for a snapshot's status (None: deleted); returns the snapshot."""
        return self._wait(self.snapshot, 'snapshot', snapshot_id, status, timeout)


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


def start_parallel(*components):
    """Calls ``start()`` of every component at once (threads); re-raises the first failure
    after all have finished (those that started are still to be stopped by the caller)."""
    import threading
    errors = []

    def run(c):
        """Starts one component, keeping its exception."""
        try:
            c.start()
        except BaseException as e:  # noqa: BLE001 - re-raised below
            errors.append(e)
    threads = [threading.Thread(target=run, args=(c,)) for c in components]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


class FullStack:
    """RabbitMQ + a Cairn cluster + the three Cinder services, started and stopped together.

    ``start()`` brings up RabbitMQ and ``cairn up`` in parallel, then Cinder configured for
    the cluster (``backend_extra``: further ``[cairn]`` options). ``stop()`` stops whatever
    was started, Cinder first, and removes the temporary directory (unless
    CAIRN_KEEP_TEST_DIRS is set); it is safe to call after a failed ``start()``.
    """

    def __init__(self, backend_extra=None):
        """Creates the temporary directory; nothing runs yet."""
        self.dir = tempfile.mkdtemp(prefix='cairn-cinder-fn-')
        self.rabbit = RabbitMQ(self.dir)
        self.cairn = CairnCluster(self.dir)
        self.cinder = None
        self.backend_extra = dict(backend_extra or {})

    def start(self):
        """Starts everything; returns self."""
        t0 = time.monotonic()
        start_parallel(self.rabbit, self.cairn)
        self.cinder = CinderStack(self.dir, self.rabbit.url, backend_options(self.cairn, **self.backend_extra))
        self.cinder.start()
        log('full stack up in %.1f s (work dir %s)' % (time.monotonic() - t0, self.dir))
        return self

    def stop(self):
        """Stops Cinder, then Cairn and RabbitMQ; removes the work dir unless kept."""
        for name, stop in (('cinder', self.cinder and self.cinder.stop), ('cairn', self.cairn.stop), ('rabbitmq', self.rabbit.stop)):
            if stop:
                try:
                    stop()
                except Exception as e:  # noqa: BLE001 - keep stopping the others
                    log('stopping %s failed: %r' % (name, e))
        if keep_dirs():
            log('kept %s (CAIRN_KEEP_TEST_DIRS)' % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def nbd_write(uri, data, workdir):
    """Writes ``data`` at offset 0 of the NBD export ``uri`` (nbdcopy from a file, flushed)."""
    fd, path = tempfile.mkstemp(dir=workdir, suffix='.img')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        subprocess.run(['nbdcopy', '--flush', path, uri], check=True, timeout=120,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    finally:
        os.unlink(path)


def nbd_read(uri, length, workdir):
    """The first ``length`` bytes of the NBD export ``uri`` (nbdcopy of the whole export
    into a sparse file: holes are skipped, so a thin volume copies fast)."""
    fd, path = tempfile.mkstemp(dir=workdir, suffix='.img')
    os.close(fd)
    try:
        subprocess.run(['nbdcopy', uri, path], check=True, timeout=300,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        with open(path, 'rb') as f:
            return f.read(length)
    finally:
        os.unlink(path)


def nbd_size(uri):
    """The size in bytes of the NBD export ``uri`` (nbdinfo --size)."""
    r = subprocess.run(['nbdinfo', '--size', uri], check=True, timeout=60, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return int(r.stdout.decode().strip())
