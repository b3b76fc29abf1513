#!/bin/bash
# Runs inside the cgroup-v2 guest, at boot, as the systemd service dlgrade-vm-test.service (so the
# grader starts where a host's service would: /system.slice/dlgrade-vm-test.service). The host's
# checkout is hostfs-mounted at /mnt/host (read here, copied to /opt/dlgrade); results go to
# /mnt/host/.cache/vm/run/: lines.txt (one line per guarantee), guest.log, junit-*.xml, status.
# The unit powers the guest off when this script ends, whatever its exit status.
#
# Layouts, each checked with vm/check.py (dlgrade's own cgroups made to show each limit) and a graded
# batch whose results.json is compared with the kernel's files:
#   service  the grader in a plain system service (a default systemd host: root delegates memory pids)
#   scope    the grader under `systemd-run --scope -p Delegate=yes` (the supported way)
#   leaf     the grader in a leaf cgroup of its own below a delegated scope (<scope>/grader)
# and, last, a daemon-reload while a learner runs in a plain service with cpu enabled by hand (case 3).
# The pytest modules run once, in the service layout.
set -uo pipefail
HOST=/mnt/host
RES=$HOST/.cache/vm/run
mkdir -p "$RES"
exec > >(tee -a "$RES/guest.log") 2>&1
LINES=$RES/lines.txt
: >"$LINES"
export HOME=/root PATH=/opt/venv/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1
QUICK=0
grep -qw 'dlgrade.quick=1' /proc/cmdline && QUICK=1
# VM_ONLY=a,b (vm/run.sh): only those parts (service, scope, leaf, container, reload).
ONLY=$(sed -n 's/.*dlgrade\.only=\([^ ]*\).*/\1/p' /proc/cmdline)
want() { [ -z "$ONLY" ] || [[ ,$ONLY, == *,$1,* ]]; }
T0=$(date +%s)
stamp() { echo "=== $(date +%T) (+$(($(date +%s) - T0)) s) $*"; }
# Pass everything on to the log; keep the guarantee lines ("[layout] what: PASS|FAIL|SKIP|KNOWN (...)";
# KNOWN: a documented limitation, checked to fail only the way it is documented to).
record() {
	local l
	while IFS= read -r l; do
		echo "$l"
		if [[ $l =~ ^\[[a-z-]+\]\ [^\(]*:\ (PASS|FAIL|SKIP|KNOWN) ]]; then echo "$l" >>"$LINES"; fi
	done
}

stamp "guest up: $(uname -r), $(nproc) CPU, $(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo) MB, uptime $(cut -d' ' -f1 /proc/uptime) s"
echo "mounts: $(grep cgroup /proc/mounts)"
echo "root cgroup.subtree_control: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
echo "systemd $(systemctl --version | head -1)"
v1=$(grep -c ' cgroup ' /proc/mounts)
{
	[ -f /sys/fs/cgroup/cgroup.controllers ] && [ "$v1" = 0 ] && echo "[guest] cgroup v2 only, no v1 hierarchy: PASS ($(uname -r), systemd $(systemctl --version | head -1 | cut -d' ' -f2))" ||
		echo "[guest] cgroup v2 only, no v1 hierarchy: FAIL ($v1 v1 mounts)"
} | record

stamp "copy the checkout"
mkdir -p /opt/dlgrade
tar -C "$HOST" --exclude=./.git --exclude=./.venv --exclude=./.cache --exclude='./docker/wheels*' \
	--exclude=./out --exclude=./demo-out --exclude=./bench/out --exclude=./serve-course \
	--exclude='*.egg-info' --exclude=__pycache__ --exclude=.pytest_cache -cf - . | tar -C /opt/dlgrade -xf -
cd /opt/dlgrade || exit 1
du -sh /opt/dlgrade

# CMD=(the command that runs "$@" in /opt/dlgrade with the grader placed as LAYOUT says, in unit UNIT).
layout_cmd() {
	local layout=$1 unit=$2
	shift 2
	case $layout in
	service) # a transient service with systemd's defaults, like a course team's dlgrade.service
		CMD=(systemd-run --wait --pipe --collect --unit="$unit" -p WorkingDirectory=/opt/dlgrade
			--setenv=HOME=/root --setenv=PATH="$PATH" --setenv=LANG=C.UTF-8 --setenv=PYTHONDONTWRITEBYTECODE=1 -- "$@") ;;
	scope) CMD=(systemd-run --scope --collect -p Delegate=yes --unit="$unit" -- "$@") ;;
	leaf) # shellcheck disable=SC2016
		CMD=(systemd-run --scope --collect -p Delegate=yes --unit="$unit" -- bash -c '
			cg=/sys/fs/cgroup$(sed -n "s/^0:://p" /proc/self/cgroup)
			mkdir "$cg/grader" && echo $$ >"$cg/grader/cgroup.procs" && exec "$@"' leaf "$@") ;;
	esac
}

# The batch, then dlgrade's cgroups made to show each limit (the OOM kill last: it may end the unit).
check_layout() {
	local layout=$1 learners=$2
	stamp "layout $layout: batch"
	layout_cmd "$layout" "dlgrade-vm-$layout-batch" python vm/check.py batch "$layout" "/tmp/out-$layout" \
		examples/submissions --assignment initialization --workers 1 ${learners:+--only "$learners"}
	timeout 900 "${CMD[@]}" 2>&1 | record
	stamp "layout $layout: probe"
	layout_cmd "$layout" "dlgrade-vm-$layout-probe" python vm/check.py probe "$layout"
	timeout 300 "${CMD[@]}" >"/tmp/probe-$layout.log" 2>&1
	cat "/tmp/probe-$layout.log"
	record <"/tmp/probe-$layout.log" >/dev/null
	# The OOM kill may have ended the unit before check.py could say so: then the kernel's log says
	# whether memory.max killed the hog, and the unit's journal why the grader is gone.
	if grep -q '^\[.*\] cgroup v2 used by dlgrade: PASS' "/tmp/probe-$layout.log" &&
		! grep -q "survives a learner's OOM kill" "/tmp/probe-$layout.log"; then
		if ! grep -q '^\[.*\] memory.max enforced:' "/tmp/probe-$layout.log"; then
			kill=$(journalctl -k -q -o cat | grep -E "oom_memcg=/system.slice/dlgrade-vm-$layout-probe[^ ]*/dlgrade-[0-9]+-" | tail -1 | grep -oE 'oom_memcg=[^,]+')
			if [ -n "$kill" ]; then
				echo "[$layout] memory.max enforced: PASS (the kernel's log: OOM kill in $kill; check.py did not live to read memory.events)"
			else
				echo "[$layout] memory.max enforced: FAIL (no OOM kill in the sandbox's cgroup in the kernel's log)"
			fi | record
		fi
		why=$(journalctl -q -o cat -u "dlgrade-vm-$layout-probe.*" | grep -iE 'oom|result' | paste -sd ';' - | cut -c1-300)
		echo "[$layout] grader survives a learner's OOM kill: FAIL (systemd ended the grader's unit: ${why:-see guest.log}; OOMPolicy=stop, systemd's default, acts on an OOM kill anywhere below the unit)" | record
	fi
	mkdir -p "$RES/out-$layout" && cp -r "/tmp/out-$layout/." "$RES/out-$layout/" 2>/dev/null
}

# VM_SCRIPT=path (vm/run.sh) runs that script of the checkout here instead of the checks below.
script=$(sed -n 's/.*dlgrade\.script=\([^ ]*\).*/\1/p' /proc/cmdline)
if [ -n "$script" ]; then
	stamp "running $script instead of the checks"
	timeout 1500 bash "$HOST/$script" 2>&1 | record
	echo "guest ran $(($(date +%s) - T0)) s (script $script)" | tee "$RES/status"
	exit 0
fi

# pytest TEST (a module or a module::test) with the grader placed as LAYOUT says; one line.
run_pytest() {
	local layout=$1 t=$2 known=${3:-} name start rc summary failed verdict
	name=$layout-$(basename "${t%%::*}" .py)
	[ "$t" != "${t%%::*}" ] && name=$name-${t##*::}
	stamp "layout $layout: pytest $t"
	start=$(date +%s)
	layout_cmd "$layout" "dlgrade-vm-pytest" bash -c "cd /opt/dlgrade && python -m pytest -q -p no:cacheprovider $DESELECT --junitxml='$RES/junit-$name.xml' '$t' >'/tmp/pytest-$name.log' 2>&1"
	timeout 1500 "${CMD[@]}"
	rc=$?
	[ $rc = 124 ] && echo "(pytest $t: timed out after 1500 s)" >>"/tmp/pytest-$name.log"
	tail -15 "/tmp/pytest-$name.log"
	summary=$(grep -E '[0-9]+ (passed|failed|skipped|error)' "/tmp/pytest-$name.log" | tail -1 | tr -d '=' | sed 's/^ *//')
	failed=$(grep -E '^(FAILED|ERROR) ' "/tmp/pytest-$name.log" | cut -c1-200 | paste -sd ';' -)
	if [ $rc = 0 ]; then verdict=PASS; else verdict=FAIL; fi
	if [ $rc = 1 ] && [ "$known" = known-cpu ] && [ "$(grep -c '^FAILED' "/tmp/pytest-$name.log")" = 1 ] &&
		grep -q '^>  *assert any(limit.endswith("cpu 1")' "/tmp/pytest-$name.log"; then
		verdict=KNOWN
		failed="in-process grading in a plain service sets no CPU quota (only the CLI re-executes in a delegated scope); the report says so"
	fi
	echo "[$layout] pytest $t: $verdict (${summary:-exit $rc}, $(($(date +%s) - start)) s${failed:+; $failed})" | record
}

# No TensorFlow in the guest: the TF tag attack grades the tensorflow_intro assignment.
DESELECT=--deselect=tests/test_attacks.py::test_tf_type_tags_are_claims_checked_against_the_data
CPU_TEST=tests/test_attacks.py::test_cpu_hog_gets_one_core_alone

# 1. A plain system service (case 2 of issue 24: a default systemd host). The CLI re-executes itself
# in a delegated scope there; in-process grading (the pytest modules call grade_notebook) does not,
# so the CPU-share test in this layout is a known limitation when it fails on the report's cpu line.
if want service; then
	check_layout service ""
	run_pytest service "$CPU_TEST" known-cpu
fi

# 2. `systemd-run --scope -p Delegate=yes` (the supported way, where the pytest modules run),
# 3. a leaf below one (case 1).
if want scope; then
	check_layout scope alice
	TESTS=(tests/test_cgroups.py tests/test_cgroups_v2_hosts.py tests/test_attacks.py tests/test_isolation_everywhere.py)
	[ "$QUICK" = 1 ] && TESTS=(tests/test_cgroups.py tests/test_cgroups_v2_hosts.py "$CPU_TEST")
	for t in "${TESTS[@]}"; do
		run_pytest scope "$t"
	done
fi
want leaf && check_layout leaf alice

# 4. Case 4: the grader in a Docker container as Docker makes it on cgroup v2 by default (its own
# cgroup namespace, limits set from outside with --memory/--pids-limit/--cpus) with /sys/fs/cgroup
# read-only (an ordinary container) and writable (--privileged). Real Docker (Debian's docker.io:
# dockerd, containerd, runc), vfs storage, no network; the image is the guest's /etc and top-level
# links, with /usr, /opt/venv and the checkout bind-mounted. Before case 3, which changes the root.
DOCKER_MEMORY=1536m DOCKER_PIDS=400 DOCKER_CPUS=0.8
DOCKER_EXPECT="$((1536 * 1024 * 1024))|$DOCKER_PIDS|80000 100000" # memory.max|pids.max|cpu.max
start_docker() {
	local t0
	t0=$(date +%s)
	dockerd --bridge=none --iptables=false --ip6tables=false --storage-driver=vfs >/tmp/dockerd.log 2>&1 &
	DOCKERD_PID=$!
	for _ in $(seq 120); do
		docker info >/dev/null 2>&1 && break
		sleep 1
	done
	docker info >/dev/null 2>&1 || return 1
	echo "dockerd up in $(($(date +%s) - t0)) s: $(docker info --format '{{.ServerVersion}}, cgroup v{{.CgroupVersion}} driver {{.CgroupDriver}}, storage {{.Driver}}, {{.SecurityOptions}}')"
	rm -rf /tmp/img && mkdir -p /tmp/img/{tmp,root,run,var/tmp,opt,mnt,proc,sys,dev,out}
	chmod 1777 /tmp/img/tmp /tmp/img/var/tmp
	cp -a /etc /bin /sbin /lib /lib64 /tmp/img/
	tar -C /tmp/img -cf - . | docker import - dlgrade-vm-base >/dev/null || return 1
	echo "image dlgrade-vm-base imported ($(($(date +%s) - t0)) s since dockerd started)"
}
container_layout() {
	local layout=$1 out=/tmp/out-$1 wpid
	shift
	mkdir -p "$out" && chmod 700 "$out"
	local run=(docker run --rm --network none --cgroupns private --memory "$DOCKER_MEMORY"
		--pids-limit "$DOCKER_PIDS" --cpus "$DOCKER_CPUS" -v /usr:/usr:ro -v /opt/venv:/opt/venv:ro
		-v /opt/dlgrade:/opt/dlgrade -v "$out:/out" -w /opt/dlgrade -e HOME=/root -e PATH="$PATH"
		-e LANG=C.UTF-8 -e PYTHONDONTWRITEBYTECODE=1 "$@" dlgrade-vm-base)
	stamp "layout $layout: batch (docker run ${*:-(no extra flags)})"
	# The container's cgroup as the guest sees it, while the batch runs.
	(while :; do
		find /sys/fs/cgroup -maxdepth 3 -type d -name 'docker-*.scope' | while read -r d; do
			v="$(cat "$d/memory.max" 2>/dev/null)|$(cat "$d/pids.max" 2>/dev/null)|$(cat "$d/cpu.max" 2>/dev/null)"
			[[ $v =~ ^[^|]+\|[^|]+\|[^|]+$ ]] && echo "$(cut -d' ' -f1 /proc/uptime) $d $v"
		done
		sleep 0.2
	done) >"/tmp/outside-$layout.txt" 2>/dev/null &
	wpid=$!
	local extra=()
	[ "$layout" != container-rw ] && extra=(--accept-unisolated) # setpriv: bwrap is blocked by Docker's seccomp
	timeout 900 "${run[@]}" python vm/check.py batch "$layout" /out/batch examples/submissions \
		--assignment initialization --workers 1 --only alice "${extra[@]}" 2>&1 | record
	kill "$wpid" 2>/dev/null
	wait "$wpid" 2>/dev/null
	python vm/check.py outside "$layout" "/tmp/outside-$layout.txt" "$out/batch/container-kernel.json" "$DOCKER_EXPECT" | record
	stamp "layout $layout: probe"
	timeout 300 "${run[@]}" python vm/check.py probe "$layout" 2>&1 | record
	mkdir -p "$RES/out-$layout" && cp -r "$out/." "$RES/out-$layout/" 2>/dev/null
}
if want container; then
	stamp "layout container: dockerd"
	if start_docker; then
		container_layout container-ro
		container_layout container-rw --privileged
		# A writable mount the other way: the guest's whole hierarchy bind-mounted over the container's
		# own (mountinfo's top "/../.."), while /proc/self/cgroup still says 0::/.
		container_layout container-bind -v /sys/fs/cgroup:/sys/fs/cgroup:rw
	else
		tail -30 /tmp/dockerd.log
		echo "[container] dockerd starts: FAIL (see guest.log)" | record
	fi
	[ -n "${DOCKERD_PID:-}" ] && kill "$DOCKERD_PID"
fi

# 5. Case 3: cpu enabled by hand in a plain service (no re-execution), taken back by a
# `systemctl daemon-reload` while a learner runs: the report must not claim the quota. Last, since
# it changes the root's and system.slice's subtree_control.
if want reload; then
	stamp "layout service: daemon-reload during a grade"
	layout_cmd service dlgrade-vm-service-reload env DLGRADE_SYSTEMD_SCOPE=1 python vm/check.py reload service
	timeout 300 "${CMD[@]}" >/tmp/reload.log 2>&1
	record </tmp/reload.log >/dev/null
	cat /tmp/reload.log
fi

stamp "done"
fails=$(grep -c ': FAIL' "$LINES")
echo "guest ran $(($(date +%s) - T0)) s; $(grep -c ': PASS' "$LINES") PASS, $fails FAIL, $(grep -c ': KNOWN' "$LINES") KNOWN" | tee "$RES/status"
sync
