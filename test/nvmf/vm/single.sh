#!/bin/bash
# single.sh ADDR PORT NQN HOSTNQN BAD_HOSTNQN VOLUME_BYTES [FIO_MIB] -- guest side of the
# single-path NVMe/TCP test against `cairn up`: discovery (allowed and unknown host), a refused
# Connect for the unknown host, connect, id-ctrl / id-ns, 64 MiB dd + cmp (the pattern is left
# in the share for the host to compare over NBD), fio crc32c verify, disconnect.
set -uo pipefail
ADDR=$1; PORT=$2; NQN=$3; HOSTNQN=$4; BADNQN=$5; VOLBYTES=$6; FIOMIB=${7:-16}
SHARE=${NVME_VM_SHARE:?run with --share}
step() { echo; echo "=== $* ($(cut -d' ' -f1 /proc/uptime)s)"; }
fail() { echo "FAIL: $*"; dmesg | grep -i nvme | tail -n 20; exit 1; }
modprobe nvme-tcp
# digests need the kernel crypto crc32c; the guest cannot autoload it, so load it here
modprobe crc32c_generic 2>/dev/null; modprobe crc32c-intel 2>/dev/null || true

step "nvme discover (allowed host)"
nvme discover -t tcp -a "$ADDR" -s "$PORT" --hostnqn="$HOSTNQN" || fail "discover"
echo "DISCOVERED $(nvme discover -t tcp -a "$ADDR" -s "$PORT" --hostnqn="$HOSTNQN" | grep -c "subnqn:  $NQN")"
step "nvme discover (unknown host)"
echo "DISCOVERED_UNKNOWN $(nvme discover -t tcp -a "$ADDR" -s "$PORT" --hostnqn="$BADNQN" | grep -c "subnqn:  $NQN")"

step "nvme connect (unknown host: must be refused)"
if nvme connect -t tcp -a "$ADDR" -s "$PORT" -n "$NQN" --hostnqn="$BADNQN" 2>&1; then echo "CONNECT_UNKNOWN accepted"; else echo "CONNECT_UNKNOWN refused"; fi
dmesg | grep -i "nvme" | grep -i -E "invalid host|connect" | tail -n 3

step "nvme connect (header and data digests on)"
nvme connect -t tcp -a "$ADDR" -s "$PORT" -n "$NQN" --hostnqn="$HOSTNQN" -g -G --ctrl-loss-tmo=10 --reconnect-delay=1 || fail "connect"
dev=""
for _ in $(seq 100); do dev=$(ls /dev/nvme*n1 2>/dev/null | grep -E '^/dev/nvme[0-9]+n1$' | head -1); [ -n "$dev" ] && break; sleep 0.1; done
[ -n "$dev" ] || fail "no namespace block device"
ctrl=$(nvme list-subsys "$dev" | grep -o 'nvme[0-9]* tcp' | head -1 | cut -d' ' -f1)
nvme list
nvme list-subsys "$dev"

step "nvme id-ctrl / id-ns"
nvme id-ctrl "/dev/$ctrl" | grep -E '^(vid|sn|mn|fr|mdts|cntlid|ver|nn|sgls|subnqn|ioccsz|iorcsz|maxcmd|cmic|anacap|anagrpmax|nanagrpid|oncs|vwc|kas) '
nvme id-ns "$dev" | grep -E '^(nsze|ncap|nuse|nmic|anagrpid|nguid|nlbaf|flbas|lbaf +[0-9]+ .*in use)'
echo "ID subnqn=$(nvme id-ctrl "/dev/$ctrl" | sed -n 's/^subnqn *: *//p') ver=$(nvme id-ctrl "/dev/$ctrl" | sed -n 's/^ver *: *//p') mdts=$(nvme id-ctrl "/dev/$ctrl" | sed -n 's/^mdts *: *//p')"
echo "ID nsze=$(( $(nvme id-ns "$dev" | sed -n 's/^nsze *: *//p') )) lbads=$(nvme id-ns "$dev" | sed -n 's/.*lbads:\([0-9]*\).*in use.*/\1/p') bytes=$(blockdev --getsize64 "$dev") expect=$VOLBYTES"
nvme smart-log "$dev" | head -n 12

step "dd 64 MiB random data, read back, cmp"
dd if=/dev/urandom of="$SHARE/pattern.bin" bs=1M count=64 status=none
dd if="$SHARE/pattern.bin" of="$dev" bs=1M oflag=direct status=none || fail "dd write"
dd if="$dev" of=/tmp/readback bs=1M count=64 iflag=direct status=none || fail "dd read"
cmp "$SHARE/pattern.bin" /tmp/readback && echo "dd+cmp: OK" || fail "cmp"

step "fio verify (libaio, direct, 4 KiB randwrite, crc32c, $FIOMIB MiB)"
fio --name=verify --filename="$dev" --direct=1 --ioengine=libaio --rw=randwrite --bs=4k --iodepth=16 \
    --offset=128m --size="${FIOMIB}m" --verify=crc32c --verify_fatal=1 --eta=never --output=/tmp/fio.txt; frc=$?
grep -E 'err=|IOPS=|verify' /tmp/fio.txt | sed 's/^ */  /'
[ $frc = 0 ] && grep -q 'err= 0' /tmp/fio.txt && echo "fio verify: OK" || { cat /tmp/fio.txt; fail "fio rc=$frc"; }

step "nvme disconnect"
nvme disconnect -n "$NQN" || fail "disconnect"
echo "single: OK"
