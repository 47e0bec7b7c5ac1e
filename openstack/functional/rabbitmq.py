"""The RabbitMQ broker of the Cinder services: Debian's rabbitmq-server on private ports.

:class:`RabbitMQ` runs it with AMQP, Erlang distribution and epmd on free ports, its node
name, mnesia, logs, config and Erlang cookie (a private HOME) in a temporary directory, so
neither a system broker or epmd nor another test's node is touched.
"""

import os
import shutil
import signal
import socket
import subprocess

from .process import Process, free_port, log, tail, wait_for

RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server'


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
