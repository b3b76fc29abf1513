"""A submission's process made ready in advance (the zygote's namespace mode).

Runs inside the sandbox (copied there beside ``child.py``; imports nothing
from autograder but its siblings). The zygote keeps one prepared process as a
spare while the current learner runs, so each graded function's child starts
without waiting for namespaces, mounts and the imports cell.

The learner-to-be is pid 1 of a pid namespace of its own and has mount, ipc,
network and uts namespaces of its own; it mounts its private /proc, /tmp and
/dev/shm, makes the rest read-only, runs the trusted warm-up and says "ready".
Only when the zygote hands it the submission's four pipes does it become the
learner uid (:func:`kernel.become_learner`). Every step is checked: a spare
whose setup fails says "error <reason>" instead of "ready" and is never handed
a learner. It is made one of two ways (``kernel.namespace_setup`` says which
works here, "direct" first):

``direct`` (:class:`DirectPrepared`): the zygote unshares a pid namespace
    (which sets only the namespace of its future children), forks, and joins
    its own pid namespace again (:func:`kernel.setns` on the handle it opened
    at start). The learner-to-be is the zygote's own child: the zygote waits
    for it through a pidfd and ``waitpid``, which on a namespace's init
    returns only once the kernel has killed and reaped every other process of
    that namespace, and kills it with SIGKILL of its pid 1 (not reaped until
    the zygote waits, so the pid is still its). The learner holds no
    descriptor of the zygote's (pidfds, alive pipes, handover sockets): it
    cannot report its own end while it runs.
``keeper`` (:class:`KeeperPrepared`), where ``setns`` is refused: in
    unprivileged bubblewrap (the Docker image), whose final user namespace is
    nested inside the one that owns the zygote's pid namespace, the kernel
    refuses it (EPERM with seccomp off too); so does a seccomp profile that
    allows ``unshare`` but not ``setns``. A keeper process (root, runs nothing
    of the learner's) unshares the namespaces and forks the learner-to-be;
    when the learner dies the keeper writes its wait status to a pipe the
    learner never holds.

Why ``direct`` first: fork and exit cost CPU in proportion to the process's
memory (its page tables), and a keeper is a full copy of the zygote: for a
TensorFlow zygote each fork and exit cost ~9 ms of CPU (~17 ms before
``hugepages.py``), so every child paid two of them.
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

    ``alive_r``: a pipe that reaches EOF when the process that waits for it (the zygote, or the
    keeper) is gone (pid 1 of a namespace has no parent pid to compare); else ``parent`` is the
    zygote's pid."""
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


def _learner_to_be(
    handover, alive_r: int, uid: int | None, preamble: str | None, hidden: tuple = (), namespaces: int = 0
) -> None:
    """Pid 1 of the submission's pid namespace: its other ``namespaces`` (direct: none made yet),
    private mounts, warm-up, "ready", then the learner."""
    kernel.die_with_parent(signal.SIGKILL)  # while it waits: die with the zygote or the keeper
    if select.select([alive_r], [], [], 0)[0]:  # EOF: it died before we asked
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


def prepare(
    control, uid: int | None, zygote_pid: int, preamble: str | None, hidden: tuple = (), pid_ns: int | None = None
) -> Prepared | None:
    """A new prepared process, the direct way when ``pid_ns`` (the zygote's own pid namespace) is
    given, else through a keeper; None when it cannot be made now (no pid or fd left, or a
    namespace call refused: then no learner starts, "exited 70")."""
    try:
        if pid_ns is not None:
            return DirectPrepared(control, pid_ns, uid, preamble, hidden)
        return KeeperPrepared(control, uid, zygote_pid, preamble, hidden)
    except OSError:
        return None


_HELD: set[int] = set()  # the zygote's descriptors of every DirectPrepared it holds: no new child keeps them


def _close(fd: int) -> None:
    _HELD.discard(fd)
    try:
        os.close(fd)
    except OSError:
        pass


class Prepared:
    """The zygote's handle on a prepared submission process: pid, handover socket, and a
    descriptor that becomes readable when it has ended (:meth:`exited`)."""

    handover: socket.socket
    pid: int | None
    error: str  # why its setup failed, when it did

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

    def exited(self) -> int:
        raise NotImplementedError

    def kill(self) -> None:
        """End the submission: the kernel then kills every process of its namespace."""
        raise NotImplementedError

    def wait_status(self) -> int:
        """The learner's wait status, once its namespace is empty."""
        raise NotImplementedError

    def reap(self, block: bool = False) -> bool:
        """Collect what is left of it after :meth:`wait_status`; True once nothing is."""
        return True

    def discard(self) -> None:
        raise NotImplementedError


class DirectPrepared(Prepared):
    """The zygote's own child, pid 1 of its own pid namespace: pid, pidfd (readable once it has
    ended), handover socket and alive pipe."""

    def __init__(self, control, pid_ns: int, uid: int | None, preamble: str | None, hidden: tuple = ()):
        self.error = ""
        self.pid = None
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
            # namespace is refused while one is pending). Should this fail, this zygote could start
            # no learner any more: it ends (its children die with it), and the grader starts a new
            # one for the next child (spawn.ZygoteSpawner.warm).
            try:
                kernel.setns(pid_ns, kernel.CLONE_NEWPID)
            except kernel.SandboxSetupError:
                os._exit(71)

    def exited(self) -> int:
        return self.pidfd

    def kill(self) -> None:
        if self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)  # its namespace's init, not reaped yet: the pid is still its

    def wait_status(self) -> int:
        assert self.pid is not None
        _, status = os.waitpid(self.pid, 0)  # on a namespace's init: returns once the namespace is empty
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


class KeeperPrepared(Prepared):
    """Through a keeper (the zygote's child, which forks the learner-to-be): keeper pid, handover
    socket, status pipe."""

    def __init__(self, control, uid: int | None, zygote_pid: int, preamble: str | None, hidden: tuple = ()):
        self.handover, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.status_r, status_w = os.pipe()
        self.error = ""
        self.pid = os.fork()
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

    def exited(self) -> int:
        return self.status_r

    def kill(self) -> None:
        if self.pid is not None:
            os.kill(self.pid, signal.SIGTERM)  # the keeper kills its namespace's init

    def wait_status(self) -> int:
        """(The keeper may still be exiting: :meth:`reap` collects it.)"""
        data = os.read(self.status_r, 32)
        os.close(self.status_r)
        if data:
            return int(data)
        assert self.pid is not None
        _, status = os.waitpid(self.pid, 0)  # the keeper died first: its own status
        self.pid = None
        return status

    def reap(self, block: bool = False) -> bool:
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
