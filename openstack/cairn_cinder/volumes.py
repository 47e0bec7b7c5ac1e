"""Volume lifecycle helpers of the Cairn driver, shared by the driver and the clone flows.

``CairnVolumeExists`` (a name taken by a volume with other properties), Cinder's GiB as
bytes, and the delete of a Cairn volume: ``DELETE /v1/volumes/:name`` starts a job that
trims every copy, and the helper waits for it (or, when the job is lost because the
authority restarted, for the record to go).
"""

import time

from oslo_log import log as logging
from oslo_utils import units

from cinder import exception
from cinder.i18n import _

from cairn_cinder import client as cairn_client

LOG = logging.getLogger(__name__)


class CairnVolumeExists(exception.VolumeBackendAPIException):
    """The Cairn volume name is taken by a volume with other properties (API 409).

    A subclass of VolumeBackendAPIException: Cinder has no exception for "the backend
    already holds this name", and callers that handle backend errors keep working; the
    class tells the cause. (Cairn's create is idempotent: the same name with the same
    size, pool and provisioning is not an error.)
    """

    message = _("Cairn volume %(name)s already exists with other properties: "
                "%(error)s")


def gib_to_bytes(gib):
    """Cinder's GiB as bytes."""
    return int(gib) * units.Gi


def delete_volume(client, name, job_timeout):
    """Deletes Cairn volume ``name`` and waits (``job_timeout`` seconds) until its
    record is gone. A volume that does not exist is not an error.

    :raises VolumeIsBusy: the volume has snapshots.
    """
    try:
        job = client.delete_volume(name)
    except cairn_client.CairnNotFound:
        LOG.info('Cairn volume %s does not exist; nothing to delete', name)
        return
    except cairn_client.CairnConflict as e:
        LOG.info('Cairn refuses to delete %(name)s: %(err)s',
                 {'name': name, 'err': e.error})
        raise exception.VolumeIsBusy(volume_name=name)
    try:
        client.wait_job(job, job_timeout)
    except cairn_client.CairnNotFound:
        # The authority restarted (jobs live in its memory) and resumed the delete
        # under another job: wait for the record to go instead.
        wait_volume_gone(client, name, job_timeout)
    LOG.info('Deleted Cairn volume %s', name)


def wait_volume_gone(client, name, timeout):
    """Waits (``timeout`` seconds) until GET /v1/volumes/:name answers 404.

    :raises VolumeBackendAPIException: the volume is still there.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.get_volume(name)
        except cairn_client.CairnNotFound:
            return
        time.sleep(1)
    raise exception.VolumeBackendAPIException(data=_(
        'Cairn volume %(name)s still exists %(t)s s after its delete job '
        'was lost') % {'name': name, 't': timeout})
