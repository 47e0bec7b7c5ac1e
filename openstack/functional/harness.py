"""Starts and stops the real components of the functional tests: the face the tests import.

The pieces live in modules of their own; this one re-exports them, so the tests keep
``from functional import harness`` and ``harness.<name>``:

- :mod:`functional.process`: :class:`Process` (a child in its own session, stopped by its
  process group), the repository's paths and the small helpers (:func:`log`,
  :func:`wait_for`, :func:`free_port`, :func:`tail`, :func:`keep_dirs`).
- :mod:`functional.rabbitmq`: :class:`RabbitMQ`, Debian's rabbitmq-server on private ports,
  its state (node name, mnesia, logs, config, Erlang cookie in a private HOME) in a
  temporary directory.
- :mod:`functional.cairn_cluster`: :class:`CairnCluster`, ``cairn up`` on a temporary data
  directory with free ports; API addresses and token from ``cluster.json``, NVMe/TCP paths
  and NBD port from its output, a volume's NQN from its view's ``nvmf.nqn``.
- :mod:`functional.cinder_stack`: :class:`CinderStack`, cinder-api, cinder-scheduler and
  cinder-volume as three processes (``cinder_service.py``) sharing one cinder.conf (noauth,
  sqlite, the RabbitMQ above, one backend ``[cairn]`` with the Cairn driver), and
  :func:`backend_options`.
- :mod:`functional.full_stack`: :class:`FullStack`, the whole set started and stopped together.
- :mod:`functional.rest`: :class:`CinderClient` and :class:`CairnClient`, small REST clients
  (urllib) for the two APIs.
- :mod:`functional.nbd`: :func:`nbd_write`, :func:`nbd_read` and :func:`nbd_size` reach volume
  data with libnbd's real clients (nbdcopy, nbdinfo) through the NBD export ``cairn up``
  serves for every volume.

Only the standard library is used here; Cinder itself is Debian's python3-cinder.
"""

from .cairn_cluster import CAIRN_BIN, CairnCluster
from .cinder_stack import API_PASTE, BACKEND, CINDER_HOST, CINDER_SERVICE, PYTHON, CinderStack, backend_options
from .full_stack import FullStack, start_parallel
from .nbd import nbd_read, nbd_size, nbd_write
from .process import FUNCTIONAL_DIR, OPENSTACK_DIR, REPO_ROOT, Process, free_port, keep_dirs, log, tail, wait_for
from .rabbitmq import RABBITMQ_SERVER, RabbitMQ
from .rest import PROJECT, USER, CairnClient, CinderClient, HttpError, http_json

__all__ = [
    'API_PASTE', 'BACKEND', 'CAIRN_BIN', 'CINDER_HOST', 'CINDER_SERVICE', 'FUNCTIONAL_DIR', 'OPENSTACK_DIR',
    'PROJECT', 'PYTHON', 'RABBITMQ_SERVER', 'REPO_ROOT', 'USER',
    'CairnClient', 'CairnCluster', 'CinderClient', 'CinderStack', 'FullStack', 'HttpError', 'Process', 'RabbitMQ',
    'backend_options', 'free_port', 'http_json', 'keep_dirs', 'log', 'nbd_read', 'nbd_size', 'nbd_write',
    'start_parallel', 'tail', 'wait_for',
]
