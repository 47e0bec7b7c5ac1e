"""A small client of Cairn's management REST API (the routes the Cinder driver needs).

Every storage node serves the API (``GET /openapi.json`` describes it); reads are answered
by any node and changes are forwarded to the node that runs the catalog's changes. The
client therefore treats the configured addresses as equals: it starts each request at the
next address (round-robin) and fails over to the following ones when an address does not
answer or answers 503 (the catalog's mutator is unknown or moving). Requests carry
``Authorization: Bearer <cluster token>``.

Errors are Cinder exceptions, so that anything the driver does not map to a more specific
one still reaches Cinder as a backend error:

- ``CairnUnreachable``: no address answered (connection refused, timeout, TLS failure).
- ``CairnAPIError`` and its subclasses ``CairnNotFound`` (404), ``CairnConflict`` (409)
  and ``CairnStale`` (412): the API answered with an error; ``status`` and ``error`` (the
  API's ``{"error": ...}`` text) tell which.
- ``CairnJobFailed``, ``CairnJobTimeout``: a background job (delete, flatten, rollback)
  failed or did not finish in time.
"""

import threading
import time
from urllib import parse

from oslo_log import log as logging
import requests

from cinder import exception
from cinder.i18n import _

LOG = logging.getLogger(__name__)

# 503 means "retry": the catalog's mutator is unknown or changing. Rounds over every address
# before giving up, and the pause after each round (seconds).
ROUNDS_ON_503 = 4
PAUSE_ON_503 = (0.5, 1.0, 2.0)


class CairnUnreachable(exception.VolumeBackendAPIException):
    """No Cairn API address answered a request."""

    message = _("Cairn API unreachable: %(method)s %(path)s failed on every "
                "address (%(reasons)s)")


class CairnAPIError(exception.VolumeBackendAPIException):
    """The Cairn API answered with an error status (``status``, ``error``)."""

    message = _("Cairn API %(method)s %(path)s answered %(status)s: %(error)s")

    def __init__(self, method, path, status, error):
        """Keeps the HTTP status and the API's error text as attributes."""
        super().__init__(method=method, path=path, status=status, error=error)
        self.status = status
        self.error = error


class CairnNotFound(CairnAPIError):
    """404: no such volume, snapshot or job."""


class CairnConflict(CairnAPIError):
    """409: the name exists with other properties, the volume has snapshots, the
    snapshot has clones, or the volume is being deleted."""


class CairnStale(CairnAPIError):
    """412: the record changed since it was read (If-Match did not match)."""


class CairnJobFailed(exception.VolumeBackendAPIException):
    """A Cairn job ended in state 'failed'."""

    message = _("Cairn %(kind)s job %(id)s on %(target)s failed: %(error)s")


class CairnJobTimeout(exception.VolumeBackendAPIException):
    """A Cairn job did not finish within the timeout."""

    message = _("Cairn %(kind)s job %(id)s on %(target)s did not finish in "
                "%(timeout)s s (last progress %(done)s/%(total)s)")


_ERRORS_BY_STATUS = {404: CairnNotFound, 409: CairnConflict, 412: CairnStale}


class Reply(object):
    """One successful API answer: HTTP ``status``, decoded JSON ``body`` (None for an
    empty one) and ``etag`` (the record version as a string, quotes removed, or None)."""

    def __init__(self, status, body, etag):
        """Stores the three fields."""
        self.status = status
        self.body = body
        self.etag = etag


def _q(name):
    """Quotes one path segment (a volume, snapshot or job name)."""
    return parse.quote(str(name), safe='')


class CairnClient(object):
    """Client of one Cairn cluster's management API over several node addresses.

    :param addresses: base URLs (``http://host:port``), tried round-robin with fail-over.
    :param token: the cluster token.
    :param verify: ``requests``' ``verify`` (True, False or a CA bundle path).
    :param timeout: seconds per request and address.
    """

    def __init__(self, addresses, token, verify=True, timeout=30):
        """Checks the addresses and opens one HTTP session (kept-alive connections)."""
        if not addresses:
            raise exception.InvalidConfigurationValue(
                option='cairn_api_addresses', value=addresses)
        self.addresses = [a.rstrip('/') for a in addresses]
        for a in self.addresses:
            if not (a.startswith('http://') or a.startswith('https://')):
                raise exception.InvalidConfigurationValue(
                    option='cairn_api_addresses', value=a)
        self.token = token
        self.verify = verify
        self.timeout = timeout
        self.session = requests.Session()
        self._lock = threading.Lock()
        self._next = 0

    def _start_index(self):
        """The address to start the next request at (advances the round-robin)."""
        with self._lock:
            i = self._next
            self._next = (self._next + 1) % len(self.addresses)
            return i

    def request(self, method, path, body=None, if_match=None):
        """Sends one request; returns a ``Reply`` for a 2xx answer.

        Tries every address once per round, starting at the round-robin position; an
        address that does not answer, or answers 503, passes the request to the next.
        After a round of 503s it pauses and tries again (ROUNDS_ON_503 rounds).

        :raises CairnUnreachable: no address answered.
        :raises CairnAPIError: (or a subclass) the API answered 4xx/5xx other than 503,
            or 503 on every round.
        """
        headers = {'Authorization': 'Bearer %s' % self.token,
                   'Accept': 'application/json'}
        if if_match is not None:
            headers['If-Match'] = '"%s"' % if_match
        start = self._start_index()
        reasons = []
        last_503 = None
        for rnd in range(ROUNDS_ON_503):
            answered_503 = False
            for k in range(len(self.addresses)):
                base = self.addresses[(start + k) % len(self.addresses)]
                try:
                    r = self.session.request(
                        method, base + path, json=body, headers=headers,
                        timeout=self.timeout, verify=self.verify)
                except requests.RequestException as e:
                    LOG.warning('Cairn API %(base)s: %(method)s %(path)s '
                                'failed: %(err)s; trying the next address',
                                {'base': base, 'method': method, 'path': path,
                                 'err': e})
                    reasons.append('%s: %s' % (base, e))
                    continue
                if r.status_code == 503:
                    answered_503 = True
                    last_503 = (base, self._error_text(r))
                    LOG.info('Cairn API %(base)s: %(method)s %(path)s answered '
                             '503 (%(err)s); trying the next address',
                             {'base': base, 'method': method, 'path': path,
                              'err': last_503[1]})
                    continue
                return self._reply(method, path, r)
            if not answered_503:
                # Nobody answered at all: more rounds would only wait longer.
                raise CairnUnreachable(method=method, path=path,
                                       reasons='; '.join(reasons))
            if rnd < ROUNDS_ON_503 - 1:
                time.sleep(PAUSE_ON_503[min(rnd, len(PAUSE_ON_503) - 1)])
        raise CairnAPIError(method, path, 503, last_503[1])

    @staticmethod
    def _error_text(r):
        """The ``error`` of an error answer's JSON body, else its text."""
        try:
            return r.json().get('error') or r.text
        except ValueError:
            return r.text

    def _reply(self, method, path, r):
        """Turns an answer into a ``Reply`` or raises the matching CairnAPIError."""
        if r.status_code >= 400:
            cls = _ERRORS_BY_STATUS.get(r.status_code, CairnAPIError)
            raise cls(method, path, r.status_code, self._error_text(r))
        body = None
        if r.content:
            try:
                body = r.json()
            except ValueError:
                body = r.text
        etag = r.headers.get('ETag')
        if etag:
            etag = etag.strip()
            if etag.startswith('W/'):
                etag = etag[2:]
            etag = etag.strip('"')
        return Reply(r.status_code, body, etag)

    # Cluster ------------------------------------------------------------------------

    def cluster_map(self):
        """``GET /v1/map``: the node's topology map (epoch, clusterId, nodes ...)."""
        return self.request('GET', '/v1/map').body

    def status(self):
        """``GET /v1/status``: health, clusterId, pools (id, name, size, min_size)."""
        return self.request('GET', '/v1/status').body

    def nodes(self):
        """``GET /v1/nodes``: the node table (up, in, capacityBytes, usedBytes ...)."""
        return self.request('GET', '/v1/nodes').body['nodes']

    # Volumes ------------------------------------------------------------------------

    def list_volumes(self):
        """``GET /v1/volumes``: every volume view (records with their ``nvmf``)."""
        return self.request('GET', '/v1/volumes').body['volumes']

    def get_volume(self, name):
        """``GET /v1/volumes/:name``: (volume view, etag); the view carries the
        volume's NVMe/TCP identity ``nvmf`` (nqn, nsid, uuid, nguid).
        :raises CairnNotFound:"""
        r = self.request('GET', '/v1/volumes/%s' % _q(name))
        return r.body, r.etag

    def create_volume(self, name, size, pool=None, thick=False,
                      allow_hosts=None):
        """``POST /v1/volumes``: (record, created). Idempotent: the same name and
        properties answer 200 (created False); the name with other properties, 409."""
        body = {'name': name, 'size': int(size)}
        if pool is not None:
            body['pool'] = int(pool)
        if thick:
            body['thick'] = True
        if allow_hosts is not None:
            body['allowHosts'] = list(allow_hosts)
        r = self.request('POST', '/v1/volumes', body)
        return r.body, r.status == 201

    def patch_volume(self, name, changes, if_match=None):
        """``PATCH /v1/volumes/:name`` with ``changes`` (size, allowHosts, ...);
        returns (record, etag). :raises CairnStale: If-Match did not match."""
        r = self.request('PATCH', '/v1/volumes/%s' % _q(name), changes,
                         if_match=if_match)
        return r.body, r.etag

    def delete_volume(self, name):
        """``DELETE /v1/volumes/:name``: the delete job (202)."""
        return self.request('DELETE', '/v1/volumes/%s' % _q(name)).body

    def flatten(self, name):
        """``POST /v1/volumes/:name/flatten``: the flatten job (202)."""
        return self.request('POST', '/v1/volumes/%s/flatten' % _q(name)).body

    def rollback(self, name, snapshot):
        """``POST /v1/volumes/:name/rollback``: the rollback job (202)."""
        return self.request('POST', '/v1/volumes/%s/rollback' % _q(name),
                            {'snapshot': snapshot}).body

    # Snapshots and clones -----------------------------------------------------------

    def list_snapshots(self, volume):
        """``GET /v1/volumes/:name/snapshots``: the volume's snapshot records."""
        return self.request(
            'GET', '/v1/volumes/%s/snapshots' % _q(volume)).body['snapshots']

    def get_snapshot(self, volume, snapshot):
        """``GET /v1/volumes/:name/snapshots/:snap``. :raises CairnNotFound:"""
        return self.request('GET', '/v1/volumes/%s/snapshots/%s'
                            % (_q(volume), _q(snapshot))).body

    def create_snapshot(self, volume, snapshot):
        """``POST /v1/volumes/:name/snapshots``: (record, created); idempotent."""
        r = self.request('POST', '/v1/volumes/%s/snapshots' % _q(volume),
                         {'name': snapshot})
        return r.body, r.status == 201

    def delete_snapshot(self, volume, snapshot):
        """``DELETE /v1/volumes/:name/snapshots/:snap`` (204).
        :raises CairnConflict: the snapshot has clones."""
        self.request('DELETE', '/v1/volumes/%s/snapshots/%s'
                     % (_q(volume), _q(snapshot)))

    def clone(self, volume, snapshot, name):
        """``POST /v1/volumes/:name/snapshots/:snap/clone``: (record, created)."""
        r = self.request('POST', '/v1/volumes/%s/snapshots/%s/clone'
                         % (_q(volume), _q(snapshot)), {'name': name})
        return r.body, r.status == 201

    # Jobs ---------------------------------------------------------------------------

    def get_job(self, job_id):
        """``GET /v1/jobs/:id``. :raises CairnNotFound: (jobs live in the authority
        node's memory and are gone after it restarts)."""
        return self.request('GET', '/v1/jobs/%s' % _q(job_id)).body

    def wait_job(self, job, timeout, interval=0.2, max_interval=2.0):
        """Polls ``job`` (as returned by the route that started it) until it is no
        longer running; returns its final record.

        :raises CairnJobFailed: it ended 'failed'.
        :raises CairnJobTimeout: still running after ``timeout`` seconds.
        :raises CairnNotFound: the job is no longer known.
        """
        deadline = time.monotonic() + timeout
        while True:
            if job.get('state') == 'succeeded':
                return job
            if job.get('state') == 'failed':
                raise CairnJobFailed(kind=job.get('kind'), id=job.get('id'),
                                     target=job.get('target'),
                                     error=job.get('error'))
            if time.monotonic() >= deadline:
                progress = job.get('progress') or {}
                raise CairnJobTimeout(kind=job.get('kind'), id=job.get('id'),
                                      target=job.get('target'),
                                      timeout=timeout,
                                      done=progress.get('done'),
                                      total=progress.get('total'))
            time.sleep(interval)
            interval = min(interval * 2, max_interval)
            job = self.get_job(job['id'])
