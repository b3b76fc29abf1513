"""Cgroups per sandbox: memory, pids and a CPU quota, on cgroup v1 or v2.

Part of the trusted sandbox layer (``isolation.start`` makes them and puts the
sandbox in them before it execs). See the notes below on each version.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from autograder.sandbox import cgroup_v2, settings

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
        return 2 if v2_host().parent is not None else None
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
def v2_host() -> cgroup_v2.Host:
    """The parent of our v2 cgroups and the controllers it really gives them (see cgroup_v2.py). Once per process."""
    return cgroup_v2.find_host(CGROUP_ROOT)


def _v2_parent() -> Path | None:
    return v2_host().parent


@dataclass
class Cgroups:
    """The cgroup folders of one sandbox or one submission (v1: one per controller).

    ``enforced``: the limits set and read back (e.g. "cgroup v2 memory 2048 MB");
    ``notes``: those that are not, and why; ``checks``: (label, controller, file,
    value) to read again at the end (``verify``), so that the report lists only
    what held throughout; ``host``: the v2 host (its container's own limits).
    """

    paths: list
    version: int | None = None
    enforced: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    checks: list = field(default_factory=list)
    host: cgroup_v2.Host | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def verify(self) -> None:
        """Move each limit that no longer holds (its controller taken back, its file changed) to the notes.

        Any thread: a zygote's cgroups are read by each learner's report and at the zygote's end."""
        with self._lock:
            self._verify()

    def _verify(self) -> None:
        if not self.paths:
            return
        parent = self.host.parent if self.version == 2 and self.host is not None else None
        enabled = set(cgroup_v2.read_words(parent / "cgroup.subtree_control")) if parent is not None else None
        for check in list(self.checks):
            label, controller, file, value = check
            now = cgroup_v2.read_value(file)
            if enabled is not None and controller not in enabled:
                why = (
                    f"{controller} was taken out of {parent}/cgroup.subtree_control during the grade "
                    f"(a `systemctl daemon-reload` does that to a cgroup systemd did not delegate); {cgroup_v2.DELEGATE}"
                )
            elif now != value:
                why = f"{file} reads {now!r} at the end, not {value!r}"
            else:
                continue
            self.checks.remove(check)
            self.enforced.remove(label)
            self.notes.append(f"not enforced throughout: {label}: {why}")

    def held(self) -> tuple:
        """For the report: the limits that held so far, what did not and why, and a container's own limits."""
        with self._lock:
            self._verify()
            own = {Path(check[2]).name: check[3] for check in self.checks}  # this sandbox's files, as set
            return tuple(self.enforced + self.notes + (self.host.limits(own) if self.host is not None else []))

    def kill(self) -> None:
        self.verify()  # before the end of its life: what held throughout
        for path in self.paths:
            _kill_cgroup(path)

    def remove(self) -> None:
        self.kill()
        for path in self.paths:
            for _ in range(20):
                try:
                    cgroup_v2.rmdir(Path(path))
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
    """New cgroups with ``limits``' memory, processes and CPU share (empty when cgroups do not work).

    Each limit is claimed only when written and read back; on v2, only for a
    controller the parent's subtree_control lists (cgroup_v2.py).
    """
    version = cgroup_version()
    if version is not None:
        remove_stale_cgroups()
    name = f"dlgrade-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    made = Cgroups([], version)
    if settings.current().cgroups and (CGROUP_ROOT / "cgroup.controllers").exists():
        made.host = v2_host()
        made.notes = list(made.host.notes)
    memory = limits.memory_mb * 1024 * 1024
    quota = f"{int(limits.cpus * CPU_PERIOD_US)} {CPU_PERIOD_US}" if limits.cpus else "max"
    pids = f"pids {limits.processes} + {ZYGOTE_PIDS} for the zygote"

    def claim(label: str, controller: str, file: Path, value: object) -> None:
        label, value = f"cgroup v{version} {label}", " ".join(str(value).split())
        if cgroup_v2.read_value(file) == value:
            made.enforced.append(label)
            made.checks.append((label, controller, file, value))
        else:
            made.notes.append(f"not enforced: {label}: {file} reads {cgroup_v2.read_value(file)!r}, not {value!r}")

    try:
        if version == 2:
            assert made.host is not None and made.host.parent is not None  # cgroup_version() is 2 only then
            path = made.host.parent / name
            cgroup_v2.mkdir(path)
            made.paths.append(str(path))
            for controller, key, value, label in (
                ("memory", "memory.max", memory, f"memory {limits.memory_mb} MB"),
                ("memory", "memory.swap.max", 0, None),
                ("pids", "pids.max", limits.processes + ZYGOTE_PIDS, pids),
                ("cpu", "cpu.max", quota, f"cpu {limits.cpus:g}" if limits.cpus else None),
            ):
                if controller not in made.host.held:
                    continue  # its note says why
                try:
                    cgroup_v2.write(path / key, str(value))
                except OSError as exc:
                    if label:
                        made.notes.append(f"not enforced: cgroup v2 {label}: writing {path / key} failed ({exc})")
                    continue
                if label:
                    claim(label, controller, path / key, value)
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
                    claim(pids, "pids", path / "pids.max", limits.processes + ZYGOTE_PIDS)
                elif controller == "memory":
                    (path / "memory.limit_in_bytes").write_text(str(memory))
                    claim(f"memory {limits.memory_mb} MB", "memory", path / "memory.limit_in_bytes", memory)
                    try:
                        (path / "memory.memsw.limit_in_bytes").write_text(str(memory))
                    except OSError:
                        pass  # no swap accounting
                elif controller == "cpu" and limits.cpus:
                    (path / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
                    (path / "cpu.cfs_quota_us").write_text(str(int(limits.cpus * CPU_PERIOD_US)))
                    claim(f"cpu {limits.cpus:g}", "cpu", path / "cpu.cfs_quota_us", int(limits.cpus * CPU_PERIOD_US))
    except OSError as exc:
        made.notes.append(f"not enforced: cgroup v{version}: {exc}")
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
