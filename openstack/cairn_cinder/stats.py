"""Backend stats for the Cairn driver: capabilities and capacity (``get_volume_stats``).

Capacity follows Cairn's own accounting for thick volumes (src/catalog/volumes.ts
checkThick), over the nodes that are *in* (``GET /v1/nodes``) and the volumes of the
backend's pool (``GET /v1/volumes``):

    total       = Σ capacityBytes ÷ the pool's replicas
    free        = total − max(Σ sizes of thick volumes, Σ usedBytes ÷ replicas)
    provisioned = Σ sizeBytes of the pool's volumes

When the API does not answer, the backend reports 0 GiB and ``backend_state`` ``down``
(``DOWN``) rather than failing.
"""

from oslo_utils import units

from cinder.common import constants
from cinder.volume import volume_utils

#: The capacity part of the stats when the cluster cannot be read.
DOWN = {'total_capacity_gb': 0, 'free_capacity_gb': 0,
        'provisioned_capacity_gb': 0, 'backend_state': 'down'}


def capabilities(conf, default_name, vendor, version, cluster_id):
    """The stats that do not depend on the cluster's state: names, protocol,
    provisioning and the other capabilities, from the backend's configuration
    ``conf`` (``default_name`` when volume_backend_name is unset)."""
    return {
        'volume_backend_name': conf.safe_get('volume_backend_name')
        or default_name,
        'vendor_name': vendor,
        'driver_version': version,
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
        'location_info': 'cairn:%s:%s' % (cluster_id, conf.cairn_pool),
    }


def capacity(pool, nodes, volumes):
    """The capacity stats of ``pool`` (its record: id, size = replicas) from the node
    table ``nodes`` and the volume records ``volumes`` (see the module doc)."""
    replicas = pool['size']
    members = [n for n in nodes if n.get('in')]
    raw = sum(n.get('capacityBytes', 0) for n in members)
    used = sum(n.get('usedBytes', 0) for n in members)
    mine = [v for v in volumes if v.get('pool') == pool['id']]
    reserved = sum(v['sizeBytes'] for v in mine if not v.get('thin'))
    total = raw / replicas
    free = max(0.0, total - max(reserved, used / replicas))
    return {
        'total_capacity_gb': round(total / units.Gi, 2),
        'free_capacity_gb': round(free / units.Gi, 2),
        'provisioned_capacity_gb': round(
            sum(v['sizeBytes'] for v in mine) / units.Gi, 2),
        'replicas': replicas,
        'backend_state': 'up',
    }
