"""The whole set of the Cinder stack test: RabbitMQ, a Cairn cluster and the Cinder services.

:class:`FullStack` starts RabbitMQ and ``cairn up`` in parallel (:func:`start_parallel`),
then Cinder configured for the cluster, and stops them all again, Cinder first.
"""

import shutil
import tempfile
import time

from .cairn_cluster import CairnCluster
from .cinder_stack import CinderStack, backend_options
from .process import keep_dirs, log
from .rabbitmq import RabbitMQ


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
