#!/bin/bash
# multipath.sh ADDR DISC_PORT NQN HOSTNQN RUNTIME_S -- guest side of the ANA multipath test.
# Discovers the subsystem's paths through DISC_PORT, connects them all (nvme connect-all),
# checks list-subsys shows one optimized and the other paths non-optimized, then runs a fio
# crc32c verify job. The host kills the optimized gateway when it sees "MARK fio-started";
# I/O must carry on over the other paths with no verify error.
set -uo pipefail
ADDR=$1; DPORT=$2; NQN=$3; HOSTNQN=$4; RT=${5:-12}
step() { echo; echo "=== $* ($(cut -d' ' -f1 /proc/uptime)s)"; }
fail() { echo "FAIL: $*"; nvme list-subsys 2>&1; dmesg | grep -i nvme | tail -n 30; exit 1; }
modprobe nvme-tcp
echo "nvme_core multipath=$(cat /sys/module/nvme_core/parameters/multipath)"

step "nvme discover"
nvme discover -t tcp -a "$ADDR" -s "$DPORT" --hostnqn="$HOSTNQN" || fail "discover"
n=$(nvme discover -t tcp -a "$ADDR" -s "$DPORT" --hostnqn="$HOSTNQN" | grep -c "subnqn:  $NQN")
echo "discovered paths: $n"

step "nvme connect-all"
nvme connect-all -t tcp -a "$ADDR" -s "$DPORT" --hostnqn="$HOSTNQN" --ctrl-loss-tmo=8 --reconnect-delay=1 --keep-alive-tmo=10 || fail "connect-all"
dev=""
for _ in $(seq 100); do dev=$(ls /dev/nvme*n1 2>/dev/null | grep -E '^/dev/nvme[0-9]+n1$' | head -1); [ -n "$dev" ] && break; sleep 0.1; done
[ -n "$dev" ] || fail "no namespace device"
for _ in $(seq 50); do
  np=$(nvme list-subsys "$dev" | grep -c ' live ')
  [ "$np" -ge "$n" ] && break; sleep 0.2
done
sleep 1
nvme list-subsys "$dev"
opt=$(nvme list-subsys "$dev" | grep -c 'live optimized')
nonopt=$(nvme list-subsys "$dev" | grep -c 'live non-optimized')
echo "PATHS total=$np optimized=$opt non-optimized=$nonopt"
[ "$np" = "$n" ] && [ "$opt" = 1 ] && [ "$nonopt" = $((n - 1)) ] || fail "expected 1 optimized + $((n - 1)) non-optimized live paths"

step "fio verify while the optimized gateway dies"
fio --name=failover --filename="$dev" --direct=1 --ioengine=libaio --rw=randwrite --bs=4k --iodepth=16 \
    --size=32m --verify=crc32c --verify_backlog=128 --time_based --runtime="$RT" --eta=never \
    --output=/tmp/failover.txt & fpid=$!
sleep 1
echo "MARK fio-started"
frc=0; wait $fpid || frc=$?
grep -E 'err=|IOPS=' /tmp/failover.txt | sed 's/^ */  /'
step "after failover"
nvme list-subsys "$dev"
echo "AFTER optimized=$(nvme list-subsys "$dev" | grep -c 'live optimized')"
dmesg | grep -E 'nvme' | tail -n 15
[ $frc = 0 ] && grep -q 'err= 0' /tmp/failover.txt || { cat /tmp/failover.txt; fail "fio rc=$frc"; }
nvme disconnect -n "$NQN" || true
echo "multipath: OK"
