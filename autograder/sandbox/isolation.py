"""Start the learner process in the strongest sandbox this machine offers.

Strategies, strongest first:

``bwrap``    bubblewrap: new mount, pid, net, ipc and uts namespaces; the root
             filesystem is read-only and holds only the system, the Python
             installation and the grader's child program; a tmpfs is the only
             writable place; new session; dies with its parent. A zygote stays
             root inside (as root: with ZYGOTE_CAPS only; unprivileged: root of
             its own user namespace) and forks each learner into namespaces of
             its own as a uid the zygote never has (see zygote.py). A cold
             sandbox (DirectSpawner) runs as a private uid.
``setpriv``  no bubblewrap (e.g. inside Docker, whose seccomp profile blocks
             it; there the container is the sandbox): the learner drops to a
             private non-root uid with no capabilities and no_new_privs, in
             namespaces of its own where the kernel allows it (root on a host),
             else killed whole by uid after each submission. The grader's files
             must not be readable by that uid: :func:`ensure_isolated` checks
             it before grading and refuses unless told to accept it.
``plain``    a subprocess with resource limits only. The report says the
             submission was not isolated.

GPUs are off unless the settings request some (``child_cuda_devices``, i.e.
``DLGRADE_CHILD_CUDA_VISIBLE_DEVICES``, non-empty): then bubblewrap's private
/dev gets a ``--dev-bind`` of each NVIDIA device node that exists
(:func:`gpu_device_nodes`); the driver's libraries need nothing more (see
:func:`gpu_binds`). Under setpriv the learner sees the host's (or the
container's) /dev; with GPUs off, its namespaces (where it has them) cover each
node with /dev/null (:func:`hidden_gpu_nodes`).

Every strategy applies rlimits with ``prlimit`` (address space, CPU seconds,
file size, processes) and, where cgroups are writable (v1 or v2), memory, pids
and CPU-quota cgroups per sandbox.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from autograder.sandbox import settings, tf_start
from autograder.sandbox.cgroups import Cgroups, make_cgroups

SANDBOX_UID = 65534
# Private uids (zygotes, when we are root) are PRIVATE_UID_BASE + pid * PRIVATE_UID_SLOTS + slot:
# no user or service of the machine has them, and two live graders of one pid namespace never share one.
PRIVATE_UID_BASE = 1_500_000_000
PRIVATE_UID_SLOTS = 64
_private_uid_counter = itertools.count()
WORKDIR = "/sandbox"  # the submission's helper files, read-only
GRADER_DIR = "/grader"  # child.py and the learner-side modules (spawn.LEARNER_SIDE_MODULES), read-only


@dataclass
class Limits:
    # The defaults are the assignment's (catalogue.AssignmentConfig); Assignment.limits() builds this.
    memory_mb: int  # resident memory (cgroup), when cgroups work
    address_space_mb: int  # RLIMIT_AS, a coarse cap; TF needs ~3.7x its resident size
    cpu_seconds: int  # RLIMIT_CPU for the whole process tree's each process
    processes: int  # RLIMIT_NPROC (counts threads; enforced for non-root uids) and pids cgroup
    file_size_mb: int = 64  # RLIMIT_FSIZE
    cpus: float = 1.0  # CPU quota of the sandbox (cgroup cpu controller), in CPUs; 0: none


@dataclass
class SandboxProcess:
    popen: subprocess.Popen
    strategy: str
    cgroups: Cgroups = field(default_factory=lambda: Cgroups([]))

    def kill(self) -> None:
        """Kill the learner and everything it started, then release cgroups."""
        if self.cgroups is not None:
            self.cgroups.kill()
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.popen.kill()
        except ProcessLookupError:
            pass
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if self.cgroups is not None:
            self.cgroups.remove()


# ------------------------------------------------------------------ detection


def available_strategy() -> str:
    """The settings' strategy, else the strongest this machine offers."""
    return settings.current().strategy or _strongest_strategy()


@cache
def _strongest_strategy() -> str:
    if shutil.which("bwrap") and _bwrap_works():
        return "bwrap"
    if os.geteuid() == 0 and shutil.which("setpriv"):
        return "setpriv"
    return "plain"


def _bwrap_works() -> bool:
    try:
        probe = subprocess.run(
            ["bwrap", *_system_binds(), "--unshare-net", "--unshare-pid", "--", "/bin/true"],
            capture_output=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for etc in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/alternatives"):
        if os.path.exists(etc):
            args += ["--ro-bind", etc, etc]
    return args


# ------------------------------------------------------------------ GPUs

# Where the NVIDIA Container Toolkit (or a Kubernetes device plugin) puts the driver's user-space
# libraries, besides /usr/lib/x86_64-linux-gnu (under /usr, bound read-only by _system_binds with
# /etc/ld.so.cache, which the toolkit's ldconfig hook updates): the learner's loader is pointed at the
# ones that exist, by LD_LIBRARY_PATH, only when GPUs are on. /usr/local is under /usr: no bind needed.
GPU_LIBRARY_DIRS = ("/usr/local/nvidia/lib64", "/usr/local/nvidia/lib")


def gpu_device_nodes(pattern: str | None = None) -> list[str]:
    """The NVIDIA device nodes that exist: character devices and folders (nvidia-caps/) matching the
    settings' glob (``/dev/nvidia*``), sorted; links and anything else are left out."""
    import glob
    import stat

    found = []
    for path in sorted(glob.glob(pattern or settings.current().gpu_devices)):
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            continue
        if stat.S_ISCHR(mode) or stat.S_ISDIR(mode):
            found.append(path)
    return found


def gpu_binds() -> list[str]:
    """bubblewrap's arguments for the GPUs, after ``--dev /dev``: none unless GPUs are requested;
    then a ``--dev-bind`` of each device node to /dev/<its name> (nothing else of /dev)."""
    if not settings.current().gpus_requested:
        return []
    args = []
    for node in gpu_device_nodes():
        args += ["--dev-bind", node, "/dev/" + os.path.basename(node)]
    return args


def hidden_gpu_nodes(strategy: str) -> list[str]:
    """The nodes a setpriv learner's namespaces cover with /dev/null: every GPU node, when GPUs are
    off (under bubblewrap they are not in its /dev at all; in the uid mode nothing can be covered)."""
    if strategy != "setpriv" or settings.current().gpus_requested:
        return []
    return gpu_device_nodes()


def gpu_report(strategy: str) -> str:
    """What the report says about the learner's access to GPUs (plain, bounded: our own text)."""
    current = settings.current()
    if not current.gpus_requested:
        return "off"
    nodes = gpu_device_nodes()
    if not nodes:
        return f"requested (CUDA_VISIBLE_DEVICES={current.child_cuda_devices[:40]}), but no NVIDIA device node exists"
    names = ", ".join(os.path.basename(node) for node in nodes[:12])
    closed = [os.path.basename(node) for node in nodes if _closed_to_others(node)]
    how = "passed through" if strategy == "bwrap" else "visible in /dev" if strategy == "setpriv" else "not sandboxed"
    text = f"{how}: {names}"
    if closed:
        text += f"; not openable by the learner's uid (mode without o+rw): {', '.join(closed[:12])}"
    return text


def _closed_to_others(node: str) -> bool:
    """A device node another uid cannot open read-write (nodes are 0666 normally; a folder needs o+rx)."""
    import stat

    mode = os.stat(node).st_mode
    need = 0o005 if stat.S_ISDIR(mode) else 0o006
    return mode & need != need


def _dirs_for(path: str) -> list[str]:
    """bwrap creates missing parents 0700; make them traversable for uid 65534."""
    args, parts = [], Path(path).parts[1:-1]
    current = ""
    for part in parts:
        current += "/" + part
        args += ["--perms", "0755", "--dir", current]
    return args


def python_roots() -> list[str]:
    """Directories the interpreter needs: the base installation and the venv."""
    roots = []
    for root in (sys.base_prefix, sys.prefix):
        real = os.path.realpath(root)
        if real not in roots and not real.startswith("/usr"):
            roots.append(real)
    return roots


# ------------------------------------------------------------------ commands


def address_space_limit(limits: Limits) -> int | None:
    """RLIMIT_AS in bytes; None (no limit) when GPUs are on: CUDA reserves far more address space than
    it uses (unified addressing: tens of GB), and under a cap cuInit fails and TensorFlow sees no GPU.
    Memory is then bounded by the memory cgroup (and Docker's --memory) only."""
    if settings.current().gpus_requested:
        return None
    return limits.address_space_mb * 1024 * 1024


def rlimit_prefix(limits: Limits) -> list[str]:
    address_space = address_space_limit(limits)
    return [
        "prlimit",
        f"--as={'unlimited' if address_space is None else address_space}",
        f"--cpu={limits.cpu_seconds}",
        f"--fsize={limits.file_size_mb * 1024 * 1024}",
        f"--nproc={limits.processes}",
        "--core=0",
        "--",
    ]


def private_uid() -> int:
    """A uid for one sandbox that no other process on this machine runs as.

    Killing "every process of my uid" (``kill(-1)``) from inside the sandbox
    then reaches exactly what the submission left behind, and RLIMIT_NPROC
    (counted per uid) counts only this sandbox's threads. Unique among the
    live graders of one pid namespace (a host, a container) because their pids
    are, and kill(-1) reaches no further than that namespace;
    ``PRIVATE_UID_SLOTS`` sandboxes per grader process may be alive at once
    (one zygote per assignment).
    """
    slot = next(_private_uid_counter) % PRIVATE_UID_SLOTS
    return PRIVATE_UID_BASE + os.getpid() * PRIVATE_UID_SLOTS + slot


def drop_privileges_prefix(uid: int = SANDBOX_UID) -> list[str]:
    return [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={uid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]


# What a zygote keeps inside bubblewrap as root (it runs no learner code): switching
# a learner to its uid, giving it namespaces and mounts of its own, and killing it.
ZYGOTE_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_SYS_ADMIN", "CAP_KILL")


def bwrap_command(host_workdir: Path, host_grader_dir: Path, uid: int | None = SANDBOX_UID) -> list[str]:
    """``uid`` None: a zygote, which stays root in the sandbox with only ZYGOTE_CAPS."""
    # Not --unshare-all: as root that adds a user namespace in which uid 65534
    # does not exist, and setpriv could not drop to it.
    cmd = [
        "bwrap",
        "--unshare-ipc",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
        *_system_binds(),
        # The tmpfs first: a Python installation under /tmp (e.g. a checkout
        # in /tmp) is then bound on top of it instead of being hidden by it.
        "--perms",
        "1777",
        "--tmpfs",
        "/tmp",
    ]
    for root in python_roots():
        cmd += _dirs_for(root + "/x") + ["--ro-bind", root, root]
    cmd += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        *gpu_binds(),
        "--ro-bind",
        str(host_workdir),
        WORKDIR,
        "--ro-bind",
        str(host_grader_dir),
        GRADER_DIR,
        "--chdir",
        WORKDIR,
        "--hostname",
        "sandbox",
        # bwrap's root is a tmpfs shared by a zygote's children: read-only, so nothing written
        # there by one submission is seen by the next (/tmp, swept between them, stays writable).
        "--remount-ro",
        "/",
        "--",
    ]
    caps = ["--cap-drop", "ALL"]
    for cap in ZYGOTE_CAPS:
        caps += ["--cap-add", cap]
    if os.geteuid() == 0:
        if uid is None:
            cmd[1:1] = caps
        else:
            cmd += drop_privileges_prefix(uid)
    elif uid is None:
        # Unprivileged: a zygote holds ZYGOTE_CAPS in its own user namespace only, so it can give
        # each learner its own namespaces; the learner keeps the one mapped uid but no capability
        # (and cannot see the zygote from its own pid namespace). That uid is SANDBOX_UID, not 0:
        # uid 0 is not even mapped, so a learner does not look like root to itself or its
        # libraries, and setuid(0) fails (bwrap keeps the capabilities as ambient ones).
        cmd[1:1] = ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), *caps]
    else:  # unprivileged bwrap maps us to uid 65534 inside a user namespace
        cmd[1:1] = ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
    return cmd


def sandbox_env(strategy: str) -> dict:
    env = {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "PYTHONNOUSERSITE": "1",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TF_NUM_INTEROP_THREADS": "1",
        "TF_NUM_INTRAOP_THREADS": "2",
        "CUDA_VISIBLE_DEVICES": settings.current().child_cuda_devices,
        **tf_start.CHILD_ENV,  # a cheaper TensorFlow start in each child (sandbox/tf_start.py)
    }
    if settings.current().gpus_requested:
        # TensorFlow takes nearly all of a GPU's memory by default: learners of parallel workers share it.
        env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
        libraries = [folder for folder in GPU_LIBRARY_DIRS if os.path.isdir(folder)]
        if libraries:
            env["LD_LIBRARY_PATH"] = ":".join(libraries)
    env["HOME"] = env["MPLCONFIGDIR"] = "/tmp" if strategy == "bwrap" else tempfile.gettempdir()
    return env


def start(
    python_args: list[str],
    host_workdir: Path,
    host_grader_dir: Path,
    limits: Limits,
    pass_fds: tuple,
    strategy: str | None = None,
    uid: int | None = SANDBOX_UID,
) -> SandboxProcess:
    """Start ``python <python_args>`` sandboxed; stdout/stderr are pipes.

    ``uid``: the learner's uid under setpriv, and under bwrap when we are root
    (unprivileged bwrap maps us to 65534; plain cannot change uid). None: a
    zygote, which stays root (bwrap: with ZYGOTE_CAPS only) and gives each
    learner it forks the learner uid itself.
    """
    strategy = strategy or available_strategy()
    python = sys.executable
    if strategy == "bwrap":
        inner = [python, *[a.replace(str(host_grader_dir), GRADER_DIR) for a in python_args]]
        cmd = rlimit_prefix(limits) + bwrap_command(host_workdir, host_grader_dir, uid) + inner
        cwd = None
    elif strategy == "setpriv":
        drop = drop_privileges_prefix(uid) if uid is not None else []
        cmd = rlimit_prefix(limits) + drop + [python, *python_args]
        cwd = host_workdir
    else:
        cmd = rlimit_prefix(limits) + [python, *python_args]
        cwd = host_workdir
    cgroups = make_cgroups(limits)
    if cgroups.paths:
        # Join the cgroups before exec, so no descendant can be born outside them.
        joins = "; ".join(f"echo $$ > {path}/cgroup.procs" for path in cgroups.paths)
        cmd = ["/bin/sh", "-c", f'{joins}; exec "$@"', "dlgrade-sandbox", *cmd]
    popen = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=pass_fds,
        cwd=cwd,
        env=sandbox_env(strategy),
        start_new_session=True,
    )
    return SandboxProcess(popen, strategy, cgroups)


# ------------------------------------------------------------------ can the learner read our files?

_READ_PROBE = r"""
import json, os, sys
found = []
for top in json.loads(sys.argv[1]):
    candidates = [top]
    if os.path.isdir(top):
        try:
            os.listdir(top)
            found.append(top + "/ (listable)")
        except OSError:
            pass
        for root, dirs, files in os.walk(top):
            candidates += [os.path.join(root, f) for f in files]
            if len(candidates) > 2000:
                break
    for path in candidates:
        if os.path.isfile(path):
            try:
                with open(path, "rb") as handle:
                    handle.read(1)
                found.append(path)
            except OSError:
                pass
        if len(found) >= 20:
            break
print(json.dumps(found))
"""


class IsolationRefused(RuntimeError):
    """The learner's uid could read what it must not; ``str()`` says what and how to fix it."""


def readable_by_learner(paths: list, uid: int | None = None) -> list[str]:
    """The files and folders among ``paths`` (and under them) that a learner uid can read.

    Run as that uid, the way the setpriv strategy starts a learner. Raises
    IsolationRefused when the probe cannot run as that uid at all.
    """
    uid = private_uid() if uid is None else uid
    existing = [str(Path(p).resolve()) for p in paths if p is not None and Path(p).exists()]
    if not existing:
        return []
    import json

    try:
        probe = subprocess.run(
            drop_privileges_prefix(uid) + [sys.executable, "-I", "-c", _READ_PROBE, json.dumps(existing)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd="/",
        )
        return json.loads(probe.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        raise IsolationRefused(
            f"could not check what the learner's uid can read ({exc}); "
            "the interpreter must be runnable by other uids for the setpriv sandbox"
        )


@cache
def _readable_once(strategy: str, paths: tuple[str, ...]) -> tuple[str, ...]:
    """What the learner uid can read among ``paths``: probed once per process (per strategy and paths)."""
    return tuple(readable_by_learner(list(paths)))


def readable_check(paths: list, accept_unisolated: bool = False, strategy: str | None = None) -> str:
    """The readability check's outcome, as every report quotes it; raises IsolationRefused.

    Under setpriv as root the learner's uid must not read any of ``paths`` (probed
    once per process and set of paths): "passed" when it reads none; "accepted: <what
    it could read>" when it reads some and ``accept_unisolated``; otherwise
    IsolationRefused, whose text says what could be read and how to fix it.
    bubblewrap shows the learner none of these files, so nothing is checked there;
    "plain" is not a sandbox at all and has its own warning.
    """
    strategy = strategy or available_strategy()
    if strategy == "bwrap":
        return "not needed (bubblewrap)"
    if strategy == "plain":
        return "not possible (plain: no sandbox, the learner runs as the grader)"
    if os.geteuid() != 0:
        return "not possible (setpriv without root: the learner runs as the grader)"
    existing = tuple(sorted({str(Path(p).resolve()) for p in paths if p is not None and Path(p).exists()}))
    readable = _readable_once(strategy, existing)
    if not readable:
        return "passed"
    summary = f"the learner's uid could read {len(readable)} protected path(s), e.g. {', '.join(readable[:3])}"
    if not accept_unisolated:
        raise IsolationRefused(
            f"refusing to grade: bubblewrap does not work here, and under the setpriv sandbox {summary}. "
            "Make the hidden suites, solutions, submissions and outputs unreadable by other users "
            "(chmod o-rwx, or grade in the Docker image), or pass --accept-unisolated to grade anyway; "
            "the reports will then say so."
        )
    return f"accepted: {summary}"


def ensure_isolated(paths: list, accept_unisolated: bool = False, strategy: str | None = None) -> str | None:
    """Before grading with setpriv: refuse if the learner's uid can read any of ``paths``.

    ``paths``: the hidden suites, the solutions, the submissions, the batch
    state and the outputs. With ``accept_unisolated`` the run goes on; the
    returned text says what the learner could read (None: nothing). The process
    that grades checks again itself (grade.grade_notebook, :func:`readable_check`),
    so a Dask worker or a library caller is covered too, and every report quotes the outcome.
    """
    outcome = readable_check(paths, accept_unisolated, strategy)
    return outcome.removeprefix("accepted: ") if outcome.startswith("accepted: ") else None
