"""The uid mode leaves no IPC object behind (issue: "uid mode leaves nothing behind").

In the uid mode (no namespaces: setpriv under Docker's default seccomp
profile) every learner runs as the sandbox's learner uid. A System V
segment, semaphore set or message queue, or a POSIX shared-memory file, made
by one learner must be gone before the next child starts: where the kernel
allows it each child has an IPC namespace of its own, and the uid sweep
removes what is left (``cleanup.remove_ipc_of``), so both paths are tested.
"""

from __future__ import annotations

import ctypes
import os

import pytest

from autograder.grading import catalogue
from autograder.grading.cells import Cell
from autograder.grading.learner import Learner, LearnerProcess
from autograder.grading.time_policy import TimePolicy
from autograder.sandbox import cleanup, isolation, settings, spawn

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="the uid mode changes uid: it needs root")
IPC_CREAT = 0o1000
KEY = 0x5EED10

PLANT = f"""
import ctypes, os
_libc = ctypes.CDLL(None, use_errno=True)
KEY = {KEY}

def update_lr(a, b, c):
    made = [_libc.shmget(KEY, 4096, {IPC_CREAT} | 0o600), _libc.semget(KEY + 1, 1, {IPC_CREAT} | 0o600),
            _libc.msgget(KEY + 2, {IPC_CREAT} | 0o600)]
    try:  # POSIX shared memory is a file in /dev/shm, where the sandbox has a writable one
        with open("/dev/shm/dlgrade-planted", "w") as handle:
            handle.write("x")
        made.append(True)
    except OSError:
        made.append(False)
    return made

def schedule_lr_decay(a, b, c, d=1000):
    # What the next child can still reach: an id (>= 0) for each object, or -1.
    return [_libc.shmget(KEY, 0, 0), _libc.semget(KEY + 1, 0, 0), _libc.msgget(KEY + 2, 0, 0),
            os.path.exists("/dev/shm/dlgrade-planted")]
"""


@ROOT_ONLY
def test_the_next_child_finds_nothing_the_previous_learner_made():
    strategy = isolation.available_strategy()
    if strategy not in ("bwrap", "setpriv"):
        pytest.skip(f"the uid mode needs bubblewrap or setpriv as root (this host: {strategy})")
    previous = settings.use(settings.current().but(namespaces=False))
    spec = catalogue.load("optimization")
    spawner = spawn.ZygoteSpawner(
        f"optimization:uid-ipc-test:{os.getpid()}",
        spec.release_dir,
        spec.limits(),
        ["numpy", "optimization_utils"],
        strategy,
        preamble=spec.preamble,
    )
    process = LearnerProcess(
        preamble=spec.preamble,
        cells=[Cell("plant", PLANT, ["update_lr", "schedule_lr_decay"])],
        limits=spec.limits(),
        time_policy=TimePolicy(call=10, submission=60),
        spawner=spawner,
    )
    learner = Learner(process)
    try:
        process.begin_function("update_lr")
        made = learner.update_lr(1, 2, 3)
        assert process.isolation_report()["separation"] == "uid"
        assert all(ident >= 0 for ident in made[:3]), made  # the learner could make each of them
        process.begin_function("schedule_lr_decay")
        assert learner.schedule_lr_decay(1, 2, 3) == [-1, -1, -1, False]
    finally:
        process.close()
        spawn.close_zygotes()
        settings.use(previous)


def _plant_as(uid: int) -> None:
    """Make one object of each System V kind as ``uid``, in a child that then exits."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        code = 1
        try:
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            libc = ctypes.CDLL(None, use_errno=True)
            made = [
                libc.shmget(KEY + 10, 4096, IPC_CREAT | 0o600),
                libc.semget(KEY + 11, 1, IPC_CREAT | 0o600),
                libc.msgget(KEY + 12, IPC_CREAT | 0o600),
            ]
            code = 0 if all(ident >= 0 for ident in made) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@ROOT_ONLY
def test_the_sweep_removes_the_learner_uids_system_v_objects():
    """The path for hosts where no IPC namespace can be had: found in /proc/sysvipc, removed as the uid."""
    uid = isolation.private_uid()
    _plant_as(uid)
    try:
        assert sorted(kind for kind, _ in cleanup.sysv_objects_of(uid)) == ["msg", "sem", "shm"]
        cleanup.remove_ipc_of(uid)
        assert cleanup.sysv_objects_of(uid) == []
    finally:
        cleanup.remove_ipc_of(uid)
