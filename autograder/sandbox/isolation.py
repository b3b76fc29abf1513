"""Start the learner process in the strongest sandbox this machine offers.

Strategies, strongest first:

``bwrap``    bubblewrap: new mount, pid, net, ipc and uts namespaces; the root
             filesystem is read-only and holds only the system, the Python
             installation and the grader's worker; a tmpfs is the only
             writable place; a non-root uid (via setpriv when we are root, so
             RLIMIT_NPROC applies: a zygote's private uid, else 65534); new
             session; dies with its parent.
``setpriv``  no bubblewrap (e.g. inside Docker, whose seccomp profile blocks
             it; there the container is the sandbox): drop to a non-root uid
             (65534, or a zygote's private uid) with no inheritable
             capabilities and no_new_privs (a non-root uid with no_new_privs
             holds no capabilities; without CAP_SETPCAP, as in
             the Docker image, ``--bounding-set=-all`` cannot shrink the bounding
             set, which no_new_privs makes moot); the grader's files must not
             be readable by that uid (the Docker image sets permissions so).
             There is no pid namespace: a zygote gets a uid of its own
             (:func:`private_uid`), so that after each child it can kill every
             process of that uid and delete the files it owns in /tmp.
``plain``    a subprocess with resource limits only. The report says the
             submission was not isolated.

Every strategy applies rlimits with ``prlimit`` (address space, CPU seconds,
file size, processes) and, where cgroups are writable, a pids and a memory
cgroup that also lets us kill every process the submission started.
"""
from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

SANDBOX_UID = 65534
# Private uids (zygotes, when we are root) are PRIVATE_UID_BASE + pid * PRIVATE_UID_SLOTS + slot:
# no user or service of the machine has them, and two live graders of one pid namespace never share one.
PRIVATE_UID_BASE = 1_500_000_000
PRIVATE_UID_SLOTS = 64
_private_uid_counter = itertools.count()
WORKDIR = "/sandbox"      # the submission's helper files, read-only
GRADER_DIR = "/grader"    # child.py and codec.py, read-only


@dataclass
class Limits:
    memory_mb: int = 2048          # resident memory (cgroup), when cgroups work
    address_space_mb: int = 4096   # RLIMIT_AS, a coarse cap; TF needs ~3.7x its resident size
    cpu_seconds: int = 300         # RLIMIT_CPU for the whole process tree's each process
    file_size_mb: int = 64         # RLIMIT_FSIZE
    processes: int = 512           # RLIMIT_NPROC (counts threads; enforced for non-root uids)


@dataclass
class SandboxProcess:
    popen: subprocess.Popen
    strategy: str
    cgroups: list = field(default_factory=list)

    def kill(self) -> None:
        """Kill the learner and everything it started, then release cgroups."""
        for path in self.cgroups:
            _kill_cgroup(path)
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
        for path in self.cgroups:
            _kill_cgroup(path)
            try:
                os.rmdir(path)
            except OSError:
                pass
        self.cgroups = []


# ------------------------------------------------------------------ detection

@lru_cache(maxsize=None)
def available_strategy() -> str:
    forced = os.environ.get("DLGRADE_SANDBOX")
    if forced:
        return forced
    if shutil.which("bwrap") and _bwrap_works():
        return "bwrap"
    if os.geteuid() == 0 and shutil.which("setpriv"):
        return "setpriv"
    return "plain"


def _bwrap_works() -> bool:
    try:
        probe = subprocess.run(
            ["bwrap", *_system_binds(), "--unshare-net", "--unshare-pid", "--", "/bin/true"],
            capture_output=True, timeout=20,
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

def rlimit_prefix(limits: Limits) -> list[str]:
    return [
        "prlimit",
        f"--as={limits.address_space_mb * 1024 * 1024}",
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
        "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
        "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--",
    ]


def bwrap_command(host_workdir: Path, host_grader_dir: Path, uid: int = SANDBOX_UID) -> list[str]:
    # Not --unshare-all: as root that adds a user namespace in which uid 65534
    # does not exist, and setpriv could not drop to it.
    cmd = ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
           "--die-with-parent", "--new-session", *_system_binds(),
           # The tmpfs first: a Python installation under /tmp (e.g. a checkout
           # in /tmp) is then bound on top of it instead of being hidden by it.
           "--perms", "1777", "--tmpfs", "/tmp"]
    for root in python_roots():
        cmd += _dirs_for(root + "/x") + ["--ro-bind", root, root]
    cmd += [
        "--proc", "/proc", "--dev", "/dev",
        "--ro-bind", str(host_workdir), WORKDIR,
        "--ro-bind", str(host_grader_dir), GRADER_DIR,
        "--chdir", WORKDIR,
        "--hostname", "sandbox",
        # bwrap's root is a tmpfs shared by a zygote's children: read-only, so nothing written
        # there by one submission is seen by the next (/tmp, swept between them, stays writable).
        "--remount-ro", "/",
        "--",
    ]
    if os.geteuid() == 0:
        cmd += drop_privileges_prefix(uid)
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
        "CUDA_VISIBLE_DEVICES": os.environ.get("DLGRADE_CHILD_CUDA_VISIBLE_DEVICES", ""),
    }
    env["HOME"] = env["MPLCONFIGDIR"] = "/tmp" if strategy == "bwrap" else os.environ.get("TMPDIR", "/tmp")
    return env


def start(
    python_args: list[str],
    host_workdir: Path,
    host_grader_dir: Path,
    limits: Limits,
    pass_fds: tuple,
    strategy: str | None = None,
    uid: int = SANDBOX_UID,
) -> SandboxProcess:
    """Start ``python <python_args>`` sandboxed; stdout/stderr are pipes.

    ``uid``: the learner's uid under setpriv, and under bwrap when we are root
    (unprivileged bwrap maps us to 65534; plain cannot change uid).
    """
    strategy = strategy or available_strategy()
    python = sys.executable
    if strategy == "bwrap":
        inner = [python, *[a.replace(str(host_grader_dir), GRADER_DIR) for a in python_args]]
        cmd = rlimit_prefix(limits) + bwrap_command(host_workdir, host_grader_dir, uid) + inner
        cwd = None
    elif strategy == "setpriv":
        cmd = rlimit_prefix(limits) + drop_privileges_prefix(uid) + [python, *python_args]
        cwd = host_workdir
    else:
        cmd = rlimit_prefix(limits) + [python, *python_args]
        cwd = host_workdir
    cgroups = _make_cgroups(limits)
    if cgroups:
        # Join the cgroups before exec, so no descendant can be born outside them.
        joins = "; ".join(f"echo $$ > {path}/cgroup.procs" for path in cgroups)
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


# ------------------------------------------------------------------ cgroups

CGROUP_V1 = Path("/sys/fs/cgroup")


@lru_cache(maxsize=None)
def cgroups_writable() -> bool:
    if os.environ.get("DLGRADE_NO_CGROUPS"):
        return False
    try:
        for controller in ("pids", "memory"):
            probe = CGROUP_V1 / controller / f"dlgrade-probe-{os.getpid()}"
            probe.mkdir()
            probe.rmdir()
        return True
    except OSError:
        return False


def _make_cgroups(limits: Limits) -> list[str]:
    if not cgroups_writable():
        return []
    name = f"dlgrade-{uuid.uuid4().hex[:12]}"
    made = []
    try:
        pids = CGROUP_V1 / "pids" / name
        pids.mkdir()
        made.append(str(pids))
        (pids / "pids.max").write_text(str(limits.processes))
        memory = CGROUP_V1 / "memory" / name
        memory.mkdir()
        made.append(str(memory))
        (memory / "memory.limit_in_bytes").write_text(str(limits.memory_mb * 1024 * 1024))
        try:
            (memory / "memory.memsw.limit_in_bytes").write_text(str(limits.memory_mb * 1024 * 1024))
        except OSError:
            pass  # no swap accounting
    except OSError:
        pass
    return made


def _kill_cgroup(path: str) -> None:
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
    """True when the memory cgroup hit its limit (the learner ran out of memory)."""
    for path in cgroups:
        failcnt = Path(path, "memory.failcnt")
        if failcnt.exists():
            try:
                if int(failcnt.read_text()) > 0:
                    return True
            except (OSError, ValueError):
                pass
    return False
