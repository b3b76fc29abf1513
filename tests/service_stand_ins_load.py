"""Stand-in grade functions for the service's load and browser tests (tests/test_service_load.py,
tests/test_service_browser.py) and docs/screenshots.py: module-level, so the service's spawned grader
workers can import them (tests/ is on their sys.path).

``fast_grade`` measures the service, not grading: it returns at once a full-marks result shaped like the
engine's (every graded function of the assignment, one passed check each), naming the worker's pid in
its notes, and appends ``<pid> <sha256>`` to the file named by ``$DLGRADE_LOAD_LOG`` (one short
``O_APPEND`` write a call, so concurrent workers never interleave), so a test can count how often each
upload was graded, whatever the database says.
"""

from __future__ import annotations

import hashlib
import os

from autograder.grading import catalogue
from autograder.grading.results import FunctionScore, Result, TestResult

LOG_VARIABLE = "DLGRADE_LOAD_LOG"


def engine_like_result(assignment: str | None, name: str, *, fraction: float = 1.0, notes: tuple = ()) -> Result:
    """A result with the assignment's graded functions, the first ``fraction`` of them passed."""
    spec = catalogue.load(assignment) if assignment in catalogue.names() else None
    functions, tests = {}, []
    graded = spec.graded_functions if spec is not None else []
    passing = round(len(graded) * fraction)
    for index, function in enumerate(graded):
        points = spec.points.get(function, 0.0)
        passed = index < passing
        functions[function] = FunctionScore(points if passed else 0.0, points, int(passed), 1)
        tests.append(
            TestResult(
                function=function,
                check=f"{function} returns the expected values",
                max_score=points,
                passed=passed,
                score=points if passed else 0.0,
                message="" if passed else "values differ from the expected ones",
                kind="check",
            )
        )
    return Result(
        assignment=assignment,
        submission=name,
        title=assignment or "unknown",
        score=sum(f.score for f in functions.values()),
        max_score=sum(f.max_score for f in functions.values()),
        tests=tests,
        functions=functions,
        notes=list(notes),
    )


def fast_grade(name: str, data: bytes, assignment: str | None) -> Result:
    """Full marks at once; logs ``<pid> <sha256 of data>`` to $DLGRADE_LOAD_LOG when it is set."""
    pid = os.getpid()
    log = os.environ.get(LOG_VARIABLE)
    if log:
        line = f"{pid} {hashlib.sha256(data).hexdigest()}\n".encode()
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    return engine_like_result(assignment, name, notes=(f"graded by pid {pid}",))
