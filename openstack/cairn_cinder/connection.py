"""Host access for the Cairn driver: volume allow-lists and NVMe/TCP connection properties.

A volume's ``allowHosts`` list is its NVMe/TCP allow-list, but Cairn reads an empty list as
"any host". The driver therefore never leaves a Cinder volume's list empty: a volume no host
is attached to holds the single placeholder ``NO_HOST_NQN`` (no host uses it), and
``update_hosts`` adds and removes host NQNs around it by compare-and-swap on the record's
ETag.

The connection properties are os-brick's new-style ``nvmeof`` ones. The subsystem NQN, the
namespace id and the namespace UUID are not computed here: they are the ``nvmf`` identity
every volume view of Cairn's API carries (``nqn``, ``nsid``, ``uuid``, ``nguid``; the API
takes them from the same code the gateways use, src/nvmf/ids.ts), so the properties always
name what the gateways report. The portals are the configured ANA paths (cairn_nvmf_portals):
the node API does not know the gateways.
"""

from oslo_log import log as logging

from cinder import exception
from cinder.i18n import _

from cairn_cinder import client as cairn_client

LOG = logging.getLogger(__name__)

#: Placeholder allow-list entry of a volume that no host may attach (see the module doc).
NO_HOST_NQN = 'nqn.2024-01.io.cairn:cinder:no-host'
#: Attempts at a compare-and-swap update of a volume's allowHosts (412 -> re-read).
HOSTS_UPDATE_ATTEMPTS = 10


def parse_portal(text):
    """``host:port`` or ``[v6addr]:port`` -> (address, port).

    :raises InvalidConfigurationValue: not of that form.
    """
    text = text.strip()
    host, sep, port = text.rpartition(':')
    if host.startswith('[') and host.endswith(']'):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise exception.InvalidConfigurationValue(option='cairn_nvmf_portals',
                                                  value=text)
    return host, int(port)


def nvmf_identity(record):
    """The NVMe/TCP identity of the volume ``record`` (a volume view of the API):
    ``{'nqn', 'nsid', 'uuid', 'nguid'}`` as the gateways report them.

    :raises VolumeBackendAPIException: the view has no complete ``nvmf`` identity (a
        Cairn API older than the driver, or a node that does not know the cluster id).
    """
    nvmf = record.get('nvmf') or {}
    if not (nvmf.get('nqn') and nvmf.get('nsid') and nvmf.get('uuid')):
        raise exception.VolumeBackendAPIException(data=_(
            'Cairn volume %(name)s has no NVMe/TCP identity in the API\'s volume '
            'view (nvmf: %(nvmf)r); the driver needs a Cairn API that reports '
            'nvmf.nqn, nvmf.nsid and nvmf.uuid') % {
            'name': record.get('name'), 'nvmf': record.get('nvmf')})
    return nvmf


def update_hosts(client, name, change, check=None):
    """Applies ``change`` (a function of the list of host NQNs) to volume ``name``'s
    allow-list by compare-and-swap: reads the record and its ETag, PATCHes with
    If-Match, and reads again on 412. An empty result is stored as [NO_HOST_NQN].
    ``check``, when given, is called with every record read before anything is
    changed (it may raise to leave the list alone).

    Returns (the new host list, the volume record as it stands afterwards).

    :raises CairnNotFound: no such volume.
    :raises VolumeBackendAPIException: the list changed HOSTS_UPDATE_ATTEMPTS times
        while we tried.
    """
    for _attempt in range(HOSTS_UPDATE_ATTEMPTS):
        record, etag = client.get_volume(name)
        if check is not None:
            check(record)
        stored = list(record.get('allowHosts') or [])
        hosts = [h for h in stored if h != NO_HOST_NQN]
        new = change(hosts)
        wanted = new or [NO_HOST_NQN]
        if wanted == stored:
            return new, record
        try:
            record, _etag = client.patch_volume(name, {'allowHosts': wanted},
                                                if_match=etag)
            return new, record
        except cairn_client.CairnStale:
            LOG.debug('allowHosts of %s changed meanwhile; re-reading', name)
    raise exception.VolumeBackendAPIException(data=_(
        'could not update the host list of Cairn volume %(name)s: it changed '
        '%(n)s times while we tried') % {'name': name, 'n': HOSTS_UPDATE_ATTEMPTS})


def add_host(host_nqn):
    """A ``change`` for update_hosts that appends ``host_nqn`` once."""
    return lambda hosts: hosts if host_nqn in hosts else hosts + [host_nqn]


def remove_host(host_nqn):
    """A ``change`` for update_hosts that removes ``host_nqn``."""
    return lambda hosts: [h for h in hosts if h != host_nqn]


def remove_all_hosts(hosts):
    """A ``change`` for update_hosts that removes every host."""
    return []


def connection_properties(record, portals, host_nqn):
    """os-brick ``nvmeof`` properties (new format, one portal per ANA path) for the
    volume ``record`` (a volume view carrying ``nvmf``), the configured ``portals``
    ((address, port) pairs) and the host ``host_nqn``.

    :raises VolumeBackendAPIException: the record has no nvmf identity.
    """
    nvmf = nvmf_identity(record)
    return {
        'driver_volume_type': 'nvmeof',
        'data': {
            'target_nqn': nvmf['nqn'],
            'vol_uuid': nvmf['uuid'],
            'ns_id': str(nvmf['nsid']),
            'portals': [(addr, port, 'tcp') for addr, port in portals],
            'host_nqn': host_nqn,
            'discard': True,
        },
    }
