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

from autograder.grading import catalogue, shapes
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
SHAPES_KEY = pytest.StashKey[shapes.ShapeRecord]()


def check_name(doc: str) -> str:
    """A test's name in the feedback: its docstring's first line, without the closing period."""
    line = " ".join(doc.strip().splitlines()[0].split()) if doc.strip() else ""
    return line[:-1].rstrip() if line.endswith(".") and not line.endswith("...") else line


def shape_points(marker) -> float:
    return float(marker.kwargs.get("shape_points", 0)) if marker is not None else 0.0


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
    """Registered once per suite session (grading/suite_session.py); ``begin`` and ``end`` bracket
    each submission's run, whose records go to a list of its own."""

    def __init__(self, assignment: catalogue.Assignment, learner: Learner | None = None):
        self.assignment = assignment
        self._learner = learner
        self.records: list = []
        self.collection_errors: list = []

    def begin(self, learner: Learner) -> list:
        self._learner, self.records = learner, []
        return self.records

    def end(self) -> None:
        self._learner, self.records = None, []

    def pytest_configure(self, config):
        config.addinivalue_line(
            "markers",
            "graded(function, points, visibility='visible', shape_points=0): the graded function a "
            "test checks, its points, when Gradescope shows it to the learner "
            "(visible | hidden | after_due_date | after_published), and the points of its "
            "shapes, a check of their own (grading/shapes.py)",
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
            points = marker.kwargs.get("points", 1) if marker is not None else 1
            if not 0 <= shape_points(marker) < float(points):
                self.collection_errors.append(f"hidden test {item.nodeid}: shape_points must be below its points")
        if self.collection_errors:
            items.clear()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        if shape_points(item.get_closest_marker("graded")) > 0:
            item.stash[SHAPES_KEY] = shapes.start()
        try:
            yield
        finally:
            shapes.stop()

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
            doc = check_name(getattr(item.function, "__doc__", None) or item.name)
            visibility = marker.kwargs.get("visibility", "visible")  # checked at collection
            for_shapes = shape_points(marker)
            record = TestRecord(function, doc, points - for_shapes, report.passed, visibility=visibility)
            if not report.passed and call.excinfo is not None:
                if report.when == "setup":  # a fixture broke: the grader's fault, not the learner's
                    record.message = "the grader could not set up this check; tell the course staff"
                    record.detail = repr(call.excinfo.value)[:500]
                    record.kind = "grader-error"
                else:
                    record.message, record.hint, record.detail, record.kind = describe_failure(call.excinfo.value)
            self.records.append(record)
            if for_shapes:
                self.records.append(shape_record(record, item.stash.get(SHAPES_KEY, shapes.ShapeRecord()), for_shapes))


def shape_record(values: TestRecord, seen: shapes.ShapeRecord, points: float) -> TestRecord:
    """The shape check of a test with ``shape_points``, from what its shape checks saw."""
    passed = values.kind != "grader-error" and seen.passed()
    record = TestRecord(
        values.function, shapes.SHAPE_CHECK_PREFIX + values.check, points, passed, visibility=values.visibility
    )
    if not passed:
        record.message, record.hint, record.kind = seen.message(values.passed), seen.hint(), "check"
        if values.kind not in ("check", "structure", "") and not seen.slips:
            record.message, record.kind = values.message, values.kind  # not implemented, raised, missing...
    return record
