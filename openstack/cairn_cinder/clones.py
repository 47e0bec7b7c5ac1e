"""Snapshot and clone flows of the Cairn driver.

Snapshots of one volume are taken and deleted one at a time
(``@coordination.synchronized('cairn-snapshots-{volume_name}')``). A clone is made from a
snapshot (``POST .../snapshots/:snap/clone``: instant, copy-on-write), then closed to every
host and grown to the size Cinder asked for in one PATCH (a clone starts with its parent's
allow-list and size), and flattened when asked (a job that copies the data the clone does
not hold yet). On a failure after the clone exists, the clone is deleted again.

Checking a volume type against the clone's source is the driver's part (``specs``); the
functions here take the API client and the job timeout as arguments.
"""

from oslo_log import log as logging

from cinder import coordination
from cinder import exception

from cairn_cinder import client as cairn_client
from cairn_cinder import connection
from cairn_cinder import volumes

LOG = logging.getLogger(__name__)


@coordination.synchronized('cairn-snapshots-{volume_name}')
def take_snapshot(client, volume_name, snapshot_name):
    """Takes snapshot ``snapshot_name`` of ``volume_name`` (serialised per volume);
    returns (record, created).

    :raises CairnNotFound: no such volume.
    """
    return client.create_snapshot(volume_name, snapshot_name)


@coordination.synchronized('cairn-snapshots-{volume_name}')
def drop_snapshot(client, volume_name, snapshot_name):
    """Deletes snapshot ``snapshot_name`` of ``volume_name`` (serialised per volume);
    an absent snapshot or volume is not an error.

    :raises CairnConflict: the snapshot has clones.
    """
    try:
        client.delete_snapshot(volume_name, snapshot_name)
    except cairn_client.CairnNotFound:
        LOG.info('Cairn snapshot %(vol)s@%(snap)s does not exist; nothing '
                 'to delete', {'vol': volume_name, 'snap': snapshot_name})


def temp_snapshot_name(volume_name):
    """Name of the temporary snapshot a full copy into ``volume_name`` is made from."""
    return 'cinder-clone-src-%s' % volume_name


def source_record(client, volume_name):
    """The record of the clone source ``volume_name``.

    :raises VolumeNotFound: Cairn has no such volume.
    """
    try:
        record, _etag = client.get_volume(volume_name)
    except cairn_client.CairnNotFound:
        raise exception.VolumeNotFound(volume_id=volume_name)
    return record


def clone(client, src_volume, src_snapshot, name, size_bytes, flatten_it,
          job_timeout):
    """Clones ``src_volume@src_snapshot`` into Cairn volume ``name``, closes it to
    every host, grows it to ``size_bytes`` (when larger) and flattens it when
    ``flatten_it``. On a failure after the clone exists, deletes the clone again.

    :raises CairnVolumeExists: the name exists as another volume.
    :raises SnapshotNotFound: the source snapshot does not exist.
    """
    try:
        record, _created = client.clone(src_volume, src_snapshot, name)
    except cairn_client.CairnConflict as e:
        raise volumes.CairnVolumeExists(name=name, error=e.error)
    except cairn_client.CairnNotFound:
        raise exception.SnapshotNotFound(snapshot_id=src_snapshot)
    try:
        # A clone starts with its parent's allow-list: close it, and grow it to the
        # size Cinder asked for, in one change.
        changes = {'allowHosts': [connection.NO_HOST_NQN]}
        if size_bytes > record['sizeBytes']:
            changes['size'] = size_bytes
        client.patch_volume(name, changes)
        if flatten_it:
            flatten(client, name, job_timeout)
    except Exception:
        LOG.exception('Cloning %(src)s@%(snap)s into %(dst)s failed after '
                      'the clone was made; deleting the clone',
                      {'src': src_volume, 'snap': src_snapshot, 'dst': name})
        try:
            volumes.delete_volume(client, name, job_timeout)
        except Exception:
            LOG.exception('Could not delete the clone %s', name)
        raise
    LOG.info('Created Cairn volume %(dst)s from %(src)s@%(snap)s%(flat)s',
             {'dst': name, 'src': src_volume, 'snap': src_snapshot,
              'flat': ' (flattened)' if flatten_it else ' (copy-on-write)'})


def flatten(client, name, job_timeout):
    """Flattens clone ``name`` (a job copying the rest of its parent) and waits; a
    volume that is already flat (a retried flatten) is fine."""
    try:
        job = client.flatten(name)
    except cairn_client.CairnConflict:
        record, _etag = client.get_volume(name)
        if record.get('parent') is None:
            return  # Already flat (a retried flatten).
        raise
    try:
        client.wait_job(job, job_timeout)
    except cairn_client.CairnNotFound:
        record, _etag = client.get_volume(name)
        if record.get('parent') is not None:
            raise
