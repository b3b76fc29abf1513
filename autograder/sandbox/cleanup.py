"""What the uid mode does after each learner: kill every process of its uid, delete its files.

Runs inside the sandbox (copied there beside ``child.py``; imports nothing
from autograder but its siblings). In the uid mode (no namespaces: setpriv
in Docker) the learner runs as the sandbox's learner uid, which nothing else
has; this module is how the zygote makes sure nothing of one learner is left
when the next starts (see :class:`zygote.UidRunner`).
"""

from __future__ import annotations

import os
import signal
import stat
import time

if __package__:  # imported by the grader (tests)
    from autograder.sandbox import kernel
else:  # in the sandbox: the file beside this one
    import kernel  # type: ignore[no-redef]


def as_uid(uid: int, action) -> None:
    """Run ``action()`` in a short-lived child with ``uid`` (setuid only: what Docker's minimal caps allow).

    Raises SandboxSetupError when the child could not become ``uid`` or ``action`` failed.
    """
    for attempt in range(50):  # EAGAIN: the pids cgroup is full of processes still exiting
        try:
            helper = os.fork()
            break
        except BlockingIOError:
            time.sleep(0.01 * (attempt + 1))
    else:
        raise OSError("cannot fork a helper to act as the learner's uid")
    if helper == 0:
        code = 1
        try:
            os.setresuid(uid, uid, uid)
            if os.getresuid() == (uid, uid, uid):
                action()
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(helper, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise kernel.SandboxSetupError(f"a helper could not act as the learner uid {uid}")


def kill_uid(uid: int) -> None:
    """SIGKILL every process of ``uid``: kill(-1) from that uid reaches every process it may
    signal and no other uid's, in one pass (no fork completes past a pending SIGKILL)."""

    def kill_all():
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:  # none left
            pass

    as_uid(uid, kill_all)


def sweep_uid(uid: int, patience: float = 8.0) -> bool:
    """Kill every process of ``uid`` and delete what it owns in /tmp; False if one survives.

    The first kill(-1) dooms them all at once (see :func:`_kill_uid`); what
    follows only waits for the kernel to finish them, which for hundreds of
    processes on a loaded machine takes a while. The zygote is a child
    subreaper, so the orphans are its children, reaped here (a zombie still
    counts): this returns only once no process of ``uid`` exists, so nothing of
    a submission is left, even dying, when its grade is handed back. Only one
    that does not die within ``patience`` seconds (unkillable, in the kernel)
    makes it False, and the zygote retires its uid. Files are deleted as
    ``uid`` (root without CAP_FOWNER may not delete them from a sticky /tmp).
    """
    deadline = time.monotonic() + patience
    attempt = 0
    while True:
        kill_uid(uid)  # again each round: cheap, and covers a process that was mid-exec
        reap_children()
        if not processes_of(uid):
            break
        if time.monotonic() > deadline:
            return False
        attempt += 1
        time.sleep(min(0.002 * attempt, 0.05))
    remove_ipc_of(uid)
    # /dev/shm holds POSIX shared memory, /dev/mqueue (where mounted) POSIX message queues.
    folders = {*kernel.WRITABLE_DIRS, "/dev/mqueue", os.environ.get("TMPDIR") or "/tmp"}  # the sandbox's own TMPDIR

    def remove_all() -> None:
        for folder in folders:
            remove_owned(folder, uid, depth=0)

    as_uid(uid, remove_all)
    return True


# System V IPC: /proc/sysvipc/<kind>'s id column, and the call that removes one (IPC_RMID = 0).
SYSV_KINDS = {"shm": "shmid", "sem": "semid", "msg": "msqid"}
IPC_RMID = 0


def sysv_objects_of(uid: int) -> list[tuple[str, int]]:
    """(kind, id) of every System V segment, semaphore set and message queue that ``uid`` owns or created."""
    found = []
    for kind, id_column in SYSV_KINDS.items():
        try:
            with open(f"/proc/sysvipc/{kind}") as table:
                header = table.readline().split()
                rows = [line.split() for line in table]
        except OSError:
            continue
        at = {name: header.index(name) for name in (id_column, "uid", "cuid") if name in header}
        if len(at) < 3:
            continue
        for row in rows:
            if len(row) == len(header) and uid in (int(row[at["uid"]]), int(row[at["cuid"]])):
                found.append((kind, int(row[at[id_column]])))
    return found


def remove_ipc_of(uid: int) -> None:
    """Remove what :func:`sysv_objects_of` finds, as ``uid`` (its owner or creator may; no capability needed).

    The uid mode's learners share the zygote's IPC namespace where no new
    one can be made (Docker's default seccomp profile); without this a
    segment would outlive its learner and be visible to the next one.
    Raises SandboxSetupError when one remains (the zygote then retires).
    """
    objects = sysv_objects_of(uid)
    if not objects:
        return

    def remove_all() -> None:
        libc = kernel.libc()
        for kind, ident in objects:
            if kind == "shm":
                libc.shmctl(ident, IPC_RMID, None)
            elif kind == "sem":
                libc.semctl(ident, 0, IPC_RMID)
            else:
                libc.msgctl(ident, IPC_RMID, None)

    as_uid(uid, remove_all)
    left = sysv_objects_of(uid)
    if left:
        raise kernel.SandboxSetupError(f"{len(left)} System V IPC object(s) of the learner uid {uid} remain")


def processes_of(uid: int) -> list:
    """Pids of the processes whose real uid is ``uid`` (zombies included)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as status:  # readable even for non-dumpable processes
                for line in status:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            found.append(int(entry))
                        break
        except (OSError, ValueError):
            continue
    return found


def reap_children() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def remove_owned(folder: str, uid: int, depth: int) -> None:
    """Delete the entries of ``folder`` owned by ``uid``; look into world-writable subfolders."""
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        path = os.path.join(folder, entry)
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if info.st_uid == uid:
            remove_tree(path)
        elif stat.S_ISDIR(info.st_mode) and info.st_mode & 0o002 and depth < 2:
            remove_owned(path, uid, depth + 1)


def remove_tree(path: str) -> None:
    """Delete a file, link or folder tree of any depth, never following links.

    Iterative and relative to open folder descriptors: a tree nested deeper
    than the recursion limit or PATH_MAX is removed too, and folders left
    unreadable (mode 000) are opened up first (the caller owns them or is root).
    """
    parent, name = os.path.split(os.path.abspath(path))
    try:
        top = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    stack: list[tuple[int, str, int | None]] = [(top, name, None)]  # (folder fd, entry name, fd once opened)
    while stack:
        dir_fd, entry, opened = stack[-1]
        if opened is None:
            try:
                info = os.lstat(entry, dir_fd=dir_fd)
            except OSError:
                stack.pop()
                continue
            if not stat.S_ISDIR(info.st_mode):
                try:
                    os.unlink(entry, dir_fd=dir_fd)
                except OSError:
                    pass
                stack.pop()
                continue
            try:
                os.chmod(entry, 0o700, dir_fd=dir_fd, follow_symlinks=False)
            except (OSError, NotImplementedError):
                pass
            try:
                opened = os.open(entry, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
            except OSError:
                stack.pop()
                continue
            stack[-1] = (dir_fd, entry, opened)
            try:
                children = os.listdir(opened)
            except OSError:
                children = []
            stack.extend((opened, child, None) for child in children)
            continue
        # All children handled (or failed): close and remove the folder itself.
        os.close(opened)
        try:
            os.rmdir(entry, dir_fd=dir_fd)
        except OSError:
            pass
        stack.pop()
    os.close(top)
