"""Where dlgrade's cgroup-v2 sandbox cgroups go, which controllers they really get, and why not.

Part of the trusted sandbox layer (``cgroups.make_cgroups`` uses it). On the
unified hierarchy a cgroup's children get only the controllers listed in its
``cgroup.subtree_control``, which may name only what its own
``cgroup.controllers`` lists (what the cgroup above delegates), and a non-root
cgroup may enable controllers only while no process sits in it (the "no
internal processes" rule). So:

* the grader's own cgroup (``/proc/self/cgroup``'s ``0::`` line) is the
  parent. When processes sit in it (a ``systemd-run --scope -p Delegate=yes``
  scope, a service, a container's cgroup namespace root) they are moved into
  a leaf of their own, ``<own>/dlgrade-grader``, and the sandboxes become its
  siblings. A grader already in that leaf uses the cgroup above it;
* each wanted controller is enabled on its own, and what is claimed is what
  ``cgroup.subtree_control`` lists when read back, never what was written;
* a controller that is not there is reported "not enforced" with the reason
  and what to do (usually: run under ``systemd-run --scope -p Delegate=yes``,
  which makes systemd delegate memory, pids and cpu to the scope and keep
  them there across ``systemctl daemon-reload``). As root on a systemd host,
  ``dlgrade batch`` and ``dlgrade grade`` re-execute themselves that way when
  their own cgroup lacks a controller the root offers (``scope_command``: a
  default systemd host gives a service memory and pids, never cpu);
* in a container with a private cgroup namespace (Docker on v2: ``0::/`` and
  a root cgroup that has ``cgroup.type``, which the real root has not) the
  container's own limits (memory.max, pids.max, cpu.max of the namespace
  root) are reported as well; they bound every sandbox, and where one is
  lower than a sandbox's own limit the report says that it is the one that
  binds. Docker mounts /sys/fs/cgroup read-only unless the container is
  privileged: then only those container limits (and each sandbox's rlimits)
  hold, and the report says so. ``make vm-test`` checks both with real
  Docker (vm/README.md).

Paths in /proc/self/cgroup are relative to the process's cgroup namespace, and
the mount at /sys/fs/cgroup shows some cgroup at its top (/proc/self/mountinfo's
root field): the grader's own folder is found relative to that, and where the
mount does not hold it (a host's hierarchy bind-mounted into a container with
a cgroup namespace of its own: "/../..") no cgroup is made, and the report says why.

The kernel is changed only through ``write``, ``mkdir`` and ``rmdir``,
which the tests replace with a fake kernel (tests/test_cgroups_v2_hosts.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

WANTED = ("memory", "pids", "cpu")
LEAF = "dlgrade-grader"
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
PROC_SELF_MOUNTINFO = Path("/proc/self/mountinfo")
DELEGATE = (
    "run dlgrade under `systemd-run --scope -p Delegate=yes` (as root, or `--user` where the user manager delegates it)"
)
CONTAINER_FILES = ("memory.max", "pids.max", "cpu.max")
SCOPED = "DLGRADE_SYSTEMD_SCOPE"  # set in the re-executed process: never twice


def write(path: Path, text: str) -> None:
    """Write an existing kernel file (never creates one: a missing interface file is an error)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def mkdir(path: Path) -> None:
    os.mkdir(path)


def rmdir(path: Path) -> None:
    os.rmdir(path)


def read_words(path: Path) -> list:
    try:
        return path.read_text().split()
    except OSError:
        return []


def read_value(path: Path) -> str | None:
    try:
        return " ".join(path.read_text().split())
    except OSError:
        return None


@dataclass
class Host:
    """What the v2 hierarchy gives dlgrade: the parent of its sandbox cgroups and the controllers they get."""

    parent: Path | None
    held: tuple = ()  # the wanted controllers listed in parent/cgroup.subtree_control, read back
    notes: list = field(default_factory=list)  # "not enforced: ..." for each one missing, and why
    container: bool = False  # in a private cgroup namespace (the container's limits are in ``limits()``)
    root: Path = Path("/sys/fs/cgroup")

    def limits(self, sandbox: dict | None = None) -> list:
        """The container's own limits, as its namespace root's files say now (none outside a container).

        ``sandbox``: {file name: value} a sandbox's own cgroup holds; where the container's limit is
        the lower one, the entry says so (the kernel enforces the lowest limit on the path up)."""
        if not self.container:
            return []
        found = []
        for name in CONTAINER_FILES:
            value = read_value(self.root / name)
            if value is None:
                continue
            where = f"{self.root / name}, the whole container's limit"
            own = (sandbox or {}).get(name)
            if own is not None and amount(name, value) < amount(name, own):
                where += f"; lower than the sandbox's own {name} {own}: this one binds"
            found.append(f"container {name} {value} ({where})")
        return found


def amount(name: str, value: str) -> float:
    """A limit file's value as a number to compare: bytes, processes, or CPUs for cpu.max; max is infinite."""
    words = value.split()
    if not words or words[0] == "max":
        return float("inf")
    try:
        if name == "cpu.max":
            return int(words[0]) / int(words[1] if len(words) > 1 else 100_000)
        return int(words[0])
    except ValueError:
        return float("inf")


def cgroup_path() -> str | None:
    """This process's cgroup as /proc/self/cgroup's ``0::`` line names it (relative to its cgroup namespace)."""
    try:
        lines = PROC_SELF_CGROUP.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            return line[3:] or "/"
    return None


def mount_top(root: Path) -> str:
    """Which cgroup the cgroup2 mount at ``root`` shows at its top, named as /proc/self/cgroup names cgroups.

    "/" normally (the hierarchy, or a cgroup namespace's root, mounted whole); a sub-path when a
    subtree is mounted; "/../.." when a hierarchy from outside this cgroup namespace is mounted (a
    host's /sys/fs/cgroup bind-mounted into a container that has a cgroup namespace of its own)."""
    try:
        lines = PROC_SELF_MOUNTINFO.read_text().splitlines()
    except OSError:
        return "/"
    top = "/"
    for line in lines:
        fields = line.split()
        if len(fields) > 4 and fields[4] == str(root) and " - cgroup2 " in line:
            top = fields[3]  # the last mount there is the one that shows
    return top


def own_cgroup(root: Path) -> Path | None:
    """This process's cgroup folder below ``root``; None when the mount there does not show it."""
    path = cgroup_path()
    if path is None:
        return None
    try:
        relative = PurePosixPath(path).relative_to(mount_top(root))
    except ValueError:
        return None
    return root / relative


def find_host(root: Path) -> Host:
    """Choose the parent of the sandbox cgroups (see the module's docstring) and enable what it may."""
    own = own_cgroup(root)
    if own is None:
        path = cgroup_path()
        if path is None:
            return Host(None, notes=["not enforced: cgroup v2: no 0:: line in /proc/self/cgroup"], root=root)
        note = (
            f"not enforced: cgroup v2 memory, pids, cpu: {root} shows the cgroup {mount_top(root)} (/proc/self/mountinfo), "
            f"which does not hold this process's cgroup {path} as /proc/self/cgroup names it (a host's "
            "/sys/fs/cgroup mounted into a container with a cgroup namespace of its own?): sandbox cgroups made "
            "there would not be below this one; mount cgroup2 inside the namespace (Docker: no -v /sys/fs/cgroup; "
            "--privileged for a writable mount); each sandbox has its rlimits only (address space, CPU seconds, "
            "file size, processes)"
        )
        return Host(None, notes=[note], root=root)
    container = own == root and (root / "cgroup.type").exists()
    if own.name == LEAF:  # an earlier dlgrade (our parent process) moved us here
        candidates = [own.parent]
    else:
        candidates = [own] + ([own.parent] if own != root and own.parent != root.parent else [])
    best: tuple | None = None
    for index, parent in enumerate(candidates):
        found = _enable(parent, move_ours=index == 0 and own.name != LEAF)
        if found is not None and (best is None or len(found[0]) > len(best[1])):
            best = (parent, *found)
        if best is not None and len(best[1]) == len(WANTED):
            break
    if best is None:
        where = ", ".join(str(p) for p in candidates)
        what = (
            "give the container a writable /sys/fs/cgroup in its own cgroup namespace (Docker: --privileged; "
            "its default mount is read-only); each sandbox has its rlimits only (address space, CPU seconds, "
            "file size, processes), and the container's own limits below bound all of them together"
            if container
            else DELEGATE
        )
        note = f"not enforced: cgroup v2 memory, pids, cpu: no writable cgroup to put sandboxes in ({where}); {what}"
        return Host(None, notes=[note], container=container, root=root)
    parent, held, notes = best
    return Host(parent, held, notes, container, root)


def _enable(parent: Path, move_ours: bool) -> tuple | None:
    """(controllers held, notes) with ``parent`` as the sandboxes' parent; None when it cannot be one."""
    available = read_words(parent / "cgroup.controllers")
    blocked = ""
    procs = read_words(parent / "cgroup.procs")
    if (
        procs
        and (parent / "cgroup.type").exists()
        and not set(WANTED) <= set(read_words(parent / "cgroup.subtree_control"))
    ):
        if not move_ours:
            return None  # processes we did not start sit there: not ours to move
        leaf = parent / LEAF
        try:
            mkdir(leaf)
        except FileExistsError:
            pass
        except OSError:
            return None
        for pid in procs:
            try:
                write(leaf / "cgroup.procs", pid)
            except OSError:
                pass  # exited, or not ours: checked below
        left = read_words(parent / "cgroup.procs")
        if left:
            blocked = (
                f"processes {', '.join(left[:5])} stay in {parent}/cgroup.procs (the kernel enables controllers "
                "only in a cgroup without processes); start dlgrade in a cgroup of its own"
            )
    for controller in WANTED:
        if controller in available and not blocked:
            try:
                write(parent / "cgroup.subtree_control", f"+{controller}")
            except OSError:
                pass
    try:
        probe = parent / f"dlgrade-probe-{os.getpid()}"
        mkdir(probe)
        rmdir(probe)
    except OSError:
        return None
    enabled = read_words(parent / "cgroup.subtree_control")
    held = tuple(c for c in WANTED if c in enabled)
    notes = []
    for controller in WANTED:
        if controller in held:
            continue
        if controller not in available:
            why = (
                f"{controller} is not in {parent}/cgroup.controllers (the cgroup above does not delegate it); "
                f"{DELEGATE}, or enable {controller} in {parent.parent}/cgroup.subtree_control and in each cgroup above"
            )
        else:
            why = blocked or f"+{controller} written to {parent}/cgroup.subtree_control did not stay there"
        notes.append(f"not enforced: cgroup v2 {controller}: {why}")
    return held, notes


def scope_command(
    argv: list, environ, root: Path = Path("/sys/fs/cgroup"), systemd: Path = Path("/run/systemd/system")
) -> list | None:
    """``systemd-run --scope -p Delegate=yes ... argv`` when that gives the sandboxes a controller our cgroup lacks.

    Only as root on a systemd host with cgroup v2, outside the root cgroup (a container's namespace
    root is left as it is), once (``SCOPED``), and when a probe scope starts. The scope is bound to
    the unit we run in (``BindsTo``, same slice), so stopping that unit still stops the grader.
    None: run here, and the report says what is not enforced (``find_host``'s notes).
    """
    if environ.get(SCOPED) or os.geteuid() != 0 or not systemd.is_dir():
        return None
    systemd_run = shutil.which("systemd-run")
    own = own_cgroup(root)
    if systemd_run is None or own is None or own == root or not (root / "cgroup.controllers").exists():
        return None
    offered = set(read_words(root / "cgroup.controllers")) & set(WANTED)
    here = set(read_words(own / "cgroup.controllers")) | set(read_words(own.parent / "cgroup.controllers"))
    if offered <= here:
        return None
    command = [systemd_run, "--scope", "--quiet", "--collect", "-p", "Delegate=yes"]
    unit = next((part for part in reversed(own.relative_to(root).parts) if part.endswith(".service")), None)
    if unit is not None:
        command += ["-p", f"BindsTo={unit}", "-p", f"After={unit}"]
    if own.parent.name.endswith(".slice"):
        command.append(f"--slice={own.parent.name}")
    try:
        probe = subprocess.run([*command, "--", "true"], capture_output=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    if probe.returncode != 0:
        return None
    return [*command, "--", *argv]


def reexec_in_scope(argv: list) -> None:
    """Replace this process with ``scope_command(argv)`` when there is one (see there); else return."""
    command = scope_command(argv, os.environ)
    if command is None:
        return
    print(
        "dlgrade: running in a systemd scope with memory, pids and cpu delegated (systemd-run --scope -p Delegate=yes)",
        file=sys.stderr,
    )
    sys.stderr.flush()
    sys.stdout.flush()
    os.execve(command[0], command, {**os.environ, SCOPED: "1"})
