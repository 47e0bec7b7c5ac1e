#!/usr/bin/python3
"""Runs inside the nvme-vm guest (as root): os-brick attaches a Cairn volume over NVMe/TCP.

    run-guest guest_attach.py --share DIR -- SIZE_MIB [--unpatched]

The guest sees the host's / (so Debian's python3-os-brick, nvme-cli and fio) and the host's
127.0.0.1 as 10.0.2.2. Steps, each reported as one line ``KEY <json>`` on stdout for the
host side (test_vm_attach.py) to parse:

1. ``CONNECTOR``: os-brick's ``get_connector_properties`` (the host NQN comes from it), with
   privsep in-process (``os_brick.privileged.default.set_client_mode(False)``, we are root).
2. Waits for ``$NVME_VM_SHARE/connection.json``: the connection info the Cairn driver's
   initialize_connection returned for that connector on the host.
3. ``DEVICE``: ``NVMeOFConnector(use_multipath=True).connect_volume`` (the real
   ``nvme connect``, one per portal); ``PATHS``: the controllers of the volume's subsystem.
4. ``FIO``: fio writes SIZE_MIB with crc32c verify headers (direct I/O) and verifies them;
   ``SHA256``: the digest of those bytes read back with O_DIRECT.
5. ``DISCONNECTED``: ``disconnect_volume``, then no controller of the subsystem is left.

Any failure prints ``FAIL <message>`` and exits 1.

os-brick 6.1.0 (Debian 12's python3-os-brick 6.1.0-3) matches a controller to a portal by
comparing sysfs ``address`` with exactly ``traddr=A,trsvcid=P``; Linux (Debian 12's 6.1
kernel included) writes ``traddr=A,trsvcid=P,src_addr=S`` for TCP, so no controller ever
matches and every connect_volume ends in VolumeDeviceNotFound after its retries. Upstream
fixed it in os-brick 6.2.3 / 6.4.1 / 6.6.0 (Launchpad bug 2035811). Unless given
``--unpatched``, :func:`patch_lp2035811` makes the installed os-brick compare only
the destination address and port, as the fixed releases do; it is applied only when the
installed code still has the exact-match comparison, and reported as ``OSBRICK_PATCH``.
"""

import glob
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time


def emit(key, value):
    """Prints one result line for the host."""
    print('%s %s' % (key, json.dumps(value)), flush=True)


def fail(msg):
    """Prints FAIL with the kernel's NVMe messages and exits 1."""
    print('FAIL %s' % msg, flush=True)
    try:
        dmesg = subprocess.run(['dmesg'], stdout=subprocess.PIPE, timeout=10).stdout.decode('utf-8', 'replace')
        print('\n'.join(line for line in dmesg.splitlines() if 'nvme' in line.lower())[-3000:], flush=True)
    except Exception:  # noqa: BLE001 - best effort diagnostics
        pass
    sys.exit(1)


def controllers(nqn):
    """The (controller, transport address, state) of every controller of subsystem ``nqn``."""
    out = []
    for sub in glob.glob('/sys/class/nvme-subsystem/nvme-subsys*'):
        with open(os.path.join(sub, 'subsysnqn')) as f:
            if f.read().strip() != nqn:
                continue
        for ctrl in sorted(glob.glob(os.path.join(sub, 'nvme[0-9]*'))):
            def attr(name):
                """One sysfs attribute of the controller (None when unreadable)."""
                try:
                    with open(os.path.join(ctrl, name)) as f:
                        return f.read().strip()
                except OSError:
                    return None
            if attr('address') is not None:
                out.append((os.path.basename(ctrl), attr('address'), attr('state')))
    return out


def patch_lp2035811():
    """Makes os-brick's sysfs ``address`` reads carry only traddr and trsvcid (see the module
    doc). Returns True when the installed os-brick needed it (and it was applied)."""
    import inspect

    from os_brick.initiator.connectors import nvmeof

    if 'trsvcid={p.port}' not in inspect.getsource(nvmeof.Target.set_portals_controllers):
        return False  # a fixed os-brick: nothing to do
    original = nvmeof.sysfs_property

    def sysfs_property(prop_name, path_or_name):
        """os-brick's sysfs_property, with ``address`` reduced to its destination part."""
        value = original(prop_name, path_or_name)
        if prop_name == 'address' and value:
            fields = dict(kv.split('=', 1) for kv in value.split(',') if '=' in kv)
            if 'traddr' in fields and 'trsvcid' in fields:
                value = 'traddr=%s,trsvcid=%s' % (fields['traddr'], fields['trsvcid'])
        return value
    nvmeof.sysfs_property = sysfs_property
    return True


def main():
    """The steps of the module docstring."""
    size_mib = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    share = os.environ.get('NVME_VM_SHARE')
    if not share:
        fail('no NVME_VM_SHARE (run with run-guest --share DIR)')
    t0 = time.monotonic()

    # Privsep in-process: os-brick's privileged calls run right here (we are root).
    from os_brick.privileged import default as privileged_default
    privileged_default.set_client_mode(False)
    from oslo_concurrency import lockutils
    from oslo_config import cfg
    import os_brick
    from os_brick.initiator import connector as brick_connector

    if '--unpatched' not in sys.argv[2:]:
        emit('OSBRICK_PATCH', {'lp2035811': patch_lp2035811()})
    lockutils.set_defaults(tempfile.mkdtemp(prefix='os-brick-locks-'))
    cfg.CONF([], project='os-brick', default_config_files=[])
    os_brick.setup(cfg.CONF)
    props = brick_connector.get_connector_properties(None, '10.0.2.15', True, False)
    emit('CONNECTOR', props)
    print('guest: os-brick loaded and connector ready in %.1f s' % (time.monotonic() - t0), flush=True)
    if not props.get('nqn'):
        fail('os-brick found no host NQN')

    path = os.path.join(share, 'connection.json')
    deadline = time.monotonic() + 300
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            fail('no %s from the host within 300 s' % path)
        time.sleep(0.2)
    with open(path) as f:
        info = json.load(f)
    data = info['data']
    nqn = data['target_nqn']

    conn = brick_connector.InitiatorConnector.factory(
        info['driver_volume_type'].upper(), None, use_multipath=True, device_scan_attempts=10)
    t1 = time.monotonic()
    try:
        device = conn.connect_volume(dict(data))
    except Exception as e:  # noqa: BLE001 - reported to the host
        fail('connect_volume: %r' % e)
    emit('DEVICE', device)
    emit('PATHS', controllers(nqn))
    print('guest: connect_volume took %.1f s' % (time.monotonic() - t1), flush=True)
    dev = device['path']

    fio = subprocess.run(
        ['fio', '--name=cinder-attach', '--filename=%s' % dev, '--rw=write', '--bs=64k', '--size=%dM' % size_mib,
         '--direct=1', '--ioengine=psync', '--verify=crc32c', '--do_verify=1', '--verify_fatal=1',
         '--output-format=json'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    if fio.returncode != 0:
        fail('fio exited %d: %s %s' % (fio.returncode, fio.stderr.decode()[-2000:], fio.stdout.decode()[-2000:]))
    job = json.loads(fio.stdout.decode()[fio.stdout.find(b'{'):])['jobs'][0]
    emit('FIO', {'error': job['error'], 'written': job['write']['io_bytes'], 'verified': job['read']['io_bytes']})

    dd = subprocess.run(['dd', 'if=%s' % dev, 'bs=1M', 'count=%d' % size_mib, 'iflag=direct', 'status=none'],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    if dd.returncode != 0 or len(dd.stdout) != size_mib << 20:
        fail('dd read back %d bytes, exit %d: %s' % (len(dd.stdout), dd.returncode, dd.stderr.decode()))
    emit('SHA256', hashlib.sha256(dd.stdout).hexdigest())

    try:
        conn.disconnect_volume(dict(data), device)
    except Exception as e:  # noqa: BLE001 - reported to the host
        fail('disconnect_volume: %r' % e)
    left = controllers(nqn)
    if left:
        fail('controllers left after disconnect_volume: %s' % left)
    emit('DISCONNECTED', {'seconds': round(time.monotonic() - t0, 1)})


if __name__ == '__main__':
    main()
