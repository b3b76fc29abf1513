#!/usr/bin/env bash
# `make vm-test`: build (or reuse) the cgroup-v2 guest, boot it with User-Mode Linux, let its
# systemd run vm/guest.sh as a service, and print one line per guarantee checked. See vm/README.md.
#
# Exit status: 0 when every line is PASS; 1 when a line is FAIL (VM_TEST_ALLOW_FAIL=1: 0 anyway,
# the lines still say FAIL); 2 when the guest did not finish (no status file: hung, crashed, timed out).
# VM_TIMEOUT (seconds, default 2700) bounds the whole boot; VM_MEM (default 3G) is the guest's RAM;
# VM_SCRIPT=PATH (relative to the checkout) runs that script in the guest instead of the checks;
# VM_QUICK=1 runs only the cgroup modules and the CPU-share test of pytest (not the attack module);
# VM_ONLY=container (comma-separated: service, scope, leaf, container, reload) runs only those parts.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
CACHE=${VM_CACHE:-$REPO/.cache/vm}
RES=$CACHE/run
TIMEOUT=${VM_TIMEOUT:-2700}

t0=$(date +%s)
vm/build.sh
t1=$(date +%s)

rm -rf "$RES" "$CACHE/run.cow" "$CACHE/uml"
mkdir -p "$RES" "$CACHE/uml"
quick=()
[ "${VM_QUICK:-0}" = 1 ] && quick=(dlgrade.quick=1)
[ -n "${VM_SCRIPT:-}" ] && quick+=("dlgrade.script=$VM_SCRIPT")
[ -n "${VM_ONLY:-}" ] && quick+=("dlgrade.only=$VM_ONLY")
echo "[vm] booting the guest (User-Mode Linux $(linux --version 2>/dev/null | head -1), up to ${TIMEOUT} s); console: $RES/console.log"
set +e
# timeout signals its whole process group: the UML kernel and its helper processes.
TMPDIR=/dev/shm timeout --kill-after=20 "$TIMEOUT" linux \
	mem="${VM_MEM:-3G}" umid="dlgrade-vm-$$" uml_dir="$CACHE/uml" \
	ubd0="$CACHE/run.cow,$CACHE/rootfs.ext4" root=/dev/ubda rw \
	hostfs="$REPO" con0=null,fd:1 con=null ssl=null \
	init=/lib/systemd/systemd systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all \
	systemd.show_status=0 systemd.log_level=warning "${quick[@]}" \
	</dev/null >"$RES/console.log" 2>&1
rc=$?
set -e
t2=$(date +%s)
rm -f "$CACHE/run.cow"
# A UML kernel killed by the timeout can leave its terminal in raw mode.
if [ -t 1 ]; then stty sane 2>/dev/null || true; fi

echo "[vm] guest ended (linux exit $rc) after $((t2 - t1)) s; build/cache check $((t1 - t0)) s"
grep -E '^=== .*guest up' "$RES/guest.log" 2>/dev/null | sed 's/^=== /[vm] /' || true
if [ ! -s "$RES/status" ]; then
	echo "[vm] the guest did not finish (timeout ${TIMEOUT} s, or it crashed); last console lines:"
	tail -40 "$RES/console.log"
	exit 2
fi
echo "[vm] results (from $RES/lines.txt):"
cat "$RES/lines.txt"
echo "[vm] $(cat "$RES/status"); total $((t2 - t0)) s"
if grep -q ': FAIL' "$RES/lines.txt"; then
	[ "${VM_TEST_ALLOW_FAIL:-0}" = 1 ] && exit 0
	exit 1
fi
