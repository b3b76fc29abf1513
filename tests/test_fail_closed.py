"""Every kernel call that protects a learner fails closed (autograder/sandbox/kernel.py).

Each test makes one call fail (the C library handle ``kernel.libc`` replaced,
or an ``os`` function patched) and runs the step that uses it in a forked
child, as the sandbox does: the step must refuse with SandboxSetupError,
never carry on with a protection missing. The last tests follow a refusal to
where the grader sees it: the zygote's "error" at start, a prepared process's
"error" instead of "ready", and spawn's SpawnError.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import subprocess
import sys

import pytest

from autograder.sandbox import cleanup, isolation, kernel, prepared, spawn, zygote

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="changing uid and mounting need root")


class FailingLibc:
    """The real C library, but ``name`` (with first argument ``option``, when given) fails with EPERM."""

    def __init__(self, name: str, option: int | None = None, result: int = -1):
        self.real = ctypes.CDLL(None, use_errno=True)
        self.name, self.option, self.result = name, option, result

    def __getattr__(self, name):
        real = getattr(self.real, name)
        if name != self.name:
            return real

        def failing(*args):
            if self.option is not None and args[0] != self.option:
                return real(*args)
            ctypes.set_errno(errno.EPERM)
            return self.result

        return failing


def in_child(action) -> tuple[int, str]:
    """Run ``action()`` in a forked child: (exit code, what happened). 3 = refused, 0 = went on."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        os.close(read_end)
        code = 4
        try:
            action()
            os.write(write_end, b"went on")
            code = 0
        except kernel.SandboxSetupError as exc:
            os.write(write_end, f"refused: {exc}".encode())
            code = 3
        except BaseException as exc:
            os.write(write_end, repr(exc).encode())
        finally:
            os._exit(code)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 4096):
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode()


@pytest.mark.parametrize(
    "option, step, words",
    [
        (kernel.PR_SET_NO_NEW_PRIVS, kernel.set_no_new_privs, "PR_SET_NO_NEW_PRIVS"),
        (kernel.PR_SET_PDEATHSIG, lambda: kernel.die_with_parent(9), "PR_SET_PDEATHSIG"),
        (kernel.PR_SET_DUMPABLE, lambda: kernel.set_dumpable(False), "PR_SET_DUMPABLE"),
        (kernel.PR_SET_CHILD_SUBREAPER, kernel.become_subreaper, "PR_SET_CHILD_SUBREAPER"),
    ],
)
def test_a_failed_prctl_is_refused(monkeypatch, option, step, words):
    monkeypatch.setattr(kernel, "libc", lambda: FailingLibc("prctl", option))
    code, said = in_child(step)
    assert code == 3 and words in said and "Operation not permitted" in said, said


def test_no_new_privs_is_read_back(monkeypatch):
    """PR_SET_NO_NEW_PRIVS that 'succeeds' without effect (PR_GET says 0) is refused too."""
    monkeypatch.setattr(kernel, "libc", lambda: FailingLibc("prctl", kernel.PR_SET_NO_NEW_PRIVS, result=0))
    code, said = in_child(kernel.set_no_new_privs)
    assert code == 3 and "no_new_privs is not set" in said, said


def test_a_failed_capset_is_refused(monkeypatch):
    monkeypatch.setattr(kernel, "libc", lambda: FailingLibc("capset"))
    code, said = in_child(kernel.drop_capabilities)
    assert code == 3 and "capset failed" in said, said


@ROOT_ONLY
def test_capabilities_are_read_back(monkeypatch):
    """A capset that 'succeeds' but leaves root's capabilities (as root they are all there) is refused."""
    monkeypatch.setattr(kernel, "libc", lambda: FailingLibc("capset", result=0))
    code, said = in_child(kernel.drop_capabilities)
    assert code == 3 and "capabilities remain" in said, said


def test_a_failed_unshare_is_refused(monkeypatch):
    monkeypatch.setattr(kernel, "libc", lambda: FailingLibc("unshare"))
    code, said = in_child(lambda: kernel.unshare(kernel.SUBMISSION_NAMESPACES))
    assert code == 3 and "unshare failed" in said, said


@ROOT_ONLY
def test_a_failed_mount_stops_the_private_mounts(monkeypatch):
    monkeypatch.setattr(kernel, "libc", lambda: FailingLibc("mount"))

    def step():
        kernel.unshare(kernel.CLONE_NEWNS)  # the real call: the patched one is mount only
        kernel.private_mounts()

    code, said = in_child(step)
    assert code == 3 and "mount / failed" in said, said


def test_a_read_only_remount_without_effect_is_refused(monkeypatch, tmp_path):
    """The remount 'succeeds' and changes nothing: the folder is read back, still writable, refused."""
    monkeypatch.setattr(kernel, "libc", lambda: FailingLibc("mount", result=0))
    code, said = in_child(lambda: kernel.remount_read_only(str(tmp_path)))
    assert code == 3 and "still writable" in said, said


def test_statvfs_flags_are_translated_to_mount_flags(monkeypatch):
    """ST_RELATIME (4096) is MS_BIND as a mount flag: the remount must ask for MS_RELATIME instead."""

    class Flags:
        f_flag = os.ST_RELATIME | os.ST_NOSUID | os.ST_NODEV

    monkeypatch.setattr(kernel.os, "statvfs", lambda path: Flags)
    assert kernel.mount_flags_of("/") == kernel.MS_RELATIME | kernel.MS_NOSUID | kernel.MS_NODEV


@ROOT_ONLY
@pytest.mark.parametrize("call", ["setgroups", "setresgid", "setresuid"])
def test_a_failed_uid_change_is_refused(monkeypatch, call):
    def fail(*args):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(kernel.os, call, fail)
    code, said = in_child(lambda: kernel.become_learner(isolation.SANDBOX_UID))
    assert code == 3 and "changing to the learner uid" in said, said


@ROOT_ONLY
def test_a_uid_change_without_effect_is_refused(monkeypatch):
    monkeypatch.setattr(kernel.os, "setresuid", lambda *ids: None)
    code, said = in_child(lambda: kernel.become_learner(isolation.SANDBOX_UID))
    assert code == 3 and "is not uid/gid" in said, said


@ROOT_ONLY
def test_the_learner_really_has_no_privileges_after_become_learner():
    """The positive case of the checks above: the real calls, read back from the kernel."""

    def step():
        kernel.become_learner(isolation.SANDBOX_UID)
        status = open("/proc/self/status").read()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        assert fields["NoNewPrivs"].strip() == "1"
        assert all(fields[key].strip() == "0" * 16 for key in ("CapEff", "CapPrm", "CapInh"))
        assert os.getresuid() == (isolation.SANDBOX_UID,) * 3 and os.getgroups() == []

    code, said = in_child(step)
    assert code == 0, said


@ROOT_ONLY
def test_the_uid_sweep_refuses_when_it_cannot_act_as_the_learner(monkeypatch):
    monkeypatch.setattr(cleanup.os, "setresuid", lambda *ids: None)  # the helper stays root
    code, said = in_child(lambda: cleanup.kill_uid(isolation.SANDBOX_UID))
    assert code == 3 and "could not act as the learner uid" in said, said


def test_a_zygote_that_cannot_protect_its_learners_says_error_and_serves_none(monkeypatch):
    monkeypatch.setattr(kernel, "libc", lambda: FailingLibc("prctl", kernel.PR_SET_DUMPABLE))
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    code, said = in_child(lambda: (ours.close(), zygote.zygote(theirs.fileno(), [], None, namespaces=False)))
    theirs.close()
    assert code == 0, said  # the zygote returned (its process then exits) instead of serving
    assert ours.recv(600).startswith(b"error prctl(PR_SET_DUMPABLE) failed")
    assert ours.recv(600) == b""  # and nothing else: no "ready"


def test_a_prepared_process_whose_mounts_fail_says_error_instead_of_ready(monkeypatch):
    def refuse(hidden=()):
        raise kernel.SandboxSetupError("mount /tmp failed: Operation not permitted")

    monkeypatch.setattr(kernel, "private_mounts", refuse)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    alive_r, alive_w = os.pipe()
    code, said = in_child(lambda: prepared._learner_to_be(theirs, alive_r, None, None))
    assert code == 1, said  # it ended; no warm-up, no learner
    assert ours.recv(600) == b"error mount /tmp failed: Operation not permitted"
    for fd in (alive_r, alive_w):
        os.close(fd)


@ROOT_ONLY
def test_where_setns_is_refused_the_namespaces_come_through_a_keeper(monkeypatch):
    """Where setns is refused (unprivileged bubblewrap, a seccomp profile without it) the
    zygote's direct way fails its trial, the keeper way is chosen, never a weaker mode; with
    every namespace call refused, "" (the uid mode, which the report names)."""

    def setup_as(libc):
        def action():
            monkeypatch.setattr(kernel, "libc", lambda: libc)
            way = kernel.namespace_setup()
            raise kernel.SandboxSetupError(0, f"setup {way!r}")

        return in_child(action)[1]

    if not kernel.namespace_setup():
        pytest.skip("this host gives a root process no namespaces of its own")
    assert setup_as(ctypes.CDLL(None, use_errno=True)) == "refused: setup 'direct'"
    assert setup_as(FailingLibc("setns")) == "refused: setup 'keeper'"
    assert setup_as(FailingLibc("unshare")) == "refused: setup ''"


def test_spawn_turns_a_refusing_zygote_into_a_spawn_error(monkeypatch):
    """What the grader does with the zygote's "error": no zygote, a SpawnError with the reason."""

    def fake_start(args, workdir, grader_dir, limits, pass_fds, strategy=None, uid=None):
        control = args[args.index("--zygote") + 1]
        script = (
            "import socket, sys; s = socket.socket(fileno=int(sys.argv[1])); "
            "s.sendall(b'error capset failed: Operation not permitted')"
        )
        popen = subprocess.Popen(
            [sys.executable, "-c", script, control], pass_fds=pass_fds, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        return isolation.SandboxProcess(popen, "plain")

    monkeypatch.setattr(isolation, "start", fake_start)
    limits = isolation.Limits(memory_mb=512, address_space_mb=4096, cpu_seconds=10, processes=64)
    with pytest.raises(spawn.SpawnError, match="the sandbox refused to start: capset failed"):
        spawn.Zygote(None, limits, [], strategy="plain")


@ROOT_ONLY
def test_a_zygote_that_cannot_rejoin_its_pid_namespace_ends(monkeypatch):
    """After forking a spare into a fresh pid namespace the zygote joins its own again for its next
    children; if that setns is refused it could start no learner any more, so it ends (exit 71) and
    the grader starts a new zygote (spawn.ZygoteSpawner.warm) instead of failing every later start."""
    monkeypatch.setattr(kernel, "libc", lambda: FailingLibc("setns"))
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)

    def make_a_spare():
        pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        prepared.DirectPrepared(theirs, pid_ns, None, None)

    code, said = in_child(make_a_spare)
    assert code == 71, said
    ours.close()
    theirs.close()
