"""A submission's process made ready in advance (the zygote's namespace mode).

Runs inside the sandbox (copied there beside ``child.py``; imports nothing
from autograder but its siblings). The zygote keeps one :class:`Prepared`
process as a spare while the current learner runs, so each graded function's
child starts without waiting for namespaces, mounts and the imports cell.

The spare's keeper (root, runs nothing of the learner's) unshares pid, mount,
ipc, network and uts namespaces and forks the learner-to-be, pid 1 of its own
pid namespace, which mounts its private /proc, /tmp and /dev/shm, makes the
rest read-only, runs the trusted warm-up and says "ready". Only when the
zygote hands it the submission's four pipes does it become the learner uid
(:func:`kernel.become_learner`). Every step is checked: a spare whose setup
fails says "error <reason>" instead of "ready" and is never handed a learner.
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

    ``alive_r``: a pipe that reaches EOF when the keeper is gone (pid 1 of a namespace has no
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


def exit_like(status: int) -> None:
    """End this process with the wait status of the one it waited for."""
    if os.WIFSIGNALED(status):
        signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        os.kill(os.getpid(), os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def _learner_to_be(handover, alive_r: int, uid: int | None, preamble: str | None, hidden: tuple = ()) -> None:
    """Pid 1 of the submission's namespaces: private mounts, warm-up, "ready", then the learner."""
    kernel.die_with_parent(signal.SIGKILL)  # while it waits: die with the keeper
    try:
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


def _prepared_submission(
    handover, status_w: int, uid: int | None, zygote_pid: int, preamble: str | None, hidden: tuple = ()
) -> None:
    """In the zygote's fresh child: the keeper of a submission's namespaces.

    When the learner dies the kernel kills every process of its namespace
    before the keeper's waitpid returns; the keeper then writes the wait
    status to ``status_w`` (the learner never holds it, so it cannot forge an
    end) and the zygote carries on while the keeper itself exits.
    """
    kernel.die_with_parent(signal.SIGKILL)
    if os.getppid() != zygote_pid:
        os._exit(1)
    alive_r, alive_w = os.pipe()
    kernel.unshare(kernel.SUBMISSION_NAMESPACES)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    learner = os.fork()
    if learner == 0:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        os.close(alive_w)
        os.close(status_w)
        _learner_to_be(handover, alive_r, uid, preamble, hidden)
        return
    # The keeper: "kill" from the zygote arrives as SIGTERM.
    handover.close()
    os.close(alive_r)
    signal.signal(signal.SIGTERM, lambda *_: os.kill(learner, signal.SIGKILL))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    # Returns once the namespace is empty: its init is reaped after all its processes.
    _, status = os.waitpid(learner, 0)
    os.write(status_w, b"%d" % status)
    exit_like(status)


def prepare(control, uid: int | None, zygote_pid: int, preamble: str | None, hidden: tuple = ()) -> Prepared | None:
    """A new :class:`Prepared`, or None when it cannot be made now (no pid or fd left)."""
    try:
        return Prepared(control, uid, zygote_pid, preamble, hidden)
    except OSError:
        return None


class Prepared:
    """The zygote's handle on a prepared submission process: keeper pid, handover socket, status pipe."""

    def __init__(self, control, uid: int | None, zygote_pid: int, preamble: str | None, hidden: tuple = ()):
        self.handover, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.status_r, status_w = os.pipe()
        self.error = ""  # why its setup failed, when it did
        self.pid: int | None = os.fork()
        if self.pid == 0:
            try:
                control.close()
                self.handover.close()
                os.close(self.status_r)
                _prepared_submission(theirs, status_w, uid, zygote_pid, preamble, hidden)
            finally:
                os._exit(70)
        theirs.close()
        os.close(status_w)

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
            self.handover.close()

    def wait_status(self) -> int:
        """The learner's wait status, once its namespace is empty (the keeper may still be exiting)."""
        data = os.read(self.status_r, 32)
        os.close(self.status_r)
        if data:
            return int(data)
        assert self.pid is not None
        _, status = os.waitpid(self.pid, 0)  # the keeper died first: its own status
        self.pid = None
        return status

    def reap(self, block: bool = False) -> bool:
        """Collect the exited keeper; True once it is gone."""
        if self.pid is not None:
            if os.waitpid(self.pid, 0 if block else os.WNOHANG)[0] == 0:
                return False
            self.pid = None
        return True

    def discard(self) -> None:
        for close in (self.handover.close, lambda: os.close(self.status_r)):
            try:
                close()
            except OSError:
                pass
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGTERM)  # the keeper kills the waiting learner, then exits
            except OSError:
                pass
            self.reap(block=True)
