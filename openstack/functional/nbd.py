"""Volume data through the NBD export ``cairn up`` serves for every volume (and snapshot).

:func:`nbd_write`, :func:`nbd_read` and :func:`nbd_size` use libnbd's real clients
(nbdcopy, nbdinfo) on an ``nbd://`` URI such as ``CairnCluster.nbd_uri`` returns.
"""

import os
import subprocess
import tempfile


def nbd_write(uri, data, workdir):
    """Writes ``data`` at offset 0 of the NBD export ``uri`` (nbdcopy from a file, flushed)."""
    fd, path = tempfile.mkstemp(dir=workdir, suffix='.img')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        subprocess.run(['nbdcopy', '--flush', path, uri], check=True, timeout=120,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    finally:
        os.unlink(path)


def nbd_read(uri, length, workdir):
    """The first ``length`` bytes of the NBD export ``uri`` (nbdcopy of the whole export
    into a sparse file: holes are skipped, so a thin volume copies fast)."""
    fd, path = tempfile.mkstemp(dir=workdir, suffix='.img')
    os.close(fd)
    try:
        subprocess.run(['nbdcopy', uri, path], check=True, timeout=300,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        with open(path, 'rb') as f:
            return f.read(length)
    finally:
        os.unlink(path)


def nbd_size(uri):
    """The size in bytes of the NBD export ``uri`` (nbdinfo --size)."""
    r = subprocess.run(['nbdinfo', '--size', uri], check=True, timeout=60, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return int(r.stdout.decode().strip())
