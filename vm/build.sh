#!/usr/bin/env bash
# Build (or reuse) the cgroup-v2 guest for `make vm-test`: a Debian bookworm root file system made
# with debootstrap, a venv with what the sandbox, cgroup and attack tests and a numpy batch need
# (installed offline from a host-side wheelhouse), a systemd unit that runs vm/guest.sh at boot,
# all packed into an ext4 image that User-Mode Linux boots (vm/run.sh). See vm/README.md.
#
# Everything lives under .cache/vm/ (git-ignored). Each step leaves a stamp and is skipped when it
# is there; the stamps depend on this script and the package list, so editing them rebuilds.
# Needs root (debootstrap, chroot). Installs user-mode-linux, debootstrap and e2fsprogs with apt
# when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
CACHE=${VM_CACHE:-$REPO/.cache/vm}
ROOTFS=$CACHE/rootfs
WHEELS=$CACHE/wheels
IMAGE=$CACHE/rootfs.ext4
MIRROR=${VM_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
# Debian packages of the guest: systemd as PID 1, the sandbox's tools, Python.
DEBS=systemd,systemd-sysv,udev,dbus,python3,python3-venv,bubblewrap,util-linux,procps,psmisc,kmod,iproute2,ca-certificates
# Docker in the guest (the `container` layout): the daemon, its runtime, nothing else.
DOCKER_DEBS="docker.io containerd runc tini"
# What grading a numpy assignment and the sandbox/cgroup/attack tests import (no TensorFlow,
# no service: those tests are not run in the guest). Versions from constraints.txt.
PIP_PACKAGES=(numpy nbformat nbclient nbgrader pytest matplotlib scikit-learn tqdm "dask[distributed]"
	cryptography ipykernel jinja2 copydetect)
# Stamp keys: the wheelhouse and venv are rebuilt when the package list or the pins change, the
# image when anything in this script does.
PIP_KEY=$( (echo "${PIP_PACKAGES[*]}"; cat constraints.txt) | sha256sum | cut -c1-16)
KEY=$(cat "$0" constraints.txt | sha256sum | cut -c1-16)

log() { printf '[vm build %s] %s\n' "$(date +%T)" "$*"; }
now() { date +%s; }
START=$(now)

if [ "$(id -u)" != 0 ]; then
	echo "vm/build.sh: needs root (debootstrap and chroot)" >&2
	exit 2
fi

need=()
command -v linux >/dev/null || need+=(user-mode-linux)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v mke2fs >/dev/null || need+=(e2fsprogs)
if [ ${#need[@]} -gt 0 ]; then
	log "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q "${need[@]}" >/dev/null 2>&1 || {
		apt-get update -q >/dev/null 2>&1
		apt-get install -y -q "${need[@]}" >/dev/null
	}
fi

mkdir -p "$CACHE"
if [ -f "$IMAGE" ] && [ "$(cat "$CACHE/image.stamp" 2>/dev/null)" = "$KEY" ]; then
	log "cached: $IMAGE ($(($(now) - START)) s)"
	exit 0
fi

# 1. The root file system (debootstrap; ~3-5 min cold, the slowest step).
if [ "$(cat "$CACHE/rootfs.stamp" 2>/dev/null)" != "$DEBS" ]; then
	log "debootstrap $SUITE ($MIRROR)"
	rm -rf "$ROOTFS" "$CACHE/venv.stamp" "$CACHE/docker.stamp"
	debootstrap --variant=minbase --include="$DEBS" "$SUITE" "$ROOTFS" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 || {
		tail -20 "$CACHE/debootstrap.log" >&2
		exit 1
	}
	rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
	echo "$DEBS" >"$CACHE/rootfs.stamp"
fi

# 2. The wheelhouse, downloaded on the host (the guest has no network).
if [ "$(cat "$CACHE/wheels.stamp" 2>/dev/null)" != "$PIP_KEY" ]; then
	log "pip download ${PIP_PACKAGES[*]}"
	PY=python3
	[ -x .venv/bin/python ] && PY=.venv/bin/python
	"$PY" -m pip download -q -d "$WHEELS" -c constraints.txt --only-binary :all: \
		--python-version 3.11 --implementation cp --platform manylinux2014_x86_64 \
		--platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 --platform linux_x86_64 \
		"${PIP_PACKAGES[@]}" pip setuptools wheel
	echo "$PIP_KEY" >"$CACHE/wheels.stamp"
fi

# 3. The guest's venv, installed in a chroot from the wheelhouse only.
if [ "$(cat "$CACHE/venv.stamp" 2>/dev/null)" != "$PIP_KEY" ]; then
	log "venv in the guest (/opt/venv)"
	rm -rf "$ROOTFS/opt/venv" "$ROOTFS/tmp/wheels"
	cp -a "$WHEELS" "$ROOTFS/tmp/wheels"
	cp constraints.txt "$ROOTFS/tmp/constraints.txt"
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 chroot "$ROOTFS" /usr/bin/python3 -m venv /opt/venv
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 chroot "$ROOTFS" /opt/venv/bin/python -m pip install -q --no-index --find-links /tmp/wheels \
		-c /tmp/constraints.txt "${PIP_PACKAGES[@]}"
	rm -rf "$ROOTFS/tmp/wheels" "$ROOTFS/tmp/constraints.txt"
	echo "$PIP_KEY" >"$CACHE/venv.stamp"
fi

# 3b. Docker for the `container` layout (vm/guest.sh): Debian's docker.io (dockerd, containerd, runc),
# installed in a chroot from the mirror, on top of the debootstrap tree (its own stamp: adding it
# does not redo debootstrap). Nothing starts at boot (masked below); guest.sh starts dockerd itself.
if [ "$(cat "$CACHE/docker.stamp" 2>/dev/null)" != "$DOCKER_DEBS" ]; then
	log "apt-get install $DOCKER_DEBS (chroot)"
	cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
	printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
	chmod 755 "$ROOTFS/usr/sbin/policy-rc.d"
	mount -t proc proc "$ROOTFS/proc"
	set +e
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive chroot "$ROOTFS" \
		sh -c "apt-get update -q && apt-get install -y -q --no-install-recommends $DOCKER_DEBS" >"$CACHE/docker-apt.log" 2>&1
	rc=$?
	set -e
	umount "$ROOTFS/proc"
	rm -f "$ROOTFS/usr/sbin/policy-rc.d"
	rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
	if [ $rc != 0 ]; then
		tail -20 "$CACHE/docker-apt.log" >&2
		exit 1
	fi
	echo "$DOCKER_DEBS" >"$CACHE/docker.stamp"
fi

# 4. The guest's configuration: no login, a unit that runs the checkout's vm/guest.sh and powers off.
log "configure"
# The project itself is the checkout, copied to /opt/dlgrade at each boot (vm/guest.sh): a .pth file
# and a `dlgrade` script (pip's console-script form: the __main__ guard matters, multiprocessing's
# spawned workers import __main__) stand for an editable install, so the image never goes stale.
echo /opt/dlgrade >"$ROOTFS/opt/venv/lib/python3.11/site-packages/dlgrade-checkout.pth"
cat >"$ROOTFS/opt/venv/bin/dlgrade" <<'EOF'
#!/opt/venv/bin/python
import sys

from autograder.cli import main

if __name__ == "__main__":
    sys.exit(main())
EOF
chmod 755 "$ROOTFS/opt/venv/bin/dlgrade"
echo dlgrade-vm >"$ROOTFS/etc/hostname"
printf '/dev/ubda / ext4 defaults 0 1\n' >"$ROOTFS/etc/fstab"
mkdir -p "$ROOTFS/mnt/host"
cat >"$ROOTFS/etc/systemd/system/dlgrade-vm-test.service" <<'EOF'
[Unit]
Description=dlgrade vm-test: the sandbox, cgroup and attack tests and a graded batch on cgroup v2
After=local-fs.target
# Power off whatever happens: the host waits for the guest to end.
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
ExecStartPre=/bin/mount -t hostfs none /mnt/host
ExecStart=/bin/bash /mnt/host/vm/guest.sh
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=40min
# This unit only drives the checks: the layouts under test are units of their own (vm/guest.sh).
OOMPolicy=continue

[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/dlgrade-vm-test.service \
	"$ROOTFS/etc/systemd/system/multi-user.target.wants/dlgrade-vm-test.service"
# Docker starts only when vm/guest.sh starts dockerd (the container layout).
for unit in docker.service docker.socket containerd.service; do
	ln -sf /dev/null "$ROOTFS/etc/systemd/system/$unit"
done
# Nothing else to wait for at boot: no getty, no network wait, no time sync.
for unit in getty@tty1.service serial-getty@ttyS0.service systemd-timesyncd.service \
	systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
	fstrim.timer; do
	ln -sf /dev/null "$ROOTFS/etc/systemd/system/$unit"
done
# No passwords in the guest: root is locked (nothing logs in; the unit runs as root).
sed -i 's/^root:[^:]*:/root:*:/' "$ROOTFS/etc/shadow"

# 5. The ext4 image (mke2fs -d copies the tree: no loop device, no mount).
log "mke2fs -d (ext4 image)"
rm -f "$IMAGE"
size_mb=$(($(du -sm "$ROOTFS" | cut -f1) + 1536))
mke2fs -q -t ext4 -d "$ROOTFS" -L dlgrade-vm "$IMAGE" "${size_mb}M"
echo "$KEY" >"$CACHE/image.stamp"
log "built $IMAGE (${size_mb} MB) in $(($(now) - START)) s"
