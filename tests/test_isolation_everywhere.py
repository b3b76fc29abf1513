"""The setpriv readability check runs in the process that grades, not only in the one that starts
the run (issue 20, item 5): a Dask worker, a local worker or a library caller of ``grade_notebook``
under setpriv refuses to run learner code where the learner's uid can read the suites or solutions,
unless --accept-unisolated (Settings.accept_unisolated) was given, and every report says the outcome.

setpriv is simulated in this process (``settings.use(Settings(strategy="setpriv"))``, which travels
to Dask workers with each task) as root on a machine whose checkout is world-readable.
"""

from __future__ import annotations

import os
import shutil
from functools import cache

import pytest

from autograder.batch.run import run_batch
from autograder.grading.catalogue import SUITES_DIR
from autograder.grading.grade import grade_notebook
from autograder.sandbox import isolation, settings
from tests.nbtools import solution_path, write
from tests.test_attacks import UNISOLATED_NOTE, A, attacker_output, attackers


@cache
def unusable() -> str | None:
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return "needs root and setpriv"
    try:  # as the learner's uid: also proves that uid can run the interpreter
        readable = isolation.readable_by_learner([SUITES_DIR])
    except isolation.IsolationRefused as exc:
        return f"the learner's uid cannot run this interpreter ({exc})"
    if not readable:
        return "the hidden suites are not readable by other uids here: nothing to refuse"
    return None


needs_readable_setpriv = pytest.mark.skipif(unusable() is not None, reason=str(unusable()))


@pytest.fixture
def under_setpriv():
    def install(accept: bool) -> None:
        settings.use(settings.current().but(strategy="setpriv", accept_unisolated=accept))

    previous = settings.current()
    yield install
    settings.use(previous)


def quiet(*args, **kwargs):
    pass


@needs_readable_setpriv
def test_grade_notebook_under_setpriv_refuses_without_acceptance(under_setpriv):
    under_setpriv(accept=False)
    result = grade_notebook(solution_path(A), A).to_dict()
    assert result["score"] == 0
    assert result["grader_error"]
    reason = " ".join(t["output"] for t in result["tests"])
    assert "refusing to grade" in reason and "--accept-unisolated" in reason
    assert str(SUITES_DIR) in reason  # names what could be read
    assert result["isolation"]["readable_check"].startswith("refused: ")


@needs_readable_setpriv
@pytest.mark.parametrize("accept", [False, True], ids=["refused", "accepted"])
def test_a_dask_worker_under_setpriv_checks_itself(tmp_path, under_setpriv, accept):
    """No CLI check ran here: the worker's own check decides, with the batch's settings."""
    subs, out = tmp_path / "subs", tmp_path / "out"
    write(attackers(subs, out, 1)["c2-read"], subs / "reader.ipynb")
    under_setpriv(accept)
    summary = run_batch(subs, out, dask="local:1", progress=False, log=quiet)
    (grade,) = summary.grades
    result = grade.result
    if not accept:
        assert result["score"] == 0 and result["grader_error"]
        assert summary.grader_failures == 1
        output = " ".join(t["output"] for t in result["tests"])
        assert "refusing to grade" in output and "LEAKED" not in output
        assert result["isolation"]["readable_check"].startswith("refused: ")
        return
    assert any(n.startswith(UNISOLATED_NOTE) for n in result["notes"])
    assert result["isolation"]["readable_check"].startswith("accepted: the learner's uid could read")
    assert "LEAKED" in attacker_output(result)  # what it read: why the report warns


def test_every_report_says_the_check_outcome(tmp_path):
    """Under bubblewrap (the machine's own strategy here) nothing is checked, and the report says so."""
    if isolation.available_strategy() != "bwrap":
        pytest.skip("needs bubblewrap")
    result = grade_notebook(solution_path(A), A)
    assert result.isolation["readable_check"] == "not needed (bubblewrap)"
    assert not any(n.startswith(UNISOLATED_NOTE) for n in result.notes)
