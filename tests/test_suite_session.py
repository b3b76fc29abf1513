"""One pytest session per hidden suite and process (grading/suite_session.py, suite_state.py):
collected once, run per submission, nothing of one learner's run reaching the next."""

from __future__ import annotations

import dataclasses
import os
import textwrap

import pytest

from autograder.grading import catalogue, suite_session
from autograder.grading.grade import grade_notebook
from autograder.grading.suite_session import SuiteFailed
from tests.nbtools import solution_notebook, with_function, write

A = "initialization"
HE = "initialize_parameters_he"


class StubProcess:
    """Stands in for the sandboxed learner process where a suite never calls the learner."""

    def __init__(self):
        self.functions: list = []

    def begin_function(self, name):
        self.functions.append(name)


def comparable(result) -> dict:
    data = result.to_dict()
    data.pop("execution_time", None)
    return data


def test_a_b_a_grades_a_identically_in_one_session(tmp_path):
    """A correct notebook, then one with a wrong function, then the first again in the same
    process: the first's result is identical both times, and the session was collected once."""
    suite_session.close_all()
    a = write(solution_notebook(A), tmp_path / "a.ipynb")
    b = write(with_function(A, HE, f"def {HE}(layers_dims):\n    return {{'W1': [[1.0]]}}\n"), tmp_path / "b.ipynb")
    first = grade_notebook(a, A)
    session = suite_session._SESSIONS[(A, str(catalogue.load(A).suite_dir))]
    items = list(session.items)
    middle = grade_notebook(b, A)
    again = grade_notebook(a, A)
    assert first.score == first.max_score and middle.score < first.score
    assert comparable(first) == comparable(again)
    assert suite_session._SESSIONS[(A, str(catalogue.load(A).suite_dir))] is session and session.runs == 3
    assert session.items == items  # collected once
    # Every fixture (the session-scoped learner too) was torn down after each submission.
    assert not session.session._setupstate.stack


STATEFUL_SUITE = '''
import functools
import pytest

SEEN = []
TABLE = {"calls": 0}
import numpy as np
GRID = np.zeros(3)

class Tally:
    count = 0
    names = []

def remember(name, into=[]):
    into.append(name)
    return into

@functools.lru_cache
def cached(x):
    SEEN.append(("cached", x))
    return x

@pytest.mark.graded("f", points=1)
def test_starts_clean():
    """Module state is as collected."""
    assert SEEN == [] and TABLE == {"calls": 0} and not GRID.any()
    assert Tally.count == 0 and Tally.names == [] and "LEFT_OVER" not in globals()
    assert remember("x") == ["x"]
    assert cached(1) == 1 and SEEN == [("cached", 1)]

@pytest.mark.graded("f", points=1)
def test_leaves_state_behind():
    """A test that changes everything it can reach."""
    global LEFT_OVER
    SEEN.append("learner A")
    TABLE["calls"] += 1
    GRID[:] = 7
    Tally.count += 1
    Tally.names.append("learner A")
    Tally.extra = "added"
    LEFT_OVER = "learner A"
'''


def _suite(tmp_path, name: str, source: str):
    folder = tmp_path / name
    folder.mkdir()
    (folder / f"test_{name}.py").write_text(textwrap.dedent(source))
    return dataclasses.replace(catalogue.load(A), suite_dir=folder)


def _passed(run) -> list:
    return [(r.check, r.passed) for r in run.records]


def test_module_state_cannot_carry_from_one_learner_to_the_next(tmp_path):
    """Globals, a numpy array, class attributes, a mutable default and an lru_cache a test changed
    are back as collected for the next submission (the first test would fail otherwise)."""
    spec = _suite(tmp_path, "stateful", STATEFUL_SUITE)
    runs = [suite_session.run_suite(spec, StubProcess()) for _ in range(3)]
    for run in runs:
        assert _passed(run) == [
            ("Module state is as collected", True),
            ("A test that changes everything it can reach", True),
        ]
    session = suite_session._SESSIONS[(A, str(spec.suite_dir))]
    assert session.runs == 3
    # Without the reset the same session would see learner A's state: put it back by hand and look.
    module = session.items[0].module
    module.SEEN.append("learner A")
    session.states = []
    assert _passed(suite_session.run_suite(spec, StubProcess()))[0] == ("Module state is as collected", False)


def test_records_of_one_run_are_not_changed_by_the_next(tmp_path):
    spec = _suite(tmp_path, "records", STATEFUL_SUITE)
    first = suite_session.run_suite(spec, StubProcess())
    kept = list(first.records)
    suite_session.run_suite(spec, StubProcess())
    assert first.records == kept and len(kept) == 2


def test_a_changed_suite_file_opens_a_new_session(tmp_path):
    """A hidden suite fixed while dlgrade serve runs: the next submission runs the new checks."""
    spec = _suite(
        tmp_path, "changing", 'import pytest\n@pytest.mark.graded("f", points=1)\ndef test_one():\n    """old."""\n'
    )
    assert _passed(suite_session.run_suite(spec, StubProcess())) == [("old", True)]
    path = spec.suite_dir / "test_changing.py"
    path.write_text(
        'import pytest\n@pytest.mark.graded("f", points=1)\ndef test_one():\n    """new."""\n    assert False\n'
    )
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert _passed(suite_session.run_suite(spec, StubProcess())) == [("new", False)]


def test_state_that_cannot_be_reset_is_refused_with_its_name(tmp_path):
    spec = _suite(
        tmp_path,
        "locked",
        'import threading, pytest\nGUARD = threading.Lock()\n@pytest.mark.graded("f", points=1)\ndef test_one():\n    """one."""\n',
    )
    with pytest.raises(SuiteFailed, match=r"GUARD \(lock\) cannot be copied.*build it in a fixture"):
        suite_session.run_suite(spec, StubProcess())


def test_a_session_that_breaks_is_replaced(tmp_path):
    """pytest.exit out of a test: that submission's suite failed to run (a grader error), and the
    next submission gets a new session that works."""
    spec = _suite(
        tmp_path,
        "exits",
        """
        import pytest
        CALLS = {"n": 0}
        EXITED = []

        @pytest.mark.graded("f", points=1)
        def test_one():
            '''one.'''
            if not EXITED:
                EXITED.append(1)
                pytest.exit("stop")
        """,
    )
    with pytest.raises(SuiteFailed, match="failed to run"):
        suite_session.run_suite(spec, StubProcess())
    broken = [s for s in suite_session._SESSIONS.values() if s.assignment.suite_dir == spec.suite_dir]
    assert broken == []
    # A new session, but the module is the same import (EXITED kept): the run completes.
    assert _passed(suite_session.run_suite(spec, StubProcess())) == [("one", True)]


def test_collection_errors_refuse_the_suite(tmp_path):
    spec = _suite(tmp_path, "broken", "import pytest\nraise ImportError('suite bug')\n")
    with pytest.raises(SuiteFailed, match="suite bug"):
        suite_session.run_suite(spec, StubProcess())
