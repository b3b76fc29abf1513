"""How a learner process comes to life: started cold, or forked from a zygote.

Both spawners return a :class:`Child`: the two protocol pipes, the learner's
stdout/stderr pipes, and a way to kill it. :class:`LearnerProcess` does not
care which one made it.

``DirectSpawner`` starts ``python child.py`` in a new sandbox each time.
``Zygote`` starts one sandboxed process that imports numpy, the assignment's
helper module and, for TensorFlow assignments, TensorFlow, then forks a fresh
child per submission (fork safety: the zygote never runs a TF op, so no TF
thread pool exists when it forks; TF creates its pools in the child). A batch
then pays ``import tensorflow`` once per worker, not once per submission.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from autograder.sandbox import isolation, settings

PACKAGE_DIR = Path(__file__).resolve().parent
PREAMBLE_FILE = "preamble.txt"
# What runs in the sandbox (child.py and what it imports; tests/test_layers.py keeps them free of autograder).
LEARNER_SIDE_MODULES = (
    "child.py",
    "worker.py",
    "zygote.py",
    "prepared.py",
    "kernel.py",
    "cleanup.py",
    "codec.py",
    "tf_start.py",
    "onednn_jit.py",
    "hugepages.py",
)


class SpawnError(RuntimeError):
    pass


@dataclass
class Child:
    req_w: int
    resp_r: int
    stdout: Any  # readable binary file objects, drained by the grader (grading/connection.py)
    stderr: Any
    strategy: str
    _kill: Callable[[], None]
    _exit_code: Callable[[], int | None]
    _memory_exceeded: Callable[[], bool] = lambda: False
    # How this submission was kept apart (see zygote.py): "namespace", "uid", "sandbox" (a
    # cold sandbox of its own) or "none"; and the cgroup limits applied to it, as they
    # stand when asked (Cgroups.held: read again, only what held so far).
    separation: str = "sandbox"
    _limits: Callable[[], tuple] = tuple

    @property
    def limits_enforced(self) -> tuple:
        return self._limits()

    def kill(self) -> None:
        self._kill()

    def exit_code(self):
        return self._exit_code()

    def memory_exceeded(self) -> bool:
        return self._memory_exceeded()


def prepare_dirs(helper_dir: Path | None, preamble: str | None = None) -> Path:
    """A temp dir with work/ (the assignment's helper modules) and grader/ (child, codec, and the
    assignment's imports cell when a zygote runs it ahead of its learners)."""
    root = Path(tempfile.mkdtemp(prefix="dlgrade-"))
    work, grader = root / "work", root / "grader"
    work.mkdir()
    grader.mkdir()
    if helper_dir is not None:
        for path in sorted(Path(helper_dir).glob("*.py")):
            shutil.copy2(path, work / path.name)
    for name in LEARNER_SIDE_MODULES:
        shutil.copy2(PACKAGE_DIR / name, grader / name)
    if preamble is not None:
        (grader / PREAMBLE_FILE).write_text(preamble, encoding="utf-8")
    # Readable by uid 65534, writable by nobody but us.
    for path in (root, work, grader, *work.iterdir(), *grader.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


class Spawner(Protocol):
    """What a LearnerProcess needs of a spawner (DirectSpawner, ZygoteSpawner).

    ``starts_in_background``: whether ``spawn()`` may be called from a
    short-lived helper thread (LearnerProcess starts the next function's child
    in one while the grader works). A sandbox dies with the *thread* that
    started it (PR_SET_PDEATHSIG), so only a spawner whose sandboxes are
    started by a thread that lives as long as the process may say True.
    """

    starts_in_background: ClassVar[bool]

    def spawn(self) -> Child:
        """A new learner child; raises SpawnError when none can be started."""
        ...

    def close(self) -> None:
        """Release what the spawner holds (its folders; a shared zygote stays)."""
        ...


def _pipes():
    req_r, req_w = os.pipe()
    resp_r, resp_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    return (req_r, resp_w, out_w, err_w), (req_w, resp_r, out_r, err_r)


class DirectSpawner:
    """A cold ``python child.py`` in a new sandbox for every start."""

    # The sandbox is started by the calling thread and dies with it: never from a helper thread.
    starts_in_background: ClassVar[bool] = False

    def __init__(self, helper_dir: Path | None, limits: isolation.Limits, strategy: str | None = None):
        self.root = prepare_dirs(helper_dir)
        self.limits = limits
        self.strategy = strategy

    def spawn(self) -> Child:
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        grader = self.root / "grader"
        strategy = self.strategy or isolation.available_strategy()
        # A uid of its own (as root): nothing else on the machine can be signalled by it.
        uid = (
            isolation.private_uid() if os.geteuid() == 0 and strategy in ("bwrap", "setpriv") else isolation.SANDBOX_UID
        )
        proc = isolation.start(
            [str(grader / "child.py"), "--fds", str(req_r), str(resp_w)],
            self.root / "work",
            grader,
            self.limits,
            pass_fds=(req_r, resp_w),
            strategy=strategy,
            uid=uid,
        )
        os.close(req_r)
        os.close(resp_w)
        return Child(
            req_w,
            resp_r,
            proc.popen.stdout,
            proc.popen.stderr,
            proc.strategy,
            proc.kill,
            proc.popen.poll,
            proc.cgroups.memory_exceeded,
            _limits=proc.cgroups.held,
        )

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class Zygote:
    """One warm sandboxed process that forks a fresh learner child per start."""

    def __init__(
        self,
        helper_dir: Path | None,
        limits: isolation.Limits,
        preload: list[str],
        strategy: str | None = None,
        ready_timeout: float = 120,
        preamble: str | None = None,
    ):
        self.root = prepare_dirs(helper_dir, preamble)
        self.limits = limits
        self.lock = threading.Lock()
        self.closed = False
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        strategy = strategy or isolation.available_strategy()
        grader = self.root / "grader"
        args = [str(grader / "child.py"), "--zygote", str(theirs.fileno()), "--preload", ",".join(preload)]
        if preamble is not None:  # run by each prepared learner process before it is handed a learner
            args += ["--preamble", str(grader / PREAMBLE_FILE)]
        # As root the zygote stays root (bwrap: with a few capabilities) and
        # runs its learners as a private uid it never has itself: a learner
        # cannot signal, renice or prlimit it, and RLIMIT_NPROC counts the
        # learner's processes alone. Unprivileged bwrap has one uid to map:
        # there the learner's own pid namespace is what keeps it from the zygote.
        zygote_uid: int | None = isolation.SANDBOX_UID
        if os.geteuid() == 0 and strategy in ("bwrap", "setpriv"):
            zygote_uid = None
            args += ["--learner-uid", str(isolation.private_uid())]
        elif strategy == "bwrap":
            zygote_uid = None  # holds ZYGOTE_CAPS in its own user namespace (see isolation.bwrap_command)
        if not settings.current().namespaces:  # what Docker's seccomp profile allows: tests the uid mode outside it
            args += ["--no-namespaces"]
        elif settings.current().namespace_keeper:
            args += ["--keeper"]
        for node in isolation.hidden_gpu_nodes(
            strategy
        ):  # GPUs off under setpriv: covered in each learner's namespaces
            args += ["--hide", node]
        self.proc = isolation.start(
            args, self.root / "work", grader, limits, pass_fds=(theirs.fileno(),), strategy=strategy, uid=zygote_uid
        )
        theirs.close()
        self.control = ours
        self.strategy = strategy
        # The zygote's own output (TF's start-up noise) is not any learner's: discard it.
        for pipe in (self.proc.popen.stdout, self.proc.popen.stderr):
            threading.Thread(target=_discard, args=(pipe,), daemon=True).start()
        self.control.settimeout(ready_timeout)
        try:
            ready = self.control.recv(600)
        except OSError as exc:
            self.close()
            raise SpawnError(f"the grading zygote did not start: {exc}")
        if ready.startswith(b"error "):  # a protection could not be set up: nothing runs without it
            self.close()
            raise SpawnError("the sandbox refused to start: " + ready[6:].decode("utf-8", "replace"))
        if not ready.startswith(b"ready "):
            self.close()
            raise SpawnError(f"the grading zygote did not start (exit code {self.proc.popen.poll()})")
        self.separation = ready.split()[1].decode()  # namespace | uid | none
        self.busy = False

    def alive(self) -> bool:
        # A closed zygote is never used again, even while its sandbox is still dying (a fork
        # bomb of TF processes takes seconds to tear down): it may still have a "live" child.
        return not self.closed and self.proc.popen.poll() is None

    def spawn(self) -> Child:
        with self.lock:
            if self.busy:
                raise SpawnError("zygote already has a live child")
            child_ends, our_ends = _pipes()
            # The learner is born in the sandbox's cgroups (memory, pids, CPU quota), one
            # learner at a time; moving each into cgroups of its own would cost 15-30 ms
            # (cgroup v1 migration waits for an RCU grace period). Its pid namespace is
            # what kills all of it at once.
            cgroups = self.proc.cgroups
            memory_events_before = cgroups.memory_event_count()
            try:
                socket.send_fds(self.control, [b"fork"], list(child_ends))
            except OSError as exc:
                for fd in child_ends + our_ends:
                    os.close(fd)
                raise SpawnError(f"the grading zygote is gone: {exc}")
            for fd in child_ends:
                os.close(fd)
            self.busy = True
        req_w, resp_r, out_r, err_r = our_ends
        state: dict[str, Any] = {"code": None}

        def wait_exit(timeout: float):
            if state["code"] is not None or not self.busy:
                return state["code"]
            self.control.settimeout(timeout)
            try:
                message = self.control.recv(64)
            except (TimeoutError, OSError):
                return None
            if message.startswith(b"exited"):
                state["code"] = int(message.split()[1])
                state["memory"] = cgroups.memory_event_count() > memory_events_before
                self.busy = False
            return state["code"]

        def kill():
            if self.busy:
                try:
                    self.control.send(b"kill")
                except OSError:
                    pass
                if wait_exit(15) is None:  # the zygote itself is stuck (its sweep waits up to 8 s): replace it
                    self.close()

        def exit_code():
            return wait_exit(0.001)

        def memory_exceeded():
            return state.get("memory", False) or cgroups.memory_event_count() > memory_events_before

        return Child(
            req_w,
            resp_r,
            os.fdopen(out_r, "rb", buffering=0),
            os.fdopen(err_r, "rb", buffering=0),
            self.strategy,
            kill,
            exit_code,
            memory_exceeded,
            separation=self.separation,
            _limits=cgroups.held,
        )

    def close(self) -> None:
        self.closed = True
        try:
            self.control.close()
        except OSError:
            pass
        self.proc.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def _discard(pipe) -> None:
    while pipe.read(1 << 16):
        pass


# One zygote per assignment per grading process, reused across submissions.
_ZYGOTES: dict = {}
_ZYGOTES_LOCK = threading.Lock()
# The one thread that starts zygotes (see ZygoteSpawner.warm); its worker never exits.
_STARTER = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="dlgrade-zygote-starter")


class ZygoteSpawner:
    """The spawner a LearnerProcess uses in a long-lived grader: the shared zygote."""

    # Zygotes are started by one long-lived thread (see warm) and a learner child is the
    # zygote's: spawn() may run in any thread.
    starts_in_background: ClassVar[bool] = True

    def __init__(
        self,
        key: str,
        helper_dir: Path | None,
        limits: isolation.Limits,
        preload: list[str],
        strategy=None,
        preamble: str | None = None,
    ):
        self.key, self.helper_dir, self.limits, self.preload, self.strategy = key, helper_dir, limits, preload, strategy
        self.preamble = preamble

    def warm(self) -> Zygote:
        """The shared zygote, started if needed.

        The sandbox dies with its parent (PR_SET_PDEATHSIG), and Linux means the
        parent *thread*: a zygote started from a short-lived thread (a Dask
        task, a prestart helper) would die with it. So zygotes are always
        started from one thread that lives as long as the process.
        """
        with _ZYGOTES_LOCK:
            zygote = _ZYGOTES.get(self.key)
            if zygote is None or not zygote.alive():
                if zygote is not None:
                    zygote.close()
                zygote = _STARTER.submit(
                    Zygote, self.helper_dir, self.limits, self.preload, self.strategy, preamble=self.preamble
                ).result()
                _ZYGOTES[self.key] = zygote
            return zygote

    def spawn(self) -> Child:
        return self.warm().spawn()

    def close(self) -> None:
        pass  # the zygote outlives one submission on purpose


def close_zygotes() -> None:
    with _ZYGOTES_LOCK:
        for zygote in _ZYGOTES.values():
            zygote.close()
        _ZYGOTES.clear()


atexit.register(close_zygotes)
