"""Cinder volume driver for Cairn, a distributed NVMe block store.

Cinder loads it with ``volume_driver = cairn_cinder.driver.CairnDriver``. It is a client of
Cairn's management REST API (``cairn_cinder.client``); hosts attach volumes over NVMe/TCP
through the Cairn gateway(s) with os-brick's ``nvmeof`` connector.

Names: a Cinder volume is the Cairn volume ``volume.name`` (``volume-<uuid>``), a Cinder
snapshot is the Cairn snapshot ``snapshot.name`` (``snapshot-<uuid>``) of its volume. Each
volume is an NVMe subsystem with one namespace; its NQN, namespace id and namespace UUID
are the ``nvmf`` identity of the API's volume view (the gateways' own, src/nvmf/ids.ts).

``CairnDriver`` is the face Cinder sees; the work is split along its seams:

- ``specs``: volume types' extra specs (cairn:pool, cairn:replicas, provisioning:type);
- ``volumes``: ``CairnVolumeExists``, GiB as bytes, deleting a volume and waiting for it;
- ``clones``: snapshots (serialised per volume), clones, flatten;
- ``connection``: allow-lists (``NO_HOST_NQN``) and the ``nvmeof`` connection properties;
- ``stats``: capabilities and capacity.
"""

from oslo_log import log as logging

from cinder import exception
from cinder.i18n import _
from cinder import interface
from cinder.volume import driver

from cairn_cinder import client as cairn_client
from cairn_cinder import clones
from cairn_cinder import connection
from cairn_cinder import options
from cairn_cinder import specs
from cairn_cinder import stats
from cairn_cinder import volumes

LOG = logging.getLogger(__name__)

# Names the driver module has always offered, now defined beside the code that uses them.
NO_HOST_NQN = connection.NO_HOST_NQN
HOSTS_UPDATE_ATTEMPTS = connection.HOSTS_UPDATE_ATTEMPTS
SPEC_POOL = specs.SPEC_POOL
SPEC_REPLICAS = specs.SPEC_REPLICAS
SPEC_PROVISIONING = specs.SPEC_PROVISIONING
CairnVolumeExists = volumes.CairnVolumeExists
parse_portal = connection.parse_portal


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
        """Builds the API client and learns the cluster id (GET /v1/map) and the
        pools (GET /v1/status).

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
        self.portals = [connection.parse_portal(p) for p in conf.cairn_nvmf_portals]
        self.cluster_id = self.client.cluster_map()['clusterId']
        self._refresh_pools()

    def _refresh_pools(self):
        """Reads the pools and their replica counts from GET /v1/status."""
        status = self.client.status()
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

    def _pool(self, pool_id):
        """Pool ``pool_id`` of the cluster (re-reads the pools once when unknown).

        :raises InvalidVolumeType: the cluster has no such pool.
        """
        if pool_id not in self.pools:
            self._refresh_pools()
        if pool_id not in self.pools:
            raise exception.InvalidVolumeType(reason=_(
                'Cairn has no pool %(id)s (pools: %(pools)s)') % {
                'id': pool_id, 'pools': sorted(self.pools)})
        return self.pools[pool_id]

    def _volume_spec(self, volume):
        """Where and how a new ``volume`` is made: (pool id, thick).

        Honours ``cairn:pool`` (else cairn_pool), ``cairn:replicas`` and
        ``provisioning:type`` (thin, the default, or thick).

        :raises InvalidVolumeType: a malformed spec, an unknown pool, or a replica count
            the pool does not keep.
        """
        wanted = specs.parse_specs(volume)
        pool_id = wanted['pool']
        if pool_id is None:
            pool_id = self.configuration.cairn_pool
        specs.check_replicas(wanted['replicas'], self._pool(pool_id))
        return pool_id, bool(wanted['thick'])

    def _check_clone_spec(self, volume, parent):
        """Refuses a type for clone ``volume`` that asks for another pool, replica
        count or provisioning than its source record ``parent`` has.

        :raises InvalidVolumeType: the type asks for what the clone cannot have.
        """
        specs.check_clone_specs(specs.parse_specs(volume), parent,
                                self._pool(parent['pool']))

    def _init_vendor_properties(self):
        """The ``cairn:`` extra specs, for Cinder's capabilities listing."""
        return specs.vendor_properties(self._set_property)

    # Volumes --------------------------------------------------------------------------

    def create_volume(self, volume):
        """Creates the Cairn volume ``volume.name`` (closed to every host).

        :raises CairnVolumeExists: the name exists with other properties.
        :raises InvalidVolumeType: the type's extra specs cannot be honoured.
        """
        pool_id, thick = self._volume_spec(volume)
        try:
            record, created = self.client.create_volume(
                volume.name, volumes.gib_to_bytes(volume.size), pool=pool_id,
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
        volumes.delete_volume(self.client, volume.name,
                              self.configuration.cairn_job_timeout)

    def extend_volume(self, volume, new_size):
        """Grows the Cairn volume to ``new_size`` GiB (online: attached hosts get a
        namespace-changed notice from the gateway)."""
        try:
            self.client.patch_volume(volume.name,
                                     {'size': volumes.gib_to_bytes(new_size)})
        except cairn_client.CairnNotFound:
            raise exception.VolumeNotFound(volume_id=volume.id)
        LOG.info('Extended Cairn volume %(name)s to %(size)s GiB',
                 {'name': volume.name, 'size': new_size})

    # Snapshots ------------------------------------------------------------------------

    def create_snapshot(self, snapshot):
        """Takes the Cairn snapshot ``snapshot.name`` of ``snapshot.volume_name``
        (instant and crash-consistent; no data is copied).

        :raises VolumeNotFound: the source volume does not exist in Cairn.
        """
        try:
            clones.take_snapshot(self.client, snapshot.volume_name, snapshot.name)
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
            clones.drop_snapshot(self.client, snapshot.volume_name, snapshot.name)
        except cairn_client.CairnConflict as e:
            LOG.info('Cairn refuses to delete snapshot %(snap)s: %(err)s',
                     {'snap': snapshot.name, 'err': e.error})
            raise exception.SnapshotIsBusy(snapshot_name=snapshot.name)

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

    # Clones ---------------------------------------------------------------------------

    def _clone(self, volume, src_volume, src_snapshot, flatten):
        """Clones ``src_volume@src_snapshot`` into Cairn volume ``volume.name`` after
        checking ``volume``'s type against the source (see clones.clone).

        :raises VolumeNotFound: the source volume does not exist.
        :raises CairnVolumeExists: the name exists as another volume.
        :raises InvalidVolumeType: the type asks for what a clone cannot have.
        """
        parent = clones.source_record(self.client, src_volume)
        self._check_clone_spec(volume, parent)
        clones.clone(self.client, src_volume, src_snapshot, volume.name,
                     volumes.gib_to_bytes(volume.size), flatten,
                     self.configuration.cairn_job_timeout)

    def create_volume_from_snapshot(self, volume, snapshot):
        """Creates ``volume`` as a copy-on-write clone of the Cairn snapshot (instant),
        flattened when cairn_flatten_volume_from_snapshot is set.

        While it is not flattened the snapshot cannot be deleted (SnapshotIsBusy), as
        with RBD's rbd_flatten_volume_from_snapshot = False.
        """
        self._clone(volume, snapshot.volume_name, snapshot.name,
                    self.configuration.cairn_flatten_volume_from_snapshot)

    def create_cloned_volume(self, volume, src_vref):
        """Creates ``volume`` as a full, independent copy of ``src_vref``.

        Takes a temporary snapshot of the source, clones it, flattens the clone (a job
        that copies the data the clone does not hold yet) and deletes the temporary
        snapshot. The result is independent of its source: the source can be deleted
        at once, and no hidden snapshot remains on it (a kept snapshot would make
        Cairn refuse to delete the source volume, and Cinder does not know it exists).
        The cost is the copy, done inside the cluster.
        """
        temp = clones.temp_snapshot_name(volume.name)
        try:
            clones.take_snapshot(self.client, src_vref.name, temp)
        except cairn_client.CairnNotFound:
            raise exception.VolumeNotFound(volume_id=src_vref.id)
        try:
            self._clone(volume, src_vref.name, temp, flatten=True)
        finally:
            try:
                clones.drop_snapshot(self.client, src_vref.name, temp)
            except Exception:
                LOG.exception('Could not delete the temporary snapshot '
                              '%(vol)s@%(snap)s', {'vol': src_vref.name,
                                                   'snap': temp})

    # Exports and connections ----------------------------------------------------------

    def create_export(self, context, volume, connector):
        """Nothing to do: the gateways serve every volume; initialize_connection opens
        the volume to the host."""

    def ensure_export(self, context, volume):
        """Nothing to do (see create_export)."""

    def remove_export(self, context, volume):
        """Nothing to do (see create_export)."""

    def initialize_connection(self, volume, connector):
        """Adds the connector's host NQN to the volume's allow-list and returns the
        NVMe/TCP connection properties: the subsystem NQN, namespace id and namespace
        UUID of the volume's ``nvmf`` identity in Cairn's API, one portal per
        configured ANA path.

        :raises InvalidConnectorException: the connector has no ``nqn`` (the host has
            no nvme-cli / host NQN).
        :raises VolumeNotFound: the Cairn volume does not exist.
        :raises VolumeBackendAPIException: the API's volume view has no ``nvmf``
            identity (the allow-list is then left as it was).
        """
        host_nqn = (connector or {}).get('nqn')
        if not host_nqn:
            raise exception.InvalidConnectorException(missing='nqn')
        try:
            _hosts, record = connection.update_hosts(
                self.client, volume.name, connection.add_host(host_nqn),
                check=connection.nvmf_identity)
        except cairn_client.CairnNotFound:
            raise exception.VolumeNotFound(volume_id=volume.id)
        LOG.info('Host %(host)s may attach Cairn volume %(vol)s',
                 {'host': host_nqn, 'vol': volume.name})
        return connection.connection_properties(record, self.portals, host_nqn)

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
            change = connection.remove_all_hosts
        elif not host_nqn:
            LOG.warning('Connector %s has no host NQN; nothing to remove',
                        connector)
            return
        else:
            change = connection.remove_host(host_nqn)
        try:
            connection.update_hosts(self.client, volume.name, change)
        except cairn_client.CairnNotFound:
            LOG.info('Cairn volume %s does not exist; no host to remove',
                     volume.name)

    # Stats ----------------------------------------------------------------------------

    def _update_volume_stats(self):
        """Computes the backend's stats from the cluster (GET /v1/nodes, /v1/volumes):
        capabilities and the capacity of the cairn_pool pool (see ``stats``). When the
        API does not answer the backend reports 0 GiB and backend_state 'down'.
        """
        result = stats.capabilities(self.configuration, self.__class__.__name__,
                                    self.VENDOR, self.VERSION, self.cluster_id)
        try:
            pool = self._pool(self.configuration.cairn_pool)
            nodes = self.client.nodes()
            vols = self.client.list_volumes()
        except exception.VolumeBackendAPIException as e:
            LOG.error('Cannot read Cairn capacity: %s', e)
            result.update(stats.DOWN)
        else:
            result.update(stats.capacity(pool, nodes, vols))
        self._stats = result
