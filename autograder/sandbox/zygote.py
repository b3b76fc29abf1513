"""The zygote: one warm sandboxed process that starts each submission's learner.

Runs inside the sandbox (copied there beside ``child.py``; imports nothing
from autograder but its siblings). A zygote imports the heavy modules once
(numpy, the helper module, TensorFlow) and starts one fresh learner per
graded function. It runs no learner code, and as root (inside bubblewrap with
a few capabilities, or the container's root under setpriv) so that no learner
ever has its uid: a learner cannot signal, renice, prlimit or ptrace it. The
grader sends "fork" over a SOCK_SEQPACKET control socket with the new
learner's request and reply pipes and its stdout/stderr, may send "kill", and
gets "exited CODE" back. One submission lives at a time, in the sandbox's
cgroups (memory, pids, CPU quota).

How one submission is kept apart is one :class:`Runner` per mode (reported
in "ready"):

``namespace``  :class:`NamespaceRunner`: a process prepared in advance
               (``prepared.py``: the zygote's own child, or where ``setns``
               is refused a keeper's), pid 1 of pid, mount, ipc, network and
               uts namespaces of its own, with a private /proc, /tmp and
               /dev/shm, becomes the learner uid. When it dies the kernel
               kills every process of its namespace, and its tmpfs goes with
               its mount namespace: cleanup is atomic, no sweep.
``uid``        :class:`UidRunner`: no namespaces (setpriv in Docker). The
               learner runs as the sandbox's learner uid, which nothing else
               has; after it ends ``cleanup.sweep_uid`` kills every process of
               that uid and deletes what it owns in /tmp; if any process
               survives, the zygote exits and a new sandbox (a new uid)
               replaces it.
``none``       :class:`PlainRunner`: not root and no namespaces (plain): a
               fork, nothing swept.
"""

from __future__ import annotations

import gc
import importlib
import os
import select
import signal
import socket

if __package__:  # imported by the grader (tests)
    from autograder.sandbox import cleanup, hugepages, kernel, prepared, tf_start, worker
else:  # in the sandbox: the files beside this one
    import cleanup  # type: ignore[no-redef]
    import hugepages  # type: ignore[no-redef]
    import kernel  # type: ignore[no-redef]
    import prepared  # type: ignore[no-redef]
    import tf_start  # type: ignore[no-redef]
    import worker  # type: ignore[no-redef]


def run_submission(fds: list, uid: int | None, zygote_pid: int) -> None:
    """In the zygote's fresh child, without namespaces ("uid", "none"): become the learner.

    As root (uid mode) it first tries an IPC namespace of its own: the learner's System V
    objects and POSIX message queues then die with it. Where that is refused (Docker's
    default seccomp profile) the uid sweep removes them (cleanup.remove_ipc_of)."""
    if uid is not None:
        kernel.try_unshare(kernel.CLONE_NEWIPC)
    kernel.become_learner(uid)  # raises (and so ends this process) before any learner code runs
    prepared.serve_learner(fds, None, zygote_pid)


class Runner:
    """Runs one submission at a time in one way of keeping it apart (see the module docstring)."""

    name = ""

    def prepare_next(self) -> None:
        """Work done ahead of the next submission: after "ready", and once a started one's pipes are
        closed here (what is prepared must hold none of them)."""

    def start(self, fds: list) -> bool:
        """Start the submission's process with its four pipes; False if it could not be started."""
        raise NotImplementedError

    def exited(self) -> int:
        """A descriptor that becomes readable when the submission's process has ended."""
        raise NotImplementedError

    def kill(self) -> None:
        raise NotImplementedError

    def wait(self) -> int:
        """The submission's wait status, once it has ended."""
        raise NotImplementedError

    def finish(self) -> bool:
        """After the wait: True when nothing of the submission is left and the next one may start."""
        return True

    def close(self) -> None:
        """The grader went away: end everything."""


class PlainRunner(Runner):
    """A plain fork of the zygote per submission (the none mode; the uid mode adds its sweep)."""

    name = "none"

    def __init__(self, control, uid: int | None, zygote_pid: int):
        self.control, self.uid, self.zygote_pid = control, uid, zygote_pid
        self.pid: int | None = None
        self.pidfd = -1

    def start(self, fds: list) -> bool:
        self.pid = os.fork()
        if self.pid == 0:  # the submission's process
            try:
                self.control.close()
                run_submission(fds, self.uid, self.zygote_pid)
            finally:
                os._exit(70)
        self.pidfd = os.pidfd_open(self.pid)
        return True

    def exited(self) -> int:
        return self.pidfd

    def kill(self) -> None:
        assert self.pid is not None
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            os.kill(self.pid, signal.SIGKILL)

    def wait(self) -> int:
        assert self.pid is not None
        os.close(self.pidfd)
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        return status

    def close(self) -> None:
        if self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)


class UidRunner(PlainRunner):
    """The learner uid is the submission's: kill(-1) as that uid, then sweep what it owns."""

    name = "uid"

    def kill(self) -> None:
        assert self.uid is not None
        cleanup.kill_uid(self.uid)

    def finish(self) -> bool:
        assert self.uid is not None
        return cleanup.sweep_uid(self.uid)


class NamespaceRunner(Runner):
    """Namespaces of its own per submission, from a process prepared while the previous one ran
    (``prepared.py``): the zygote's own child when ``direct``, else through a keeper."""

    name = "namespace"

    def __init__(
        self, control, uid: int | None, zygote_pid: int, preamble: str | None, hidden: tuple = (), direct: bool = True
    ):
        self.control, self.uid, self.zygote_pid, self.preamble = control, uid, zygote_pid, preamble
        self.hidden = hidden  # device nodes each submission's mount namespace covers (GPUs off, setpriv)
        self.pid_ns: int | None = None  # direct: this zygote's own pid namespace, its children's after each spare
        if direct:
            try:
                self.pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                raise kernel.SandboxSetupError(exc.errno, f"opening /proc/self/ns/pid failed: {exc.strerror}") from None
        self.spare: prepared.Prepared | None = None
        self.current: prepared.Prepared | None = None
        self.exiting: list = []  # keepers that reported their namespace empty and are still exiting

    def _prepare(self) -> prepared.Prepared | None:
        return prepared.prepare(self.control, self.uid, self.zygote_pid, self.preamble, self.hidden, self.pid_ns)

    def prepare_next(self) -> None:
        if self.spare is None:
            self.spare = self._prepare()

    def start(self, fds: list) -> bool:
        self.exiting = [done for done in self.exiting if not done.reap()]
        for _ in range(2):  # a spare that is gone (killed from outside) is replaced once
            candidate, self.spare = self.spare or self._prepare(), None
            if candidate is not None and candidate.hand_over(fds):
                self.current = candidate
                return True
        return False

    def exited(self) -> int:
        assert self.current is not None
        return self.current.exited()

    def kill(self) -> None:
        assert self.current is not None
        self.current.kill()

    def wait(self) -> int:
        assert self.current is not None
        status = self.current.wait_status()
        self.exiting.append(self.current)
        self.current = None
        return status

    def close(self) -> None:
        for spare in (self.current, self.spare):
            if spare is not None:
                spare.discard()


def choose_runner(
    control, learner_uid: int | None, namespaces: bool, preamble: str | None, hidden: tuple = (), keeper: bool = False
) -> Runner:
    """``keeper``: prepare each submission through a keeper even where the direct way works."""
    zygote_pid = os.getpid()
    setup = kernel.namespace_setup() if namespaces else ""
    if setup:
        direct = setup == "direct" and not keeper
        return NamespaceRunner(control, learner_uid, zygote_pid, preamble, hidden, direct=direct)
    if learner_uid is not None:
        kernel.become_subreaper()  # orphans of a learner become ours, to be killed and reaped
        return UidRunner(control, learner_uid, zygote_pid)
    return PlainRunner(control, None, zygote_pid)


def zygote(
    control_fd: int,
    preload: list[str],
    learner_uid: int | None,
    namespaces: bool = True,
    preamble: str | None = None,
    hidden: tuple = (),
    keeper: bool = False,
) -> None:
    """``learner_uid``: the uid learners run as (None: the zygote's own, when not root);
    ``namespaces``: False to use the uid mode even where namespaces work; ``keeper``: namespaces
    through a keeper even where setns works (prepared.py); ``preamble``: the
    assignment's imports cell, run by each prepared process before its learner exists;
    ``hidden``: device nodes each learner's mount namespace covers (namespace mode only)."""
    for module in preload:
        importlib.import_module(module)
    control = socket.socket(fileno=control_fd)
    if "tensorflow" in preload:
        try:  # the plain-data part of TF's start, once for every child (tf_start.py)
            tf_start.prepare()
        except tf_start.StartedThreads as exc:
            control.sendall(b"error " + str(exc).encode("utf-8", "replace")[:500])
            return
    # What the zygote holds now is every learner's: frozen, the learner's garbage collections
    # do not walk it (each walk would touch, and so copy, every page the fork shares).
    # The first np.random.seed() in a process costs ~10 ms (numpy sets up its global state):
    # paid here once, not by every learner child, which seeds again.
    worker.seed_everything(0)
    gc.collect()
    gc.freeze()
    # Fewer page-table entries for each fork to copy (hugepages.py); a no-op for a small zygote.
    hugepages.collapse()
    try:
        kernel.set_dumpable(False)
        runner = choose_runner(control, learner_uid, namespaces, preamble, hidden, keeper)
    except kernel.SandboxSetupError as exc:
        control.sendall(b"error " + str(exc).encode("utf-8", "replace")[:500])
        return
    control.sendall(b"ready " + runner.name.encode())
    runner.prepare_next()
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 64, 4)
        except OSError:
            return
        if not message:
            return  # the grader went away
        if message != b"fork" or len(fds) != 4:
            for fd in fds:
                os.close(fd)
            continue
        started = runner.start(fds)
        for fd in fds:
            os.close(fd)
        if not started:
            control.sendall(b"exited 70")
            continue
        runner.prepare_next()  # the next one's, while this one runs
        watched = runner.exited()
        while True:
            ready, _, _ = select.select([control.fileno(), watched], [], [])
            if control.fileno() in ready:
                command = control.recv(64)
                if not command:
                    runner.close()
                    return
                if command == b"kill":
                    runner.kill()
            if watched in ready:
                status = runner.wait()
                break
        clean = runner.finish()
        control.sendall(b"exited %d" % os.waitstatus_to_exitcode(status))
        if not clean:
            return  # a process of the learner uid survived: this sandbox (and its uid) is retired
