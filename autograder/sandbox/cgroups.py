"""Cgroups per sandbox: memory, pids and a CPU quota, on cgroup v1 or v2.

Part of the trusted sandbox layer (``isolation.start`` makes them and puts the
sandbox in them before it execs). See the notes below on each version.
"""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.sandbox import settings

if TYPE_CHECKING:
    from autograder.sandbox.isolation import Limits


# ------------------------------------------------------------------ cgroups
#
# One set of cgroups per sandbox and per submission: memory, pids and a CPU
# quota (``Limits.cpus``), on cgroup v1 (one hierarchy per controller) or v2
# (one unified hierarchy: memory.max, pids.max, cpu.max, cgroup.kill). A
# submission's cgroups are killed as a whole when it ends. Verified on a v1
# host; the v2 code follows the kernel's cgroup-v2 interface and is used when
# /sys/fs/cgroup/cgroup.controllers exists.

CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_V1 = CGROUP_ROOT
V1_CONTROLLERS = ("pids", "memory", "cpu")
CPU_PERIOD_US = 100_000
# The sandbox's pids cgroup holds its zygote (with its threads) beside the learner: RLIMIT_NPROC
# caps the learner's uid at Limits.processes, and this much more is the zygote's, so that a fork
# bomb that fills its share still leaves the zygote the fork it needs to kill the bomb (uid mode)
# and to start the next submission.
ZYGOTE_PIDS = 128


def cgroup_version() -> int | None:
    """2 (unified), 1 (per-controller hierarchies), or None (no writable cgroups, or the settings say none)."""
    return _cgroup_version() if settings.current().cgroups else None


@cache
def _cgroup_version() -> int | None:
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return 2 if _v2_parent() is not None else None
    try:
        for controller in ("pids", "memory"):
            probe = CGROUP_ROOT / controller / f"dlgrade-probe-{os.getpid()}"
            probe.mkdir()
            probe.rmdir()
        return 1
    except OSError:
        return None


def cgroups_writable() -> bool:
    return cgroup_version() is not None


@cache
def _v2_parent() -> Path | None:
    """Where our v2 cgroups go: our own cgroup when it may delegate memory, pids and cpu to children.

    As root on the host that is the root cgroup; in a delegated subtree (a
    systemd user slice, a container) it must be a cgroup we may write whose
    subtree_control accepts the controllers (the kernel refuses that while
    processes sit in it, so the grader must run in a leaf of its own).
    """
    try:
        line = next(l for l in Path("/proc/self/cgroup").read_text().splitlines() if l.startswith("0::"))
    except (OSError, StopIteration):
        return None
    own = CGROUP_ROOT / line[3:].lstrip("/")
    for parent in (own, own.parent):
        try:
            wanted = {"memory", "pids", "cpu"} & set((parent / "cgroup.controllers").read_text().split())
            (parent / "cgroup.subtree_control").write_text(" ".join("+" + c for c in sorted(wanted)))
            probe = parent / f"dlgrade-probe-{os.getpid()}"
            probe.mkdir()
            probe.rmdir()
            return parent
        except OSError:
            continue
    return None


@dataclass
class Cgroups:
    """The cgroup folders of one sandbox or one submission (v1: one per controller)."""

    paths: list
    version: int | None = None
    enforced: list = field(default_factory=list)  # e.g. ["memory 2048 MB", "pids 512", "cpu 1.0"]

    def kill(self) -> None:
        for path in self.paths:
            _kill_cgroup(path)

    def remove(self) -> None:
        self.kill()
        for path in self.paths:
            for _ in range(20):
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError:  # still emptying: the last processes are exiting
                    time.sleep(0.01)
        self.paths = []

    def memory_exceeded(self) -> bool:
        return memory_events(self.paths)

    def memory_event_count(self) -> int:
        """How often the memory limit was hit so far (v1 failcnt, v2 memory.events max + oom_kill)."""
        return memory_event_count(self.paths)


# A sandbox's cgroups are named after the grading process that made them, so that cgroups
# left by one that was killed (kill -9 skips every clean-up) can be told from those in use.
_CGROUP_NAME = re.compile(r"dlgrade-(\d+)-[0-9a-f]{12}")


def _cgroup_folders() -> list:
    version = cgroup_version()
    if version == 1:
        return [CGROUP_ROOT / controller for controller in V1_CONTROLLERS]
    return [_v2_parent()] if version == 2 else []


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, under another uid
    return True


@cache
def remove_stale_cgroups() -> int:
    """Remove the empty cgroups of grading processes that are gone; how many. Once per process."""
    removed = 0
    for folder in _cgroup_folders():
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            found = _CGROUP_NAME.fullmatch(entry.name)
            if found is None or _process_alive(int(found.group(1))):
                continue
            try:
                entry.rmdir()  # refused while a process is still in it
                removed += 1
            except OSError:
                pass
    return removed


def make_cgroups(limits: Limits) -> Cgroups:
    """New cgroups with ``limits``' memory, processes and CPU share (empty when cgroups do not work)."""
    version = cgroup_version()
    if version is not None:
        remove_stale_cgroups()
    name = f"dlgrade-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    made = Cgroups([], version)
    memory = limits.memory_mb * 1024 * 1024
    quota = f"{int(limits.cpus * CPU_PERIOD_US)} {CPU_PERIOD_US}" if limits.cpus else "max"
    try:
        if version == 2:
            parent = _v2_parent()
            assert parent is not None  # cgroup_version() is 2 only when there is one
            path = parent / name
            path.mkdir()
            made.paths.append(str(path))
            for key, value, label in (
                ("memory.max", memory, f"memory {limits.memory_mb} MB"),
                ("memory.swap.max", 0, None),
                ("pids.max", limits.processes + ZYGOTE_PIDS, f"pids {limits.processes} + {ZYGOTE_PIDS} for the zygote"),
                ("cpu.max", quota, f"cpu {limits.cpus:g}" if limits.cpus else None),
            ):
                try:
                    (path / key).write_text(str(value))
                    if label:
                        made.enforced.append(label)
                except OSError:
                    pass
        elif version == 1:
            for controller in V1_CONTROLLERS:
                folder = CGROUP_ROOT / controller
                if not folder.is_dir():
                    continue
                path = folder / name
                path.mkdir()
                made.paths.append(str(path))
                if controller == "pids":
                    (path / "pids.max").write_text(str(limits.processes + ZYGOTE_PIDS))
                    made.enforced.append(f"pids {limits.processes} + {ZYGOTE_PIDS} for the zygote")
                elif controller == "memory":
                    (path / "memory.limit_in_bytes").write_text(str(memory))
                    made.enforced.append(f"memory {limits.memory_mb} MB")
                    try:
                        (path / "memory.memsw.limit_in_bytes").write_text(str(memory))
                    except OSError:
                        pass  # no swap accounting
                elif controller == "cpu" and limits.cpus:
                    (path / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
                    (path / "cpu.cfs_quota_us").write_text(str(int(limits.cpus * CPU_PERIOD_US)))
                    made.enforced.append(f"cpu {limits.cpus:g}")
    except OSError:
        pass
    made.enforced = [f"cgroup v{version} {label}" for label in made.enforced]
    return made


def _kill_cgroup(path: str) -> None:
    kill_file = Path(path, "cgroup.kill")  # v2: the kernel kills the whole cgroup at once
    if kill_file.exists():
        try:
            kill_file.write_text("1")
        except OSError:
            pass
    for _ in range(50):
        try:
            pids = [int(p) for p in Path(path, "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def memory_events(cgroups: list) -> bool:
    """True when a memory cgroup hit its limit (the learner ran out of memory)."""
    return memory_event_count(cgroups) > 0


def memory_event_count(cgroups: list) -> int:
    total = 0
    for path in cgroups:
        failcnt, events = Path(path, "memory.failcnt"), Path(path, "memory.events")
        try:
            if failcnt.exists():
                total += int(failcnt.read_text())
            if events.exists():
                counts = dict(line.split() for line in events.read_text().splitlines() if line.strip())
                total += int(counts.get("max", 0)) + int(counts.get("oom_kill", 0))
        except (OSError, ValueError):
            pass
    return total
