"""A submission's process made ready in advance (the zygote's namespace mode).

Runs inside the sandbox (copied there beside ``child.py``; imports nothing
from autograder but its siblings). The zygote keeps one :class:`Prepared`
process as a spare while the current learner runs, so each graded function's
child starts without waiting for namespaces, mounts and the imports cell.

The zygote makes the spare itself: it unshares a pid namespace (which sets
only the namespace of its future children), forks, and joins its own pid
namespace again (:func:`kernel.setns` on the handle it opened at start), so
the spare is pid 1 of a pid namespace of its own and the zygote's parent.
The spare (root, runs nothing of the learner's) unshares its mount, ipc,
network and uts namespaces, mounts its private /proc, /tmp and /dev/shm,
makes the rest read-only, runs the trusted warm-up and says "ready". Only
when the zygote hands it the submission's four pipes does it become the
learner uid (:func:`kernel.become_learner`). Every step is checked: a spare
whose setup fails says "error <reason>" instead of "ready" and is never
handed a learner.

The zygote waits for it: its pidfd becomes readable when it has ended, and
``waitpid`` on a namespace's init returns only once the kernel has killed
and reaped every other process of that namespace, so the status the zygote
reports means the whole submission is gone. Killing it is a SIGKILL of its
pid 1 (not reaped until the zygote waits, so the pid is still its). The
learner holds no descriptor of the zygote's (its pidfd, the alive pipe's
write end): it cannot report its own end while it runs.

Why no process between them (an earlier design forked a "keeper" that
unshared the namespaces and waited for pid 1): fork and exit cost CPU in
proportion to the process's memory (its page tables), and a keeper is a full
copy of the zygote. For a TensorFlow zygote (~590 MB) each fork+exit costs
~22 ms of CPU, so every child paid two of them: ~0.15 s of a TF
submission's ~1.3 s CPU (7 children).
"""

from __future__ import annotations

import os
import select
import signal
import socket

if __package__:  # imported by the grader (tests)
    from autograder.sandbox import kernel, worker
else:  # in the sandbox: the files beside this one
    import kernel  # type: ignore[no-redef]
    import worker  # type: ignore[no-redef]

READY_TIMEOUT = 60.0  # seconds a spare may take to get ready (the imports cell of a TF assignment: a few)


def serve_learner(fds: list, alive_r: int | None, parent: int, warmed: worker.WarmUp | None = None) -> None:
    """The learner: stdout/stderr to its pipes, a new session, then the Worker loop.

    ``alive_r``: a pipe that reaches EOF when the zygote is gone (pid 1 of a namespace has no
    parent pid to compare); else ``parent`` is the zygote's pid."""
    req_r, resp_w, out_w, err_w = fds
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    for fd in (out_w, err_w):
        os.close(fd)
    try:
        os.setsid()
    except OSError:
        pass  # already a session leader (pid 1 of its namespace)
    # After the uid change (which clears it): die with the process that waits for us.
    kernel.die_with_parent(signal.SIGKILL)
    if alive_r is None:
        if os.getppid() != parent:  # it died before we asked
            os._exit(1)
    else:
        if select.select([alive_r], [], [], 0)[0]:  # EOF: it died before we asked
            os._exit(1)
        os.close(alive_r)
    kernel.set_dumpable(True)
    worker.seed_everything(0)
    worker.Worker(req_r, resp_w, warmed).serve()


def _learner_to_be(
    handover, alive_r: int, uid: int | None, preamble: str | None, hidden: tuple = (), namespaces: int = 0
) -> None:
    """Pid 1 of the submission's pid namespace: its other ``namespaces``, private mounts, warm-up,
    "ready", then the learner."""
    kernel.die_with_parent(signal.SIGKILL)  # while it waits: die with the zygote
    if select.select([alive_r], [], [], 0)[0]:  # EOF: the zygote died before we asked
        os._exit(1)
    try:
        if namespaces:
            kernel.unshare(namespaces)
        kernel.private_mounts(hidden)
        # Before the warm-up runs anything: a thread it may start inherits no_new_privs and
        # (no uid change to come, unprivileged bwrap) no capabilities. As root the uid change
        # clears every thread's capabilities (glibc applies setresuid to all of them).
        kernel.set_no_new_privs()
        if uid is None:
            kernel.drop_capabilities()
    except kernel.SandboxSetupError as exc:
        handover.send(b"error " + str(exc).encode("utf-8", "replace")[:500])
        os._exit(1)
    try:
        warmed = worker.warm_up(preamble)
        # "ready": the zygote hands over only a process whose warm-up went through (a
        # learner running beside it could have filled the pids cgroup or the memory).
        handover.send(b"ready")
        message, fds, _, _ = socket.recv_fds(handover, 16, 4)
    except BaseException:
        os._exit(1)
    if message != b"go" or len(fds) != 4:
        os._exit(1)
    handover.close()
    kernel.become_learner(uid)  # raises (and so ends this process) before any learner code runs
    serve_learner(fds, alive_r, 0, warmed)


def prepare(control, pid_ns: int, uid: int | None, preamble: str | None, hidden: tuple = ()) -> Prepared | None:
    """A new :class:`Prepared`, or None when it cannot be made now (no pid or fd left, or a
    namespace call refused: then no learner starts, "exited 70")."""
    try:
        return Prepared(control, pid_ns, uid, preamble, hidden)
    except OSError:
        return None


_HELD: set[int] = set()  # the zygote's descriptors of every Prepared it holds: no new child keeps them


def _close(fd: int) -> None:
    _HELD.discard(fd)
    try:
        os.close(fd)
    except OSError:
        pass


class Prepared:
    """The zygote's handle on a prepared submission process (its child, pid 1 of its own pid
    namespace): pid, pidfd (readable once it has ended), handover socket and alive pipe."""

    def __init__(self, control, pid_ns: int, uid: int | None, preamble: str | None, hidden: tuple = ()):
        self.error = ""  # why its setup failed, when it did
        self.pid: int | None = None
        self.pidfd = self.alive_w = -1
        self.handover, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        alive_r = -1
        try:
            alive_r, self.alive_w = os.pipe()
            self._fork(control, pid_ns, theirs, alive_r, uid, preamble, hidden)
            assert self.pid is not None
            self.pidfd = os.pidfd_open(self.pid)
        except BaseException:
            self.discard()
            raise
        finally:
            theirs.close()
            if alive_r >= 0:
                os.close(alive_r)
        _HELD.update((self.handover.fileno(), self.pidfd, self.alive_w))

    def _fork(self, control, pid_ns: int, theirs, alive_r: int, uid, preamble, hidden) -> None:
        """Fork the learner-to-be into a fresh pid namespace; this process's own children
        after it are in this process's pid namespace again."""
        kernel.unshare(kernel.CLONE_NEWPID)  # only this process's future children: the next fork is pid 1
        try:
            self.pid = os.fork()
            if self.pid == 0:
                try:
                    for fd in (control.fileno(), self.handover.fileno(), self.alive_w, pid_ns, *_HELD):
                        try:
                            os.close(fd)
                        except OSError:
                            pass
                    _learner_to_be(theirs, alive_r, uid, preamble, hidden, kernel.LEARNER_NAMESPACES)
                finally:
                    os._exit(70)
        finally:
            # Back to the zygote's own pid namespace for its children (another unshare of a pid
            # namespace is refused while one is pending). Should this fail, the next unshare is
            # refused: no learner starts, none starts outside a namespace of its own.
            kernel.setns(pid_ns, kernel.CLONE_NEWPID)

    def hand_over(self, fds: list, ready_timeout: float = READY_TIMEOUT) -> bool:
        """Give it the submission's pipes once it is ready; False if it is not there any more,
        its setup failed (``error`` says why) or its warm-up failed (then discarded)."""
        try:
            self.handover.settimeout(ready_timeout)
            answer = self.handover.recv(600)
            if answer != b"ready":
                if answer.startswith(b"error "):
                    self.error = answer[6:].decode("utf-8", "replace")
                raise OSError("the prepared process ended before it was ready")
            self.handover.settimeout(None)
            socket.send_fds(self.handover, [b"go"], fds)
            return True
        except OSError:
            self.discard()
            return False
        finally:
            _HELD.discard(self.handover.fileno())
            self.handover.close()

    def kill(self) -> None:
        """SIGKILL its pid 1: the kernel then kills every process of its namespace."""
        if self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)  # not reaped yet: the pid is still its

    def wait_status(self) -> int:
        """Its wait status, once its namespace is empty (waitpid on a namespace's init returns only then)."""
        assert self.pid is not None
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        self._close_ours()
        return status

    def _close_ours(self) -> None:
        if self.handover.fileno() >= 0:
            _HELD.discard(self.handover.fileno())
            self.handover.close()
        for fd in (self.pidfd, self.alive_w):
            if fd >= 0:
                _close(fd)
        self.pidfd = self.alive_w = -1

    def discard(self) -> None:
        self._close_ours()
        if self.pid is not None:
            try:
                self.kill()
            except OSError:
                pass
            os.waitpid(self.pid, 0)
            self.pid = None
