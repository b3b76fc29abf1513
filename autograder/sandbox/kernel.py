"""The kernel calls that make a learner process, each checked: they fail closed.

Runs inside the sandbox (copied there beside ``child.py``; imports nothing
from autograder). Every call that takes a protection away from the learner
(prctl, capset, unshare, mount, setgroups, setresgid, setresuid) is checked,
and its effect is read back where the kernel can say it: a failure raises
:class:`SandboxSetupError`, and the process that was to become the learner
stops before any learner code runs. A learner therefore never runs with
fewer protections than its report lists.

All calls go through :func:`libc` (one ctypes handle), so a test can make any
of them fail by replacing it.
"""

from __future__ import annotations

import ctypes
import os
import sys

PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 1, 4, 36
PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS = 38, 39
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x20000, 0x4000000, 0x8000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
SUBMISSION_NAMESPACES = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWUTS
# What pid 1 of a submission's pid namespace unshares itself when the zygote gave it the pid namespace.
LEARNER_NAMESPACES = SUBMISSION_NAMESPACES & ~CLONE_NEWPID
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC, MS_PRIVATE, MS_RELATIME = 1024, 2048, 4096, 16384, 1 << 18, 1 << 21
# statvfs's f_flag bits are not mount(2)'s: ST_RELATIME is 4096, which is MS_BIND as a mount flag.
STATVFS_TO_MOUNT = {
    os.ST_RDONLY: MS_RDONLY,
    os.ST_NOSUID: MS_NOSUID,
    os.ST_NODEV: MS_NODEV,
    os.ST_NOEXEC: MS_NOEXEC,
    os.ST_NOATIME: MS_NOATIME,
    os.ST_NODIRATIME: MS_NODIRATIME,
    os.ST_RELATIME: MS_RELATIME,
}
# Where a learner may write: each gets a private tmpfs in namespace mode.
WRITABLE_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
_CAP_VERSION_3 = 0x20080522


class SandboxSetupError(OSError):
    """A protection could not be put in place; ``str()`` names the call and the kernel's reason."""

    def __str__(self) -> str:
        return str(self.args[-1]) if self.args else "a sandbox protection could not be set up"


_LIBC = None


def libc():
    """The C library, loaded once (tests replace this function to make a call fail)."""
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC


def _checked(result: int, what: str) -> int:
    if result < 0:
        errno = ctypes.get_errno()
        raise SandboxSetupError(errno, f"{what} failed: {os.strerror(errno) if errno else 'error'}")
    return result


def prctl(option: int, value: int, what: str) -> int:
    return _checked(libc().prctl(option, value, 0, 0, 0), f"prctl({what})")


def set_no_new_privs() -> None:
    """No execve can ever grant privileges again (setuid binaries, file capabilities)."""
    prctl(PR_SET_NO_NEW_PRIVS, 1, "PR_SET_NO_NEW_PRIVS")
    if prctl(PR_GET_NO_NEW_PRIVS, 0, "PR_GET_NO_NEW_PRIVS") != 1:
        raise SandboxSetupError("no_new_privs is not set after PR_SET_NO_NEW_PRIVS")


def die_with_parent(signal_number: int) -> None:
    prctl(PR_SET_PDEATHSIG, signal_number, "PR_SET_PDEATHSIG")


def set_dumpable(value: bool) -> None:
    prctl(PR_SET_DUMPABLE, int(value), "PR_SET_DUMPABLE")


def become_subreaper() -> None:
    prctl(PR_SET_CHILD_SUBREAPER, 1, "PR_SET_CHILD_SUBREAPER")


def unshare(flags: int) -> None:
    _checked(libc().unshare(flags), "unshare")


def setns(fd: int, nstype: int) -> None:
    """Join the namespace ``fd`` refers to (for CLONE_NEWPID: the one this process's future children get)."""
    _checked(libc().setns(fd, nstype), "setns")


def try_unshare(flags: int) -> bool:
    """unshare(flags) where the kernel allows it; False (and nothing changed) where it does not."""
    try:
        unshare(flags)
        return True
    except SandboxSetupError:
        return False


def mount(source, target: str, fstype, flags: int, data=None) -> None:
    def enc(value):
        return value.encode() if isinstance(value, str) else value

    _checked(libc().mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


def drop_capabilities() -> None:
    """Empty the effective, permitted and inheritable sets, and read them back."""
    empty = (ctypes.c_uint32 * 6)()
    _checked(libc().capset(ctypes.byref(_CapHeader(_CAP_VERSION_3, 0)), empty), "capset")
    now = (ctypes.c_uint32 * 6)()
    _checked(libc().capget(ctypes.byref(_CapHeader(_CAP_VERSION_3, 0)), now), "capget")
    if any(now):
        raise SandboxSetupError("capabilities remain after capset")


def become_learner(uid: int | None) -> None:
    """Drop to the learner uid (as root), then no capabilities and no way to gain any.

    ``uid`` None: stay this uid (not root: unprivileged bubblewrap), still
    dropping every capability of its user namespace.
    """
    if uid is not None:
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
        except OSError as exc:
            raise SandboxSetupError(exc.errno, f"changing to the learner uid {uid} failed: {exc.strerror}") from None
        if os.getresuid() != (uid, uid, uid) or os.getresgid() != (uid, uid, uid) or os.getgroups():
            raise SandboxSetupError(f"the process is not uid/gid {uid} with no groups after the change")
    drop_capabilities()
    set_no_new_privs()


def namespace_setup() -> str:
    """How this zygote can give a submission its own namespaces and mounts (``prepared.py``):
    "direct", "keeper" (where ``setns`` is refused: unprivileged bubblewrap, as in the Docker
    image), or "" where it cannot (Docker's default seccomp profile, no CAP_SYS_ADMIN,
    AppArmor): the uid mode then, which the report names.

    Each way is tried whole in a throwaway child, so this process keeps its own namespaces:
    "direct" unshares a pid namespace, forks pid 1 (which unshares the others and makes
    :func:`private_mounts`), joins its own pid namespace back with :func:`setns` and unshares a
    second one, as the zygote does for every spare; "keeper" unshares all of them and forks.
    Once chosen, a setup that fails stops that submission."""
    for way in ("direct", "keeper"):
        if _setup_works(direct=way == "direct"):
            return way
    return ""


def _setup_works(direct: bool) -> bool:
    pid = os.fork()
    if pid == 0:
        try:
            own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
            unshare(CLONE_NEWPID if direct else SUBMISSION_NAMESPACES)
            inner = os.fork()
            if inner == 0:
                try:
                    if direct:
                        unshare(LEARNER_NAMESPACES)
                    private_mounts()
                    os._exit(0)
                finally:
                    os._exit(1)
            if direct:
                setns(own, CLONE_NEWPID)
                unshare(CLONE_NEWPID)  # refused unless the setns took: one pending pid namespace at a time
            _, status = os.waitpid(inner, 0)
            os._exit(os.waitstatus_to_exitcode(status))
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def traversable_dirs(top: str, path: str) -> None:
    """Create ``path`` below ``top`` with every new folder 0755, whatever the umask.

    The grader runs with umask 077, under which os.makedirs would make the
    parents 0700 root: the learner's uid could then not reach the Python
    installation bound below them.
    """
    current = top
    for part in os.path.relpath(path, top).split(os.sep):
        current = os.path.join(current, part)
        if not os.path.isdir(current):
            os.mkdir(current)
            os.chmod(current, 0o755)


def hide(path: str) -> None:
    """Cover ``path`` in this mount namespace: a device node by /dev/null, a folder by an empty tmpfs."""
    if os.path.isdir(path) and not os.path.islink(path):
        mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0555,size=4k")
        if os.listdir(path):
            raise SandboxSetupError(f"{path} is not empty after covering it")
        return
    mount("/dev/null", path, None, MS_BIND)
    if os.stat(path).st_rdev != os.stat("/dev/null").st_rdev:
        raise SandboxSetupError(f"{path} is not /dev/null after covering it")


def mount_flags_of(path: str) -> int:
    """The mount(2) flags that correspond to the statvfs flags of the mount holding ``path``."""
    flags = os.statvfs(path).f_flag
    return sum(mount_flag for stat_flag, mount_flag in STATVFS_TO_MOUNT.items() if flags & stat_flag)


def remount_read_only(mount_point: str) -> None:
    """Make ``mount_point`` read-only in this mount namespace, keeping its other (possibly locked) flags.

    A folder that is not a mount point of its own refuses the remount; then
    the mount holding it must already be read-only. Either way it is read
    back: a learner never sees it writable.
    """
    try:
        mount(None, mount_point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | mount_flags_of(mount_point))
    except SandboxSetupError:
        pass  # checked below: not a mount point of its own, its parent's flags apply
    if not os.statvfs(mount_point).f_flag & os.ST_RDONLY:
        raise SandboxSetupError(f"{mount_point} is still writable after the read-only remount")


def private_mounts(hidden: tuple = ()) -> None:
    """The learner's own /proc, /tmp, /dev/shm and a read-only rest (a fresh mount namespace, as root).

    ``hidden``: device nodes (GPUs the learner may not use, under setpriv) covered with /dev/null, and
    folders of them (nvidia-caps/) with an empty read-only tmpfs; each is read back."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    for path in hidden:
        hide(path)
    # The Python installation may live under /tmp (a checkout in /tmp): keep
    # a handle on it and bind it back onto the new tmpfs.
    kept = sorted({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix)})
    for folder in WRITABLE_DIRS:
        if not os.path.isdir(folder) or os.path.islink(folder):
            continue
        inside = [root for root in kept if root.startswith(folder + "/")]
        handles = [os.open(root, os.O_PATH) for root in inside]
        mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
        for root, handle in zip(inside, handles):
            traversable_dirs(folder, root)
            mount(f"/proc/self/fd/{handle}", root, None, MS_BIND | MS_REC)
            os.close(handle)
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    # Everything else read-only for this learner (a bind remount changes this namespace's view
    # only): the sandbox's root tmpfs and /dev, or the host's root under setpriv.
    for mount_point in ("/", "/dev"):
        remount_read_only(mount_point)
