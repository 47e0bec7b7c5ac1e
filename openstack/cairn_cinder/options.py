"""cinder.conf options of the Cairn volume driver (a backend section's ``cairn_*`` keys).

The options are registered in Cinder's shared backend group (``[backend_defaults]``) on
import, as Cinder's in-tree drivers do, and grafted into the backend's own section by
``CairnDriver.__init__`` (``configuration.append_config_values``).
"""

from oslo_config import cfg

from cinder.volume import configuration

CAIRN_OPTS = [
    cfg.ListOpt('cairn_api_addresses',
                default=[],
                help='Base URLs of Cairn management APIs, e.g. '
                     'http://10.0.0.1:8080,http://10.0.0.2:8080. Every storage '
                     'node serves the API; the driver uses them round-robin and '
                     'fails over to the next one when one does not answer.'),
    cfg.StrOpt('cairn_api_token',
               secret=True,
               help='The cluster token (the "token" of the data directory\'s '
                    'cluster.json), sent as "Authorization: Bearer <token>".'),
    cfg.BoolOpt('cairn_verify_tls',
                default=True,
                help='Verify the API\'s TLS certificate for https:// '
                     'addresses.'),
    cfg.StrOpt('cairn_ca_file',
               help='CA bundle to verify the API\'s certificate with (default: '
                    'the system\'s). Used only when cairn_verify_tls is True.'),
    cfg.IntOpt('cairn_pool',
               default=0,
               min=0,
               help='Cairn pool (its id) new volumes go to, unless the volume '
                    'type\'s "cairn:pool" extra spec names another.'),
    cfg.IntOpt('cairn_replicas',
               min=1,
               help='Replica count this backend promises. Cairn keeps replicas '
                    'per pool, not per volume: when set, the driver refuses to '
                    'start unless cairn_pool keeps exactly this many copies. '
                    'Unset: whatever the pool keeps.'),
    cfg.ListOpt('cairn_nvmf_portals',
                default=[],
                help='NVMe/TCP paths (ANA paths) of the Cairn gateway(s) that '
                     'serve the volumes, as host:port (IPv6: [addr]:port), one '
                     'per path, e.g. 10.0.0.5:4420,10.0.0.5:4421. The node API '
                     'does not know the gateways, so they are listed here. '
                     'Hosts get one portal per entry.'),
    cfg.IntOpt('cairn_api_timeout',
               default=30,
               min=1,
               help='Seconds one API request may take before the driver tries '
                    'the next address.'),
    cfg.IntOpt('cairn_job_timeout',
               default=900,
               min=1,
               help='Seconds the driver waits for a Cairn job (delete, flatten, '
                    'rollback) to finish.'),
    cfg.BoolOpt('cairn_flatten_volume_from_snapshot',
                default=False,
                help='Flatten a volume created from a snapshot (copy the rest of '
                     'the snapshot into it) so that the snapshot can be deleted '
                     'while the volume exists. False: the volume stays a '
                     'copy-on-write clone and deleting its snapshot is refused '
                     '(SnapshotIsBusy) until the volume is deleted.'),
]

configuration.CONF.register_opts(CAIRN_OPTS, group=configuration.SHARED_CONF_GROUP)
