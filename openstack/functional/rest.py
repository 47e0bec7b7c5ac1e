"""Small REST clients (urllib, standard library only) for the two APIs the tests drive.

- :func:`http_json`: one HTTP request with a JSON body; a status of 400 or more raises
  :class:`HttpError`.
- :class:`CairnClient`: Cairn's management API (``/v1/...``, bearer token) over any node.
- :class:`CinderClient`: Cinder's block storage API v3 under noauth, with waits for a
  volume's or snapshot's status.
"""

import json
import time
import urllib.error
import urllib.parse
import urllib.request

#: Cinder's project in the noauth URLs and token (hex: Cinder's default project_id_regex
#: is [0-9a-f-]+, and a path with another project id finds no route).
PROJECT = 'ca1f' * 8
#: The user in the noauth token (noauth makes every request an admin one).
USER = 'admin'


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


class CinderClient:
    """The Cinder block storage API v3 under noauth (``X-Auth-Token: USER:PROJECT``)."""

    def __init__(self, base_url, project=PROJECT, user=USER, server_log=None):
        """``base_url``: cinder-api's http://host:port. ``server_log``: called after an answer
        of 500 or more, returns the services' log lines that explain it (added to the error)."""
        self.base = '%s/v3/%s' % (base_url, project)
        self.token = '%s:%s' % (user, project)
        self.server_log = server_log

    def request(self, method, path, body=None, microversion=None):
        """One request under ``/v3/<project>``; returns the decoded body. :raises HttpError:"""
        headers = {'X-Auth-Token': self.token}
        if microversion:
            headers['OpenStack-API-Version'] = 'volume %s' % microversion
        try:
            return http_json(method, self.base + path, body, headers)[2]
        except HttpError as e:
            if e.status < 500 or not self.server_log:
                raise
            raise HttpError(method, self.base + path, e.status, '%s\nservice logs:\n%s' % (e.body, self.server_log())) from None

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
