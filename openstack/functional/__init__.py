"""Functional tests of the Cairn Cinder driver against real components.

``harness`` starts the pieces (Debian's rabbitmq-server on private ports, cinder-api,
cinder-scheduler and cinder-volume as three processes on sqlite, and a real Cairn cluster
with ``cairn up``); ``test_stack`` drives the Cinder REST API and checks every result in
Cairn's own API; ``test_vm_attach`` attaches a volume with os-brick inside the nvme-vm
guest. ``openstack/run-functional`` runs them (see openstack/README.md, "Functional tests").
"""
