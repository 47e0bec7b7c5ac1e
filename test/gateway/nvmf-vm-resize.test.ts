/**
 * Online resize seen by the real Linux NVMe/TCP initiator (nvme-vm: Debian's kernel and
 * nvme-cli in qemu) against `cairn up`: the guest connects to a volume created through the API
 * (its own allow-list names the guest's host NQN), the host grows the volume through the API,
 * and the guest kernel — told by the Namespace Attribute Changed notice, not by a reconnect —
 * shows the new size in /sys/block/nvme*n1/size and writes and reads past the old end.
 * Runs with CAIRN_SLOW=1 and the VM tooling present (like test/nvmf/vm.test.ts;
 * CAIRN_REQUIRE_VM=1 makes missing tooling a failure); reported as skipped otherwise.
 */
import test from 'ava';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '../../src/api/index.ts';
import { loadConfig } from '../../src/config/index.ts';
import { SLOW } from '../helpers/slow.ts';
import { cairnUp, tempDataDir } from '../helpers/cairn-up.ts';
import { GUEST_HOST, runGuest, vmMissing } from '../nvmf/helpers/vm.ts';
import { TestHost } from '../nvmf/helpers/host.ts';
import { DISCOVERY_NQN } from '../../src/nvmf/index.ts';

const VM_HOSTNQN = 'nqn.2014-08.org.nvmexpress:uuid:5c0e9a3e-1b7a-4d2c-9f00-00000000e51e';
const MiB = 1 << 20;
const OLD = 64 * MiB;
const NEW = 96 * MiB;

const missing = vmMissing();
if (SLOW && missing && process.env.CAIRN_REQUIRE_VM) throw new Error(`CAIRN_REQUIRE_VM is set but the nvme-vm tooling is missing: ${missing}`);
const why = !SLOW ? 'CAIRN_SLOW=1 not set' : missing;
const vmTest = why ? test.skip : test.serial;

/**
 * Guest side: connect, print "READY <sectors>", wait (≤ 90 s) for the size in sectors to reach
 * EXPECT, then write a pattern past the old end (direct I/O), read it back, disconnect.
 */
const GUEST_SCRIPT = `#!/bin/bash
set -uo pipefail
ADDR=$1; PORT=$2; NQN=$3; HOSTNQN=$4; EXPECT=$5
fail() { echo "FAIL: $*"; dmesg | grep -i nvme | tail -n 20; exit 1; }
modprobe nvme-tcp
nvme connect -t tcp -a "$ADDR" -s "$PORT" -n "$NQN" --hostnqn="$HOSTNQN" || fail "connect"
dev=""
for _ in $(seq 100); do dev=$(ls /dev/nvme*n1 2>/dev/null | grep -E '^/dev/nvme[0-9]+n1$' | head -1); [ -n "$dev" ] && break; sleep 0.1; done
[ -n "$dev" ] || fail "no namespace block device"
blk=$(basename "$dev")
old=$(cat /sys/block/$blk/size)
echo "READY $old"
now=$old
for _ in $(seq 900); do now=$(cat /sys/block/$blk/size); [ "$now" = "$EXPECT" ] && break; sleep 0.1; done
echo "SIZE_AFTER $now"
[ "$now" = "$EXPECT" ] || fail "size stayed $now"
dmesg | grep -i "capacity change" | tail -n 2
head -c 1048576 /dev/urandom > /tmp/pat
dd if=/tmp/pat of="$dev" bs=1M seek=$((old / 2048)) count=1 oflag=direct status=none || fail "write past the old end"
dd if="$dev" of=/tmp/back bs=1M skip=$((old / 2048)) count=1 iflag=direct status=none || fail "read past the old end"
cmp /tmp/pat /tmp/back && echo "PAST_OLD_END OK" || fail "cmp"
nvme disconnect -n "$NQN" >/dev/null || fail "disconnect"
echo "resize: OK"
`;

vmTest(`Linux initiator sees an online resize through the Namespace Attribute Changed notice${why ? ` [skipped: ${why}]` : ''}`, async (t) => {
  t.timeout(600_000);
  const { dir, cleanup } = tempDataDir();
  const share = mkdtempSync(join(tmpdir(), 'cairn-vm-resize-'));
  const script = join(share, 'resize.sh');
  writeFileSync(script, GUEST_SCRIPT);
  chmodSync(script, 0o755);
  const up = await cairnUp(dir, ['--nodes', '3', '--devices', '1', '--device-size', '256MiB', '--partitions', '2', '--volume-size', '32MiB', '--nvmf-paths', '1']);
  try {
    const port = Number(/NVMe\/TCP path 1: [\d.]+:(\d+)/.exec(up.output())?.[1]);
    t.true(port > 0, up.output());
    const config = (await loadConfig(dir))!;
    const api = new ApiClient(`http://127.0.0.1:${config.nodes[0].apiPort}`, config.token);
    await api.call('POST', '/v1/volumes', { name: 'vmdisk', size: OLD, allowHosts: [VM_HOSTNQN] });
    const nqn = `nqn.2024-01.io.cairn:${config.clusterId}:vmdisk`;
    // The subsystem appears with the next catalog refresh: wait for it in discovery (as the guest's host).
    const d = await TestHost.open(port);
    t.is((await d.connect(DISCOVERY_NQN, VM_HOSTNQN)).status, 0);
    await d.enable();
    const end = Date.now() + 20000;
    while (!(await d.getLogPage(0x70, 4096)).data!.includes(Buffer.from(nqn)) && Date.now() < end) await new Promise((res) => setTimeout(res, 100));
    t.true((await d.getLogPage(0x70, 4096)).data!.includes(Buffer.from(nqn)), 'vmdisk is in the discovery log');
    d.close();
    let resized: Promise<unknown> | undefined;
    let ready = '';
    const r = await runGuest(script, [GUEST_HOST, String(port), nqn, VM_HOSTNQN, String(NEW / 512)], {
      share,
      timeoutS: 300,
      onLine: (l) => {
        if (!resized && l.startsWith('READY ')) {
          ready = l;
          resized = api.call('PATCH', '/v1/volumes/vmdisk', { size: NEW });
        }
      },
    });
    t.log(r.output.split('\n').filter((l) => /^(READY|SIZE_AFTER|PAST_OLD_END|resize:|FAIL|run-guest)|capacity change/.test(l)).join('\n'));
    t.truthy(resized, `the guest never connected:\n${r.output}`);
    await resized;
    t.is(ready, `READY ${OLD / 512}`, 'the guest saw the original size');
    t.is(r.code, 0, r.output);
    t.true(r.output.includes(`SIZE_AFTER ${NEW / 512}`), '/sys/block/nvme*n1/size follows the resize');
    t.true(r.output.includes('PAST_OLD_END OK'), 'the guest writes and reads past the old end');
    t.true(r.output.includes('resize: OK'));
  } finally {
    t.is(await up.stop(), 0, up.output());
    cleanup();
    rmSync(share, { recursive: true, force: true });
  }
});
