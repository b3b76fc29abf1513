"""Stopping ``dlgrade batch``: no process of the run survives, every finished grade is kept.

Each run is started under a small launcher that is a child subreaper
(PR_SET_CHILD_SUBREAPER): whatever the batch leaves behind when it dies
(workers, zygotes, sandboxes; they are in other sessions and do not carry
our environment) is re-parented to the launcher, never to init, so "every
descendant of the launcher" is every process of the run. Processes that carry
the run's marker in their environment are counted too.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from autograder.batch import run, signals
from tests.nbtools import ROOT, solution_path, with_function, write

MARKER = "DLGRADE_TEST_RUN"

LAUNCHER = r"""
import ctypes, json, os, subprocess, sys, threading
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)     # PR_SET_CHILD_SUBREAPER
batch = subprocess.Popen(json.loads(sys.argv[1]), stdout=subprocess.DEVNULL, stderr=open(sys.argv[2], "w"))
print(batch.pid, flush=True)
def reap():   # orphans become our children: reap them so that only live ones are listed
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            threading.Event().wait(0.1)
            continue
        if pid == batch.pid:
            print(os.waitstatus_to_exitcode(status), flush=True)
threading.Thread(target=reap, daemon=True).start()
sys.stdin.read()      # until the test is done looking
"""

# With the grade function replaced by the batch tests' fake (no sandbox: cheap).
FAKE_BATCH = (
    "import sys; import autograder.batch.pool as pool; from tests.test_batch import fake_grade; "
    "pool.grade_submission = fake_grade; from autograder.cli import main; sys.exit(main(sys.argv[1:]))"
)


def _processes() -> dict:
    """pid -> (ppid, state, cmdline, environ) of every process we can see."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                environ = b""
        except (OSError, ValueError):
            continue
        found[int(entry.name)] = (int(fields[1]), fields[0], cmdline, environ)
    return found


def run_processes(launcher_pid: int, marker: str) -> dict:
    """Live processes of the run: descendants of the launcher, or carrying the marker. pid -> cmdline."""
    table = _processes()
    children: dict = {}
    for pid, (ppid, *_rest) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = set(), list(children.get(launcher_pid, []))
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo += children.get(pid, [])
    found |= {pid for pid, (*_r, environ) in table.items() if f"{MARKER}={marker}".encode() in environ}
    found.discard(launcher_pid)
    return {pid: table[pid][2] for pid in found if pid in table and table[pid][1] != "Z"}


class Run:
    def __init__(self, command: list, tmp_path: Path):
        self.marker = uuid.uuid4().hex
        self.stderr_path = tmp_path / "batch.stderr"
        env = dict(os.environ, **{MARKER: self.marker})
        self.launcher = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, json.dumps(command), str(self.stderr_path)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.batch_pid = int(self.launcher.stdout.readline())

    def processes(self) -> dict:
        return run_processes(self.launcher.pid, self.marker)

    def exit_code(self, timeout: float) -> int:
        import select

        ready, _, _ = select.select([self.launcher.stdout], [], [], timeout)
        assert ready, f"the batch did not exit within {timeout} s: {self.stderr()}"
        return int(self.launcher.stdout.readline())

    def survivors(self, within: float) -> dict:
        deadline = time.monotonic() + within
        while (left := self.processes()) and time.monotonic() < deadline:
            time.sleep(0.2)
        return left

    def stderr(self) -> str:
        return self.stderr_path.read_text() if self.stderr_path.exists() else ""

    def close(self) -> None:
        for pid in self.processes():  # never leave anything behind, even when the test failed
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.launcher.stdin.close()
        self.launcher.wait(10)


def committed(out: Path) -> int:
    try:
        with sqlite3.connect(f"file:{out / run.STATE_FILE}?mode=ro", uri=True) as db:
            return db.execute("SELECT count(*) FROM grades").fetchone()[0]
    except sqlite3.Error:
        return 0


def wait_for(condition, timeout: float, what: str, current: Run) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s; stderr: {current.stderr()}"
        assert current.processes(), f"the batch ended early; stderr: {current.stderr()}"
        time.sleep(0.2)


@pytest.mark.parametrize(
    "signum, where",
    [
        (signal.SIGTERM, "--workers=2"),
        (signal.SIGINT, "--workers=2"),
        (signal.SIGHUP, "--workers=2"),
        (signal.SIGTERM, "--dask=local:2"),
    ],
)
def test_a_stop_signal_keeps_finished_grades_and_leaves_no_worker(tmp_path, signum, where):
    from tests.test_batch import submission

    subs, out = tmp_path / "subs", tmp_path / "out"
    submission(subs, "a_quick", score=4)
    for learner in ("b_hang", "c_hang", "d_waiting"):
        submission(subs, learner, behaviour="hang")
    current = Run([sys.executable, "-c", FAKE_BATCH, "batch", str(subs), "--out", str(out), where], tmp_path)
    try:
        wait_for(lambda: committed(out) >= 1, 120, "a first grade", current)
        os.kill(current.batch_pid, signum)
        assert current.exit_code(60) == 128 + signum
        assert current.survivors(within=10) == {}
        message = current.stderr()
        assert f"stopped by {signal.Signals(signum).name}" in message
        assert (
            "The 1 grade(s) finished in this run are saved" in message and "3 submission(s) were not graded" in message
        )
    finally:
        current.close()
    summary = run.run_batch(
        subs,
        out,
        only=["a_quick"],
        progress=False,
        log=lambda *a, **k: None,
        grade=lambda *a: pytest.fail("a kept grade was graded again"),
    )
    assert summary.kept == 1 and summary.grades[0].result["score"] == 4


A = "initialization"
SLEEPER = "import time\ndef initialize_parameters_zeros(layers_dims):\n    time.sleep(1000)\n"


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_no_sandbox_outlives_a_stopped_or_killed_batch(tmp_path, how):
    """Real grading: the workers' zygotes and sandboxes die with the batch, also after a SIGKILL
    of the batch process alone (the workers die with their parent: PR_SET_PDEATHSIG)."""
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    (subs / "alice.ipynb").write_bytes(solution_path(A).read_bytes())
    for learner in ("bob", "carol"):
        write(with_function(A, "initialize_parameters_zeros", SLEEPER), subs / f"{learner}.ipynb")
    command = [sys.executable, "-m", "autograder.cli", "batch", str(subs), "--out", str(out), "--workers", "2"]
    current = Run(command, tmp_path)
    try:

        def sandboxes():
            return [c for c in current.processes().values() if "--zygote" in c or "--fds" in c]

        wait_for(lambda: committed(out) >= 1 and sandboxes(), 180, "a grade and a live sandbox", current)
        os.kill(current.batch_pid, getattr(signal, how))
        code = current.exit_code(60)
        assert code == (143 if how == "SIGTERM" else -signal.SIGKILL), current.stderr()
        assert current.survivors(within=15) == {}
    finally:
        current.close()
    assert committed(out) >= 1


def test_a_stop_signal_waits_for_the_grade_being_recorded():
    """The window the stop message's count once raced with: a signal that arrives while a finished
    grade is being recorded stops the batch only once that grade is recorded (and counted)."""
    steps = []
    before = signal.getsignal(signal.SIGHUP)
    with pytest.raises(signals.Interrupted) as stopped:
        with signals.StopSignals() as stop:
            with stop.deferred():
                os.kill(os.getpid(), signal.SIGHUP)
                deadline = time.monotonic() + 10
                while stop.held is None:  # until the handler has run (and did not raise)
                    assert time.monotonic() < deadline, "the SIGHUP handler did not run"
                    time.sleep(0.01)
                steps.append("recorded")
            steps.append("after")  # not reached: the held signal is raised at the block's end
    assert steps == ["recorded"] and stopped.value.signum == signal.SIGHUP
    assert signal.getsignal(signal.SIGHUP) == before and stop.held is None


def test_stop_signal_state_belongs_to_one_run(tmp_path):
    """A signal held by one run (whose recording then failed) reaches no later run; run_batch puts the
    handlers it installed back."""
    before = {number: signal.getsignal(number) for number in signals.STOP_SIGNALS}
    with pytest.raises(OSError):
        with signals.StopSignals() as first:
            with first.deferred():
                os.kill(os.getpid(), signal.SIGHUP)
                time.sleep(0.05)
                raise OSError("disk full")  # the block's own failure wins; the signal stays held
    assert first.held == signal.SIGHUP
    assert {number: signal.getsignal(number) for number in signals.STOP_SIGNALS} == before

    from tests.test_batch import fake_grade, submission

    subs = tmp_path / "subs"
    submission(subs, "alice", score=4)
    summary = run.run_batch(
        subs,
        tmp_path / "out",
        workers=1,
        grade=fake_grade,
        progress=False,
        log=lambda *a, **k: None,
        stop_on_signals=True,
    )
    assert summary.graded == 1  # not stopped by the first run's held signal
    assert {number: signal.getsignal(number) for number in signals.STOP_SIGNALS} == before
