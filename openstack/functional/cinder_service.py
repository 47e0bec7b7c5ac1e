"""Runs one Cinder service from the Debian python3-cinder package, as its console script would.

python3-cinder ships the code of cinder-api, cinder-scheduler, cinder-volume and cinder-manage
but not their /usr/bin scripts (those come with the cinder-api, cinder-scheduler,
cinder-volume and cinder-common packages, whose maintainer scripts want systemd, a
``cinder`` user and dbconfig). This file calls the same entry points (``cinder.cmd.*:main``,
as listed in the package's entry_points.txt) so the test needs only python3-cinder:

    /usr/bin/python3 cinder_service.py api|scheduler|volume|manage [cinder options ...]

``sys.argv[0]`` becomes ``cinder-<name>`` so oslo.config and oslo.log name the process as
the real script would.
"""

import importlib
import sys

SERVICES = ('api', 'scheduler', 'volume', 'manage')


def main():
    """Imports ``cinder.cmd.<name>`` (it monkey-patches eventlet on import) and runs its main()."""
    if len(sys.argv) < 2 or sys.argv[1] not in SERVICES:
        sys.stderr.write('usage: cinder_service.py %s [options]\n' % '|'.join(SERVICES))
        return 2
    name = sys.argv[1]
    sys.argv = ['cinder-%s' % name] + sys.argv[2:]
    module = importlib.import_module('cinder.cmd.%s' % name)
    return module.main()


if __name__ == '__main__':
    sys.exit(main())
