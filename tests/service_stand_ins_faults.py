"""Stand-in grade functions for the service's fault tests (tests/test_service_faults.py,
tests/test_service_postgres.py): what a spawned grading worker runs instead of the real grader.

They are module-level (pickled by reference; spawned workers import this module: tests/ is on their
sys.path). Each has the signature of ``pool.grade_submission``: ``(name, data, assignment)``.

Every call appends one line ``<worker pid> <sha256 of the notebook>`` to ``$DLGRADE_FAULTS_DIR/calls.log``
(when that variable is set), so a test can count how often each notebook reached a worker, and which.
The result names its worker's pid in its notes (``worker <pid>``).

Markers in a notebook's bytes (the stand-ins never parse the notebook):

- ``KILL-ONCE`` (:func:`fixed` and the others): the first worker to see these bytes kills itself
  (SIGKILL); a marker file in ``$DLGRADE_FAULTS_DIR`` says it happened, so the next attempt grades;
- ``KILL-ALWAYS``: every worker that sees these bytes kills itself;
- ``SLEEP=<seconds>``: sleep that long before answering.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import time
from pathlib import Path

SCORE, MAX_SCORE = 3.0, 4.0
DIR_VARIABLE = "DLGRADE_FAULTS_DIR"


def _folder() -> Path | None:
    value = os.environ.get(DIR_VARIABLE)
    return Path(value) if value else None


def _log_call(digest: str) -> None:
    folder = _folder()
    if folder is not None:
        # One short line in O_APPEND mode: whole, whatever other workers write meanwhile.
        fd = os.open(folder / "calls.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, f"{os.getpid()} {digest}\n".encode())
        finally:
            os.close(fd)


def calls(folder: Path) -> list:
    """[(worker pid, sha256)] of every call so far, in order."""
    log = Path(folder) / "calls.log"
    if not log.exists():
        return []
    return [(int(pid), digest) for pid, digest in (line.split() for line in log.read_text().splitlines())]


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)  # not reached: SIGKILL cannot be caught


def _faults(data: bytes, digest: str) -> None:
    if b"KILL-ALWAYS" in data:
        _die()
    if b"KILL-ONCE" in data:
        folder = _folder()
        if folder is None:
            raise RuntimeError(f"KILL-ONCE needs ${DIR_VARIABLE}")
        marker = folder / f"killed-{digest}"
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # killed once already: grade this time
        else:
            os.close(fd)
            _die()
    found = re.search(rb"SLEEP=([0-9.]+)", data)
    if found:
        time.sleep(float(found.group(1)))


def result(name: str, assignment: str | None, score: float = SCORE, max_score: float = MAX_SCORE):
    """A small real Result (the ledger and the exports read it as they read a real grade)."""
    from autograder.grading.results import FunctionScore, Result, TestResult

    return Result(
        assignment=assignment,
        submission=name,
        title=assignment or "Submission",
        score=score,
        max_score=max_score,
        tests=[TestResult("stand_in", "the stand-in's check", max_score, score == max_score, score=score)],
        functions={"stand_in": FunctionScore(score, max_score, int(score == max_score), 1)},
        notes=[f"worker {os.getpid()}"],
    )


def fixed(name: str, data: bytes, assignment: str | None):
    """A fixed small result (3 / 4), after the faults its bytes ask for."""
    digest = hashlib.sha256(data).hexdigest()
    _log_call(digest)
    _faults(data, digest)
    return result(name, assignment)


def slow(name: str, data: bytes, assignment: str | None):
    """:func:`fixed` after 1.5 s (jobs that are surely in flight together)."""
    time.sleep(1.5)
    return fixed(name, data, assignment)


def kill_always(name: str, data: bytes, assignment: str | None):
    """Kills its worker, whatever the notebook."""
    _log_call(hashlib.sha256(data).hexdigest())
    _die()


def worker_pid(document: dict) -> int:
    """The pid of the worker that produced a stored result of these stand-ins."""
    for note in document.get("notes") or []:
        if note.startswith("worker "):
            return int(note.split()[1])
    raise ValueError("not a stand-in's result")


# ------------------------------------------------------------------ the tests' side (not run in workers)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ASSIGNMENT = "practical_setup"  # a numpy assignment: the real grader takes about a second once warm


def roster_text(learners) -> str:
    lines = ["learner,name,email,sis_user_id,canvas_user_id,sis_login_id,section"]
    for number, learner in enumerate(learners):
        lines.append(
            f"{learner},{learner.title()} Test,{learner}@example.org,S{9000 + number},{7000 + number},{learner},A"
        )
    return "\n".join(lines) + "\n"


def marked_notebook(marker: str, learner: str = "alice", assignment: str = ASSIGNMENT) -> bytes:
    """A real example notebook (a valid upload of ``assignment``) whose bytes carry ``marker`` (in its
    metadata: the notebook grades as before, and its sha256 is its own)."""
    import json

    path = next((EXAMPLES / "submissions" / learner / assignment).glob("*.ipynb"))
    nb = json.loads(path.read_text())
    nb.setdefault("metadata", {})["dlgrade_test_marker"] = marker
    return json.dumps(nb).encode()


def wait_until(predicate, timeout: float, what: str, interval: float = 0.1):
    """Poll ``predicate`` until it returns something true; fails the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def all_graded(store, count: int):
    """``store``'s submissions when there are ``count`` and every one is graded, else None."""
    rows = store.submissions()
    return rows if len(rows) == count and all(r.status == "graded" for r in rows) else None
