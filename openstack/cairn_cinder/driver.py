"""Cinder volume driver for Cairn, a distributed NVMe block store.

Cinder loads it with ``volume_driver = cairn_cinder.driver.CairnDriver``. It is a client of
Cairn's management REST API (``cairn_cinder.client``); hosts attach volumes over NVMe/TCP
through the Cairn gateway(s) with os-brick's ``nvmeof`` connector.

Names: a Cinder volume is the Cairn volume ``volume.name`` (``volume-<uuid>``), a Cinder
snapshot is the Cairn snapshot ``snapshot.name`` (``snapshot-<uuid>``) of its volume, and
each volume is the NVMe subsystem ``nqn.2024-01.io.cairn:<cluster id>:<volume name>`` with
one namespace (nsid 1) whose UUID the gateway derives from that NQN (src/nvmf/ids.ts).

Host access: a volume's ``allowHosts`` list is its NVMe/TCP allow-list, but Cairn reads an
empty list as "any host". The driver therefore never leaves a Cinder volume empty: a volume
no host is attached to holds the single placeholder ``NO_HOST_NQN`` (no host uses it), and
initialize_connection / terminate_connection add and remove host NQNs around it.
"""

import hashlib
import time
import uuid

from oslo_log import log as logging
from oslo_utils import units

from cinder.common import constants
from cinder import coordination
from cinder import exception
from cinder.i18n import _
from cinder import interface
from cinder.volume import driver
from cinder.volume import volume_utils

from cairn_cinder import client as cairn_client
from cairn_cinder import options

LOG = logging.getLogger(__name__)

#: Prefix of the NQN Cairn gives a volume's subsystem (src/nvmf/ids.ts volumeNqn).
NQN_PREFIX = 'nqn.2024-01.io.cairn'
#: The namespace id of a volume inside its subsystem.
NAMESPACE_ID = 1
#: Placeholder allow-list entry of a volume that no host may attach (see the module doc).
NO_HOST_NQN = 'nqn.2024-01.io.cairn:cinder:no-host'
#: Attempts at a compare-and-swap update of a volume's allowHosts (412 -> re-read).
HOSTS_UPDATE_ATTEMPTS = 10

SPEC_POOL = 'cairn:pool'
SPEC_REPLICAS = 'cairn:replicas'
SPEC_PROVISIONING = 'provisioning:type'


class CairnVolumeExists(exception.VolumeBackendAPIException):
    """The Cairn volume name is taken by a volume with other properties (API 409).

    A subclass of VolumeBackendAPIException: Cinder has no exception for "the backend
    already holds this name", and callers that handle backend errors keep working; the
    class tells the cause. (Cairn's create is idempotent: the same name with the same
    size, pool and provisioning is not an error.)
    """

    message = _("Cairn volume %(name)s already exists with other properties: "
                "%(error)s")


def volume_nqn(cluster_id, volume_name):
    """The NQN of volume ``volume_name``'s subsystem (as src/nvmf/ids.ts volumeNqn)."""
    return '%s:%s:%s' % (NQN_PREFIX, cluster_id, volume_name)


def namespace_uuid(nqn, nsid=NAMESPACE_ID):
    """The namespace UUID every Cairn gateway reports for namespace ``nsid`` of
    subsystem ``nqn``: the first 16 bytes of sha256("uuid\\0<nqn>\\0<nsid>") with the
    RFC 9562 version 8 and variant bits (src/nvmf/ids.ts deriveUuid)."""
    digest = bytearray(hashlib.sha256(
        ('uuid\0%s\0%d' % (nqn, nsid)).encode('utf-8')).digest()[:16])
    digest[6] = (digest[6] & 0x0f) | 0x80
    digest[8] = (digest[8] & 0x3f) | 0x80
    return str(uuid.UUID(bytes=bytes(digest)))


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


@interface.volumedriver
class CairnDriver(driver.VolumeDriver):
    """Cairn volumes for Cinder, attached over NVMe/TCP (os-brick ``nvmeof``).

    .. code-block:: none

      Version history:
          1.0.0 - volumes, snapshots, clones, extend, revert, NVMe/TCP attach
    """

    VERSION = '1.0.0'
    CI_WIKI_NAME = None
    VENDOR = 'Cairn'

    def __init__(self, *args, **kwargs):
        """Grafts the cairn_* options into the backend's section."""
        super().__init__(*args, **kwargs)
        if self.configuration:
            self.configuration.append_config_values(options.CAIRN_OPTS)
        self.client = None
        self.cluster_id = None
        self.pools = {}
        self.portals = []

    @staticmethod
    def get_driver_options():
        """The cinder.conf options this driver reads (cairn_* and the shared ones)."""
        return options.CAIRN_OPTS + driver.BaseVD._get_oslo_driver_opts(
            'volume_backend_name', 'reserved_percentage',
            'max_over_subscription_ratio')

    # Setup ----------------------------------------------------------------------------

    def do_setup(self, context):
        """Builds the API client and learns the cluster id and pools (GET /v1/status).

        :raises VolumeBackendAPIException: the API is unreachable or refuses the token.
        :raises InvalidConfigurationValue: a malformed address or portal.
        """
        conf = self.configuration
        verify = conf.cairn_verify_tls
        if verify and conf.cairn_ca_file:
            verify = conf.cairn_ca_file
        self.client = cairn_client.CairnClient(
            conf.cairn_api_addresses, conf.cairn_api_token, verify=verify,
            timeout=conf.cairn_api_timeout)
        self.portals = [parse_portal(p) for p in conf.cairn_nvmf_portals]
        self._refresh_cluster()

    def _refresh_cluster(self):
        """Reads the cluster id and the pools' replica counts from GET /v1/status."""
        status = self.client.status()
        self.cluster_id = status['clusterId']
        self.pools = {p['id']: p for p in status.get('pools', [])}
        LOG.info('Cairn cluster %(id)s, pools %(pools)s',
                 {'id': self.cluster_id,
                  'pools': ', '.join('%s %s (%s replicas)' % (
                      p['id'], p['name'], p['size'])
                      for p in self.pools.values())})

    def check_for_setup_error(self):
        """Checks the configuration against the cluster: token set, NVMe/TCP portals
        listed, the pool exists and keeps cairn_replicas copies (when set), and the
        volumes API answers.

        :raises InvalidConfigurationValue: a setting does not fit the cluster.
        :raises VolumeBackendAPIException: the API does not answer or refuses us.
        """
        conf = self.configuration
        if not conf.cairn_api_token:
            raise exception.InvalidConfigurationValue(option='cairn_api_token',
                                                      value='(empty)')
        if not self.portals:
            raise exception.InvalidConfigurationValue(
                option='cairn_nvmf_portals', value='(empty)')
        pool = self.pools.get(conf.cairn_pool)
        if pool is None:
            raise exception.InvalidConfigurationValue(
                option='cairn_pool', value=conf.cairn_pool)
        if conf.cairn_replicas and conf.cairn_replicas != pool['size']:
            LOG.error('cairn_replicas is %(want)s but Cairn pool %(id)s keeps '
                      '%(size)s replicas (Cairn sets replicas per pool)',
                      {'want': conf.cairn_replicas, 'id': pool['id'],
                       'size': pool['size']})
            raise exception.InvalidConfigurationValue(
                option='cairn_replicas', value=conf.cairn_replicas)
        self.client.list_volumes()

    # Volume types ---------------------------------------------------------------------

    @staticmethod
    def _extra_specs(volume):
        """The extra specs of ``volume``'s type ({} without a type)."""
        if not volume.volume_type_id:
            return {}
        vtype = volume.volume_type
        return dict(vtype.extra_specs or {}) if vtype else {}

    def _pool(self, pool_id):
        """Pool ``pool_id`` of the cluster (re-reads the pools once when unknown).

        :raises InvalidVolumeType: the cluster has no such pool.
        """
        if pool_id not in self.pools:
            self._refresh_cluster()
        if pool_id not in self.pools:
            raise exception.InvalidVolumeType(reason=_(
                'Cairn has no pool %(id)s (pools: %(pools)s)') % {
                'id': pool_id, 'pools': sorted(self.pools)})
        return self.pools[pool_id]

    def _parse_specs(self, volume):
        """The Cairn-relevant extra specs of ``volume``'s type, checked for form:
        {'pool': int or None, 'replicas': int or None, 'thick': bool or None}.

        :raises InvalidVolumeType: a malformed value.
        """
        specs = self._extra_specs(volume)

        def integer(key, minimum):
            """specs[key] as an int >= minimum, None when absent."""
            if key not in specs:
                return None
            try:
                value = int(str(specs[key]).strip())
            except ValueError:
                raise exception.InvalidVolumeType(reason=_(
                    '%(key)s must be an integer, not %(value)r') % {
                    'key': key, 'value': specs[key]})
            if value < minimum:
                raise exception.InvalidVolumeType(reason=_(
                    '%(key)s must be at least %(min)s, not %(value)r') % {
                    'key': key, 'min': minimum, 'value': specs[key]})
            return value

        thick = None
        if SPEC_PROVISIONING in specs:
            prov = str(specs[SPEC_PROVISIONING]).strip().lower()
            if prov not in ('thin', 'thick'):
                raise exception.InvalidVolumeType(reason=_(
                    'provisioning:type must be thin or thick, not %r') % prov)
            thick = prov == 'thick'
        return {'pool': integer(SPEC_POOL, 0),
                'replicas': integer(SPEC_REPLICAS, 1),
                'thick': thick}

    def _check_replicas(self, want, pool):
        """Refuses a cairn:replicas the pool does not keep.

        :raises InvalidVolumeType: Cairn keeps replicas per pool, not per volume.
        """
        if want is not None and want != pool['size']:
            raise exception.InvalidVolumeType(reason=_(
                'cairn:replicas=%(want)s cannot be honoured: Cairn keeps '
                'replicas per pool, not per volume, and pool %(id)s (%(name)s) '
                'keeps %(size)s; set cairn:pool to a pool with %(want)s '
                'replicas') % {'want': want, 'id': pool['id'],
                               'name': pool['name'], 'size': pool['size']})

    def _volume_spec(self, volume):
        """Where and how a new ``volume`` is made: (pool id, thick).

        Honours ``cairn:pool`` (else cairn_pool), ``cairn:replicas`` and
        ``provisioning:type`` (thin, the default, or thick).

        :raises InvalidVolumeType: a malformed spec, an unknown pool, or a replica count
            the pool does not keep.
        """
        specs = self._parse_specs(volume)
        pool_id = specs['pool']
        if pool_id is None:
            pool_id = self.configuration.cairn_pool
        self._check_replicas(specs['replicas'], self._pool(pool_id))
        return pool_id, bool(specs['thick'])

    def _check_clone_spec(self, volume, parent):
        """A clone lives in its parent's pool with its provisioning: refuses a type that
        names another pool, another replica count or other provisioning.

        :raises InvalidVolumeType: the type asks for what the clone cannot have.
        """
        specs = self._parse_specs(volume)
        if specs['pool'] is not None and specs['pool'] != parent['pool']:
            raise exception.InvalidVolumeType(reason=_(
                'a Cairn clone stays in its source\'s pool %(src)s; the volume '
                'type asks for pool %(want)s') % {'src': parent['pool'],
                                                  'want': specs['pool']})
        self._check_replicas(specs['replicas'], self._pool(parent['pool']))
        if specs['thick'] is not None and specs['thick'] == parent['thin']:
            raise exception.InvalidVolumeType(reason=_(
                'a Cairn clone is %(src)s like its source; the volume type asks '
                'for %(want)s') % {'src': 'thin' if parent['thin'] else 'thick',
                                   'want': 'thick' if specs['thick'] else 'thin'})

    def _init_vendor_properties(self):
        """The ``cairn:`` extra specs, for Cinder's capabilities listing."""
        properties = {}
        self._set_property(
            properties, SPEC_POOL, 'Cairn pool',
            _('Id of the Cairn pool the volume goes to (default: cairn_pool).'),
            'integer', minimum=0)
        self._set_property(
            properties, SPEC_REPLICAS, 'Replica count',
            _('Copies the volume must have. Cairn keeps replicas per pool: a '
              'volume type whose pool keeps another count is refused.'),
            'integer', minimum=1)
        return properties, 'cairn'

    # Volumes --------------------------------------------------------------------------

    @staticmethod
    def _bytes(gib):
        """Cinder's GiB as bytes."""
        return int(gib) * units.Gi

    def create_volume(self, volume):
        """Creates the Cairn volume ``volume.name`` (closed to every host).

        :raises CairnVolumeExists: the name exists with other properties.
        :raises InvalidVolumeType: the type's extra specs cannot be honoured.
        """
        pool_id, thick = self._volume_spec(volume)
        try:
            record, created = self.client.create_volume(
                volume.name, self._bytes(volume.size), pool=pool_id,
                thick=thick, allow_hosts=[NO_HOST_NQN])
        except cairn_client.CairnConflict as e:
            raise CairnVolumeExists(name=volume.name, error=e.error)
        if not created:
            LOG.info('Cairn volume %s already existed with the same properties '
                     '(a retried create); using it', volume.name)
        LOG.info('Created Cairn volume %(name)s (id %(id)s, %(size)s bytes, '
                 'pool %(pool)s, %(prov)s)',
                 {'name': volume.name, 'id': record['id'],
                  'size': record['sizeBytes'], 'pool': record['pool'],
                  'prov': 'thin' if record['thin'] else 'thick'})

    def delete_volume(self, volume):
        """Deletes the Cairn volume (a job trims every copy) and waits for it.

        A volume that is already gone is not an error (Cinder's convention).

        :raises VolumeIsBusy: the volume has snapshots.
        """
        self._delete_cairn_volume(volume.name)

    def _delete_cairn_volume(self, name):
        """Deletes Cairn volume ``name`` and waits until its record is gone."""
        try:
            job = self.client.delete_volume(name)
        except cairn_client.CairnNotFound:
            LOG.info('Cairn volume %s does not exist; nothing to delete', name)
            return
        except cairn_client.CairnConflict as e:
            LOG.info('Cairn refuses to delete %(name)s: %(err)s',
                     {'name': name, 'err': e.error})
            raise exception.VolumeIsBusy(volume_name=name)
        try:
            self.client.wait_job(job, self.configuration.cairn_job_timeout)
        except cairn_client.CairnNotFound:
            # The authority restarted (jobs live in its memory) and resumed the delete
            # under another job: wait for the record to go instead.
            self._wait_volume_gone(name)
        LOG.info('Deleted Cairn volume %s', name)

    def _wait_volume_gone(self, name):
        """Waits (cairn_job_timeout) until GET /v1/volumes/:name answers 404."""
        timeout = self.configuration.cairn_job_timeout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.client.get_volume(name)
            except cairn_client.CairnNotFound:
                return
            time.sleep(1)
        raise exception.VolumeBackendAPIException(data=_(
            'Cairn volume %(name)s still exists %(t)s s after its delete job '
            'was lost') % {'name': name, 't': timeout})

    def extend_volume(self, volume, new_size):
        """Grows the Cairn volume to ``new_size`` GiB (online: attached hosts get a
        namespace-changed notice from the gateway)."""
        try:
            self.client.patch_volume(volume.name,
                                     {'size': self._bytes(new_size)})
        except cairn_client.CairnNotFound:
            raise exception.VolumeNotFound(volume_id=volume.id)
        LOG.info('Extended Cairn volume %(name)s to %(size)s GiB',
                 {'name': volume.name, 'size': new_size})

    # Snapshots ------------------------------------------------------------------------

    @coordination.synchronized('cairn-snapshots-{volume_name}')
    def _take_snapshot(self, volume_name, snapshot_name):
        """Takes snapshot ``snapshot_name`` of ``volume_name`` (serialised per volume)."""
        return self.client.create_snapshot(volume_name, snapshot_name)

    @coordination.synchronized('cairn-snapshots-{volume_name}')
    def _drop_snapshot(self, volume_name, snapshot_name):
        """Deletes snapshot ``snapshot_name`` of ``volume_name`` (serialised per
        volume); an absent snapshot or volume is not an error.

        :raises CairnConflict: the snapshot has clones.
        """
        try:
            self.client.delete_snapshot(volume_name, snapshot_name)
        except cairn_client.CairnNotFound:
            LOG.info('Cairn snapshot %(vol)s@%(snap)s does not exist; nothing '
                     'to delete', {'vol': volume_name, 'snap': snapshot_name})

    def create_snapshot(self, snapshot):
        """Takes the Cairn snapshot ``snapshot.name`` of ``snapshot.volume_name``
        (instant and crash-consistent; no data is copied).

        :raises VolumeNotFound: the source volume does not exist in Cairn.
        """
        try:
            self._take_snapshot(snapshot.volume_name, snapshot.name)
        except cairn_client.CairnNotFound:
            raise exception.VolumeNotFound(volume_id=snapshot.volume_id)
        LOG.info('Created Cairn snapshot %(vol)s@%(snap)s',
                 {'vol': snapshot.volume_name, 'snap': snapshot.name})

    def delete_snapshot(self, snapshot):
        """Deletes the Cairn snapshot; an absent one is not an error.

        :raises SnapshotIsBusy: volumes created from it are still copy-on-write clones
            of it (see cairn_flatten_volume_from_snapshot).
        """
        try:
            self._drop_snapshot(snapshot.volume_name, snapshot.name)
        except cairn_client.CairnConflict as e:
            LOG.info('Cairn refuses to delete snapshot %(snap)s: %(err)s',
                     {'snap': snapshot.name, 'err': e.error})
            raise exception.SnapshotIsBusy(snapshot_name=snapshot.name)

    # Clones ---------------------------------------------------------------------------

    def _clone(self, volume, src_volume, src_snapshot, flatten):
        """Clones ``src_volume@src_snapshot`` into Cairn volume ``volume.name``, closes
        it to every host, grows it to ``volume.size`` and flattens it when asked.
        On a failure after the clone exists, deletes the clone again.

        :raises CairnVolumeExists: the name exists as another volume.
        :raises InvalidVolumeType: the type asks for what a clone cannot have.
        """
        try:
            parent, _etag = self.client.get_volume(src_volume)
        except cairn_client.CairnNotFound:
            raise exception.VolumeNotFound(volume_id=src_volume)
        self._check_clone_spec(volume, parent)
        try:
            record, created = self.client.clone(src_volume, src_snapshot,
                                                volume.name)
        except cairn_client.CairnConflict as e:
            raise CairnVolumeExists(name=volume.name, error=e.error)
        except cairn_client.CairnNotFound:
            raise exception.SnapshotNotFound(snapshot_id=src_snapshot)
        try:
            # A clone starts with its parent's allow-list: close it, and grow it to the
            # size Cinder asked for, in one change.
            changes = {'allowHosts': [NO_HOST_NQN]}
            if self._bytes(volume.size) > record['sizeBytes']:
                changes['size'] = self._bytes(volume.size)
            self.client.patch_volume(volume.name, changes)
            if flatten:
                self._flatten(volume.name)
        except Exception:
            LOG.exception('Cloning %(src)s@%(snap)s into %(dst)s failed after '
                          'the clone was made; deleting the clone',
                          {'src': src_volume, 'snap': src_snapshot,
                           'dst': volume.name})
            try:
                self._delete_cairn_volume(volume.name)
            except Exception:
                LOG.exception('Could not delete the clone %s', volume.name)
            raise
        LOG.info('Created Cairn volume %(dst)s from %(src)s@%(snap)s%(flat)s',
                 {'dst': volume.name, 'src': src_volume, 'snap': src_snapshot,
                  'flat': ' (flattened)' if flatten else ' (copy-on-write)'})

    def _flatten(self, name):
        """Flattens clone ``name`` (a job copying the rest of its parent) and waits."""
        try:
            job = self.client.flatten(name)
        except cairn_client.CairnConflict:
            record, _etag = self.client.get_volume(name)
            if record.get('parent') is None:
                return  # Already flat (a retried flatten).
            raise
        try:
            self.client.wait_job(job, self.configuration.cairn_job_timeout)
        except cairn_client.CairnNotFound:
            record, _etag = self.client.get_volume(name)
            if record.get('parent') is not None:
                raise

    def create_volume_from_snapshot(self, volume, snapshot):
        """Creates ``volume`` as a copy-on-write clone of the Cairn snapshot (instant),
        flattened when cairn_flatten_volume_from_snapshot is set.

        While it is not flattened the snapshot cannot be deleted (SnapshotIsBusy), as
        with RBD's rbd_flatten_volume_from_snapshot = False.
        """
        self._clone(volume, snapshot.volume_name, snapshot.name,
                    self.configuration.cairn_flatten_volume_from_snapshot)

    @staticmethod
    def _temp_snapshot_name(volume):
        """Name of the temporary snapshot a clone of ``volume`` is made from."""
        return 'cinder-clone-src-%s' % volume.name

    def create_cloned_volume(self, volume, src_vref):
        """Creates ``volume`` as a full, independent copy of ``src_vref``.

        Takes a temporary snapshot of the source, clones it, flattens the clone (a job
        that copies the data the clone does not hold yet) and deletes the temporary
        snapshot. The result is independent of its source: the source can be deleted
        at once, and no hidden snapshot remains on it (a kept snapshot would make
        Cairn refuse to delete the source volume, and Cinder does not know it exists).
        The cost is the copy, done inside the cluster.
        """
        temp = self._temp_snapshot_name(volume)
        try:
            self._take_snapshot(src_vref.name, temp)
        except cairn_client.CairnNotFound:
            raise exception.VolumeNotFound(volume_id=src_vref.id)
        try:
            self._clone(volume, src_vref.name, temp, flatten=True)
        finally:
            try:
                self._drop_snapshot(src_vref.name, temp)
            except Exception:
                LOG.exception('Could not delete the temporary snapshot '
                              '%(vol)s@%(snap)s', {'vol': src_vref.name,
                                                   'snap': temp})

    def revert_to_snapshot(self, context, volume, snapshot):
        """Rolls the Cairn volume back to the snapshot (a job; the volume keeps its
        current size, past the snapshot's end it reads zeros) and waits for it."""
        try:
            job = self.client.rollback(volume.name, snapshot.name)
        except cairn_client.CairnNotFound:
            raise exception.SnapshotNotFound(snapshot_id=snapshot.id)
        self.client.wait_job(job, self.configuration.cairn_job_timeout)
        LOG.info('Reverted Cairn volume %(vol)s to %(snap)s',
                 {'vol': volume.name, 'snap': snapshot.name})

    # Exports and connections ----------------------------------------------------------

    def create_export(self, context, volume, connector):
        """Nothing to do: the gateways serve every volume; initialize_connection opens
        the volume to the host."""

    def ensure_export(self, context, volume):
        """Nothing to do (see create_export)."""

    def remove_export(self, context, volume):
        """Nothing to do (see create_export)."""

    def _update_hosts(self, name, change):
        """Applies ``change`` (a function of the list of host NQNs) to volume ``name``'s
        allow-list by compare-and-swap: reads the record and its ETag, PATCHes with
        If-Match, and reads again on 412. An empty result is stored as [NO_HOST_NQN].
        Returns the new host list.

        :raises CairnNotFound: no such volume.
        """
        for _attempt in range(HOSTS_UPDATE_ATTEMPTS):
            record, etag = self.client.get_volume(name)
            stored = list(record.get('allowHosts') or [])
            hosts = [h for h in stored if h != NO_HOST_NQN]
            new = change(hosts)
            wanted = new or [NO_HOST_NQN]
            if wanted == stored:
                return new
            try:
                self.client.patch_volume(name, {'allowHosts': wanted},
                                         if_match=etag)
                return new
            except cairn_client.CairnStale:
                LOG.debug('allowHosts of %s changed meanwhile; re-reading', name)
        raise exception.VolumeBackendAPIException(data=_(
            'could not update the host list of Cairn volume %(name)s: it changed '
            '%(n)s times while we tried') % {'name': name,
                                             'n': HOSTS_UPDATE_ATTEMPTS})

    def _connection_properties(self, volume, host_nqn):
        """os-brick ``nvmeof`` properties (new format, one portal per ANA path)."""
        nqn = volume_nqn(self.cluster_id, volume.name)
        return {
            'driver_volume_type': 'nvmeof',
            'data': {
                'target_nqn': nqn,
                'vol_uuid': namespace_uuid(nqn),
                'ns_id': str(NAMESPACE_ID),
                'portals': [(addr, port, 'tcp') for addr, port in self.portals],
                'host_nqn': host_nqn,
                'discard': True,
            },
        }

    def initialize_connection(self, volume, connector):
        """Adds the connector's host NQN to the volume's allow-list and returns the
        NVMe/TCP connection properties.

        :raises InvalidConnectorException: the connector has no ``nqn`` (the host has
            no nvme-cli / host NQN).
        :raises VolumeNotFound: the Cairn volume does not exist.
        """
        host_nqn = (connector or {}).get('nqn')
        if not host_nqn:
            raise exception.InvalidConnectorException(missing='nqn')
        try:
            self._update_hosts(
                volume.name,
                lambda hosts: hosts if host_nqn in hosts else hosts + [host_nqn])
        except cairn_client.CairnNotFound:
            raise exception.VolumeNotFound(volume_id=volume.id)
        LOG.info('Host %(host)s may attach Cairn volume %(vol)s',
                 {'host': host_nqn, 'vol': volume.name})
        return self._connection_properties(volume, host_nqn)

    def terminate_connection(self, volume, connector, **kwargs):
        """Removes the connector's host NQN from the volume's allow-list.

        Without a connector (a forced detach, ``force=True``) every host is removed.
        A connector without an NQN cannot have been allowed (initialize_connection
        requires one), so nothing is removed. A missing volume is not an error.
        """
        force = kwargs.get('force', False)
        host_nqn = connector.get('nqn') if connector else None
        if connector is None:
            LOG.info('Removing every host from Cairn volume %(vol)s (no '
                     'connector, force=%(force)s)',
                     {'vol': volume.name, 'force': force})
            change = (lambda hosts: [])
        elif not host_nqn:
            LOG.warning('Connector %s has no host NQN; nothing to remove',
                        connector)
            return
        else:
            change = (lambda hosts: [h for h in hosts if h != host_nqn])
        try:
            self._update_hosts(volume.name, change)
        except cairn_client.CairnNotFound:
            LOG.info('Cairn volume %s does not exist; no host to remove',
                     volume.name)

    # Stats ----------------------------------------------------------------------------

    def _update_volume_stats(self):
        """Computes the backend's stats from the cluster (GET /v1/nodes, /v1/volumes).

        Capacity follows Cairn's own accounting for thick volumes (src/catalog):
        total = raw capacity of the nodes that are in ÷ the pool's replicas;
        free = total − max(bytes thick volumes reserve, bytes stored ÷ replicas);
        provisioned = sum of the pool's volume sizes. When the API does not answer the
        backend reports 0 GiB and backend_state 'down'.
        """
        conf = self.configuration
        pool_id = conf.cairn_pool
        stats = {
            'volume_backend_name': conf.safe_get('volume_backend_name')
            or self.__class__.__name__,
            'vendor_name': self.VENDOR,
            'driver_version': self.VERSION,
            'storage_protocol': constants.NVMEOF_TCP,
            'reserved_percentage': conf.safe_get('reserved_percentage') or 0,
            'max_over_subscription_ratio': volume_utils.get_max_over_subscription_ratio(
                conf.safe_get('max_over_subscription_ratio') or 20.0,
                supports_auto=False),
            'thin_provisioning_support': True,
            'thick_provisioning_support': True,
            'online_extend_support': True,
            'multiattach': False,
            'QoS_support': False,
            'sparse_copy_volume': True,
            'replication_enabled': False,
            'location_info': 'cairn:%s:%s' % (self.cluster_id, pool_id),
        }
        try:
            pool = self._pool(pool_id)
            nodes = self.client.nodes()
            volumes = self.client.list_volumes()
        except exception.VolumeBackendAPIException as e:
            LOG.error('Cannot read Cairn capacity: %s', e)
            stats.update(total_capacity_gb=0, free_capacity_gb=0,
                         provisioned_capacity_gb=0, backend_state='down')
            self._stats = stats
            return
        replicas = pool['size']
        members = [n for n in nodes if n.get('in')]
        raw = sum(n.get('capacityBytes', 0) for n in members)
        used = sum(n.get('usedBytes', 0) for n in members)
        mine = [v for v in volumes if v.get('pool') == pool_id]
        reserved = sum(v['sizeBytes'] for v in mine if not v.get('thin'))
        total = raw / replicas
        free = max(0.0, total - max(reserved, used / replicas))
        stats.update(
            total_capacity_gb=round(total / units.Gi, 2),
            free_capacity_gb=round(free / units.Gi, 2),
            provisioned_capacity_gb=round(
                sum(v['sizeBytes'] for v in mine) / units.Gi, 2),
            replicas=replicas,
            backend_state='up')
        self._stats = stats
