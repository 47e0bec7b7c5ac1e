"""Cairn volume driver for OpenStack Cinder.

Cinder loads it with ``volume_driver = cairn_cinder.driver.CairnDriver`` when the
``openstack/`` directory of the Cairn repository is on ``PYTHONPATH``. The driver talks to
Cairn's management REST API (``client``), reads its settings from ``options`` and hands
hosts NVMe/TCP connection properties for os-brick's ``nvmeof`` connector.
"""
