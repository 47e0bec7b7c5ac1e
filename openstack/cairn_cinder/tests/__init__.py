"""Tests of the Cairn Cinder driver (run them with ``openstack/run-tests``).

``test_interface``: Cinder's driver interface check (no cluster needed).
``test_driver``: every driver method and error case against a real ``cairn up`` cluster.
``test_os_brick``: os-brick parses the driver's connection properties and issues one
``nvme connect`` per ANA path.
"""
