"""The pytest plugin that runs a hidden suite against one submission.

It provides the ``learner`` and ``reference`` fixtures and the
``graded(function, points)`` marker, and turns each test's outcome into a
learner-safe record: the check's name (the test's docstring), a message and a
hint. Raw pytest failure text is never shown, because assertion rewriting
prints both operands, and one of them would be a hidden expected value.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from autograder.grading import catalogue
from autograder.grading.checks import CheckFailed
from autograder.grading.learner import Learner
from autograder.grading.learner_errors import LearnerError
from autograder.grading.results import VISIBILITIES


@dataclass
class TestRecord:
    function: str
    check: str
    points: float
    passed: bool
    message: str = ""
    hint: str = ""
    detail: str = ""  # learner-side traceback, from the learner's own code
    kind: str = ""  # for learner errors: an ErrorKind (error | missing | timeout | budget | crash | unsupported)
    visibility: str = "visible"  # Gradescope's: visible | hidden | after_due_date | after_published


def describe_failure(exc: BaseException) -> tuple:
    """(message, hint, detail, kind) for an exception raised by a hidden test."""
    if isinstance(exc, CheckFailed):
        return exc.message, exc.hint, "", "check"
    if isinstance(exc, LearnerError):
        return str(exc), "", exc.traceback, exc.kind.value
    if isinstance(exc, AssertionError):
        return "the returned value did not pass this check", "", "", "check"
    text = str(exc)
    if len(text) > 300:
        text = text[:300] + " ..."
    return (
        f"checking the returned value failed with {type(exc).__name__}: {text}",
        "the value returned does not have the structure the assignment asks for (keys, types, shapes)",
        "",
        "structure",
    )


PLUGIN_KEY = pytest.StashKey["GradingPlugin"]()


@pytest.fixture(scope="session")
def learner(request) -> Learner:
    """Calls into the submission's sandboxed process."""
    return request.config.stash[PLUGIN_KEY]._learner


@pytest.fixture(scope="session")
def reference(request):
    """The solution's graded functions, run here in the trusted process."""
    return catalogue.reference(request.config.stash[PLUGIN_KEY].assignment.name)


class CheapFailureReports:
    """Report failed checks without pytest's traceback rendering.

    pytest renders every failure's traceback with source excerpts, parsing the
    source of each frame with ``ast``: 1 s for the 22 failures of an untouched
    optimization stub, against 0.1 s for the checks themselves. Nobody reads
    that text here (GradingPlugin keeps its own sanitized record), so the report
    carries only the exception's type and first line.
    """

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_makereport(self, item, call):
        excinfo = call.excinfo
        if excinfo is None or isinstance(excinfo.value, (pytest.skip.Exception, BaseExceptionGroup)):
            return None  # passed or skipped: pytest's own report is cheap
        first_line = (str(excinfo.value).splitlines() or [""])[0][:300]
        return pytest.TestReport(
            item.nodeid,
            item.location,
            dict.fromkeys(item.keywords, 1),
            "failed",
            f"{excinfo.typename}: {first_line}",
            call.when,
            duration=call.duration,
            start=call.start,
            stop=call.stop,
        )


class GradingPlugin:
    def __init__(self, assignment: catalogue.Assignment, learner: Learner):
        self.assignment = assignment
        self._learner = learner
        self.records: list = []
        self.collection_errors: list = []

    def pytest_configure(self, config):
        config.addinivalue_line(
            "markers",
            "graded(function, points, visibility='visible'): the graded function a "
            "test checks, its points, and when Gradescope shows it to the learner "
            "(visible | hidden | after_due_date | after_published)",
        )
        config.addinivalue_line("markers", "slow: a long-running test")
        config.stash[PLUGIN_KEY] = self

    def pytest_collectreport(self, report):
        if report.failed:
            self.collection_errors.append(str(report.longrepr)[-2000:])

    def pytest_collection_modifyitems(self, items):
        # A suite's mistake is found before any check runs, as a suite that fails to run.
        for item in items:
            marker = item.get_closest_marker("graded")
            visibility = marker.kwargs.get("visibility", "visible") if marker is not None else "visible"
            if visibility not in VISIBILITIES:
                self.collection_errors.append(
                    f"hidden test {item.nodeid}: visibility={visibility!r} is not one of {', '.join(VISIBILITIES)}"
                )
        if self.collection_errors:
            items.clear()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        if report.when == "call" or (report.when == "setup" and not report.passed):
            marker = item.get_closest_marker("graded")
            if marker is None:
                raise RuntimeError(f"hidden test {item.nodeid} has no @pytest.mark.graded marker")
            function = marker.args[0] if marker.args else marker.kwargs["function"]
            points = float(marker.kwargs.get("points", marker.args[1] if len(marker.args) > 1 else 1))
            doc = (getattr(item.function, "__doc__", None) or item.name).strip().splitlines()[0]
            visibility = marker.kwargs.get("visibility", "visible")  # checked at collection
            record = TestRecord(function, doc, points, report.passed, visibility=visibility)
            if not report.passed and call.excinfo is not None:
                if report.when == "setup":  # a fixture broke: the grader's fault, not the learner's
                    record.message = "the grader could not set up this check; tell the course staff"
                    record.detail = repr(call.excinfo.value)[:500]
                    record.kind = "grader-error"
                else:
                    record.message, record.hint, record.detail, record.kind = describe_failure(call.excinfo.value)
            self.records.append(record)
