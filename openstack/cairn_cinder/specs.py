"""Volume types for the Cairn driver: the extra specs it reads and what Cairn can honour.

``cairn:pool`` (the pool a volume goes to), ``cairn:replicas`` (copies it must have) and
Cinder's standard ``provisioning:type`` (thin or thick). Cairn keeps replicas per pool, not
per volume: a replica count is accepted only when the chosen pool keeps exactly that many.
A clone lives in its source's pool with its source's provisioning, so a type asking for
another pool, replica count or provisioning is refused for clones. Every refusal is
``InvalidVolumeType`` with the reason.

The functions here take the pool records (``GET /v1/status`` → ``pools[]``: id, name, size)
as arguments; looking pools up in the cluster is the driver's job.
"""

from cinder import exception
from cinder.i18n import _

SPEC_POOL = 'cairn:pool'
SPEC_REPLICAS = 'cairn:replicas'
SPEC_PROVISIONING = 'provisioning:type'


def extra_specs(volume):
    """The extra specs of ``volume``'s type ({} without a type)."""
    if not volume.volume_type_id:
        return {}
    vtype = volume.volume_type
    return dict(vtype.extra_specs or {}) if vtype else {}


def parse_specs(volume):
    """The Cairn-relevant extra specs of ``volume``'s type, checked for form:
    {'pool': int or None, 'replicas': int or None, 'thick': bool or None}.

    :raises InvalidVolumeType: a malformed value.
    """
    specs = extra_specs(volume)

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


def check_replicas(want, pool):
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


def check_clone_specs(specs, parent, parent_pool):
    """A clone lives in its parent's pool with its provisioning: refuses ``specs`` (as
    parse_specs returns them) that name another pool, another replica count than
    ``parent_pool`` keeps, or other provisioning than the ``parent`` volume record's.

    :raises InvalidVolumeType: the type asks for what the clone cannot have.
    """
    if specs['pool'] is not None and specs['pool'] != parent['pool']:
        raise exception.InvalidVolumeType(reason=_(
            'a Cairn clone stays in its source\'s pool %(src)s; the volume '
            'type asks for pool %(want)s') % {'src': parent['pool'],
                                              'want': specs['pool']})
    check_replicas(specs['replicas'], parent_pool)
    if specs['thick'] is not None and specs['thick'] == parent['thin']:
        raise exception.InvalidVolumeType(reason=_(
            'a Cairn clone is %(src)s like its source; the volume type asks '
            'for %(want)s') % {'src': 'thin' if parent['thin'] else 'thick',
                               'want': 'thick' if specs['thick'] else 'thin'})


def vendor_properties(set_property):
    """The ``cairn:`` extra specs for Cinder's capabilities listing, declared through
    ``set_property`` (the driver's ``_set_property``); returns (properties, 'cairn')."""
    properties = {}
    set_property(
        properties, SPEC_POOL, 'Cairn pool',
        _('Id of the Cairn pool the volume goes to (default: cairn_pool).'),
        'integer', minimum=0)
    set_property(
        properties, SPEC_REPLICAS, 'Replica count',
        _('Copies the volume must have. Cairn keeps replicas per pool: a '
          'volume type whose pool keeps another count is refused.'),
        'integer', minimum=1)
    return properties, 'cairn'
