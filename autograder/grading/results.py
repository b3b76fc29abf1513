"""What a grade is: one ``Result`` per submission, one ``TestResult`` per hidden check.

Every report reads this object: ``to_dict()`` is dlgrade's results.json document
(what ``dlgrade grade --json`` prints and the batch state stores),
``to_gradescope()`` is Gradescope's results.json, and reports.py renders JUnit,
Markdown, HTML and the terminal summary from it. ``zero_result`` is the one
builder for a submission that could not be graded at all.

Learner text (exception messages, tracebacks, printed output) is kept raw here;
each renderer escapes it for its own format (see reports.py).

``Result`` also reads like the dict it replaced (``result["score"]``,
``result.get("functions")``), so scripts and tests written against the dict keep
working; new code uses the attributes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")  # Gradescope's values

# What one result keeps of each learner-derived text (characters), so that the reports of any
# submission stay within a few MB and the batch state never refuses a row.
MAX_MESSAGE = 2000  # a check's message, its hint, the submission's error
MAX_TRACEBACK = 4000
MAX_NOTE = 1000
MAX_NOTES = 200
MAX_OUTPUT = 4000  # the learner's printed output
MAX_STORED_TEXT = 20000  # any string of a stored document (batch/state.py)
MAX_STORED_ITEMS = 500  # the strings of a list of strings in a stored document


def cap_text(text, limit: int) -> str:
    """``text`` at most ``limit`` characters, ending "... N more characters" where it was cut.

    Idempotent: a capped text is within ``limit`` and is left as it is."""
    text = text if isinstance(text, str) else str(text)
    if len(text) <= limit:
        return text
    keep = max(0, limit - 40)  # room for the note
    return text[:keep] + f"\n... {len(text) - keep:,} more characters"


def cap_list(items: list, limit: int, text_limit: int) -> list:
    """The first ``limit`` strings of ``items`` (each capped), then "... N more" where some were left out."""
    kept = [cap_text(item, text_limit) for item in items[:limit]]
    if len(items) > limit:
        kept[-1] = f"... {len(items) - limit + 1:,} more"
    return kept


def cap_document(value, text_limit: int = MAX_STORED_TEXT, items: int = MAX_STORED_ITEMS):
    """A JSON document with every string capped and every list of strings cut to ``items``."""
    if isinstance(value, str):
        return cap_text(value, text_limit)
    if isinstance(value, dict):
        return {
            cap_text(k, text_limit) if isinstance(k, str) else k: cap_document(v, text_limit, items)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        if len(value) > items and all(isinstance(v, str) for v in value):
            return cap_list(list(value), items, text_limit)
        return [cap_document(v, text_limit, items) for v in value]
    return value


@dataclass
class TestResult:
    """One hidden check of one graded function."""

    __test__ = False  # not a pytest test class, whatever its name

    function: str
    check: str  # what it checks, in words (the test's docstring)
    max_score: float
    passed: bool
    score: float = 0.0
    message: str = ""  # why it failed (may quote learner text)
    hint: str = ""
    traceback: str = ""  # learner-side traceback, from the learner's own code
    kind: str = ""  # check | error | missing | timeout | crash | grader-error | unreadable ...
    visibility: str = "visible"

    def __post_init__(self):
        # Learner-derived text, capped once here (every report and the batch state read these fields).
        self.check = cap_text(self.check, MAX_NOTE)
        self.message = cap_text(self.message, MAX_MESSAGE)
        self.hint = cap_text(self.hint, MAX_MESSAGE)
        self.traceback = cap_text(self.traceback, MAX_TRACEBACK)

    @property
    def name(self) -> str:
        """``function: check``; the check alone where it already starts with the function's name."""
        if not self.function or self.check.split(" ", 1)[0] == self.function:
            return self.check
        return f"{self.function}: {self.check}"

    @property
    def status(self) -> str:
        return "passed" if self.passed else "failed"

    @property
    def output(self) -> str:
        """Message, hint and traceback as one plain text (Gradescope's and JUnit's ``output``)."""
        if self.passed:
            return ""
        parts = [self.message] if self.message else []
        if self.hint:
            parts.append(f"Hint: {self.hint}")
        if self.traceback:
            parts.append(self.traceback.rstrip("\n"))
        return "\n".join(parts)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "function": self.function,
            "check": self.check,
            "score": self.score,
            "max_score": self.max_score,
            "status": self.status,
            "output": self.output,
            "message": self.message,
            "hint": self.hint,
            "traceback": self.traceback,
            "kind": self.kind,
            "visibility": self.visibility,
        }

    @classmethod
    def from_dict(cls, data: dict) -> TestResult:
        function = data.get("function") or ""
        name = data.get("name", "")
        check = data.get("check") or (
            name[len(function) + 2 :] if function and name.startswith(function + ": ") else name
        )
        passed = data.get("status") == "passed"
        message = data.get("message")
        if message is None:  # a document written before message/hint/traceback were kept apart
            message = data.get("output", "")
        return cls(
            function=function,
            check=check,
            max_score=float(data.get("max_score") or 0.0),
            passed=passed,
            score=float(data.get("score") or 0.0),
            message=message,
            hint=data.get("hint", ""),
            traceback=data.get("traceback", ""),
            kind=data.get("kind", ""),
            visibility=data.get("visibility", "visible"),
        )


@dataclass
class FunctionScore:
    score: float
    max_score: float
    passed: int = 0
    tests: int = 0

    def to_dict(self) -> dict:
        return {"score": self.score, "max_score": self.max_score, "passed": self.passed, "tests": self.tests}


@dataclass
class Late:
    """When a submission came in against its deadline, and what that cost."""

    submitted_at: str  # ISO 8601
    source: str  # where the time was read: timestamp.txt, times.csv, file mtime, gradescope
    deadline: str  # ISO 8601
    days_late: int  # whole days after deadline + grace, rounded up; 0 = on time
    raw_score: float  # the score before the penalty
    penalty: float  # points taken off
    rule: str  # the policy, in words
    time_source: str = ""  # staff-csv | nbgrader | mtime | timestamp-file | none (batch/late.py)
    extension: str = ""  # this learner's extension, in words ("" when none)
    judged: bool = True  # False: no time from a source the course trusts, so no penalty was computed

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class Result(Mapping):
    """The grade of one submission."""

    assignment: str | None
    submission: str
    title: str
    score: float
    max_score: float
    tests: list = field(default_factory=list)  # [TestResult]
    functions: dict = field(default_factory=dict)  # function -> FunctionScore, in notebook order
    notes: list = field(default_factory=list)
    execution_time: float = 0.0
    sandbox: str | None = None
    process: dict = field(default_factory=dict)  # crashes, timeouts, memory_exceeded, output_bytes
    learner_output: str = ""
    grader_error: bool = False
    error: str | None = None  # set when the notebook could not be graded at all
    late: Late | None = None
    isolation: dict = field(default_factory=dict)  # strategy, separation, limits enforced (learner.isolation_report)
    # For staff only (the batch's errors log): never rendered in a learner's report or stored.
    staff_traceback: str = field(default="", repr=False, compare=False)

    def __post_init__(self):
        self.notes = cap_list(list(self.notes), MAX_NOTES, MAX_NOTE)
        self.learner_output = cap_text(self.learner_output, MAX_OUTPUT)
        if self.error is not None:
            self.error = cap_text(self.error, MAX_MESSAGE)

    @property
    def output(self) -> str:
        text = f"{self.title}: {self.score:g} / {self.max_score:g}"
        if self.late is not None and self.late.penalty:
            text += f" (late: -{self.late.penalty:g})"
        return f"{text}. {self.error}" if self.error else text

    @property
    def capped_notes(self) -> list:
        """The notes as every report shows them: capped, those added after the Result was built too."""
        return cap_list(list(self.notes), MAX_NOTES, MAX_NOTE)

    @property
    def unreadable(self) -> bool:
        """Not graded at all (unreadable notebook, grader failure): say so, never '0 / 0'."""
        return self.error is not None

    def problem(self) -> str:
        """Why this submission has no real grade, in one line; empty when it has one."""
        if self.error:
            return self.error.splitlines()[0] if self.error.strip() else "not graded"
        if self.grader_error:
            return "a hidden check failed to run (grader error); see results.json"
        return ""

    # ------------------------------------------------------------------ documents

    def to_dict(self) -> dict:
        """dlgrade's results.json: Gradescope's top-level fields, then dlgrade's own."""
        document = {
            "score": self.score,
            "max_score": self.max_score,
            "execution_time": self.execution_time,
            "output": self.output,
            "visibility": "visible",
            "stdout_visibility": "hidden",
            "tests": [t.to_dict() for t in self.tests],
            "assignment": self.assignment,
            "submission": self.submission,
            "title": self.title,
            "functions": {name: f.to_dict() for name, f in self.functions.items()},
            "notes": self.capped_notes,
            "sandbox": self.sandbox,
            "process": dict(self.process),
            "learner_output": cap_text(self.learner_output, MAX_OUTPUT),
            "grader_error": self.grader_error,
            "isolation": dict(self.isolation),
        }
        if self.error is not None:
            document["error"] = cap_text(self.error, MAX_MESSAGE)
        if self.late is not None:
            document["late"] = self.late.to_dict()
        return document

    @classmethod
    def from_dict(cls, data: dict) -> Result:
        """Read back ``to_dict()`` (or an older results dict, or ``to_gradescope()``'s)."""
        if isinstance(data, Result):
            return data
        data = dict(data)
        data.update(data.pop("extra_data", None) or {})
        output = data.get("output", "")
        title = data.get("title") or (output.split(":", 1)[0] if ":" in output else "Submission")
        functions = {
            name: FunctionScore(
                float(f.get("score", 0)), float(f.get("max_score", 0)), int(f.get("passed", 0)), int(f.get("tests", 0))
            )
            for name, f in (data.get("functions") or {}).items()
        }
        late = data.get("late")
        return cls(
            assignment=data.get("assignment"),
            submission=data.get("submission", ""),
            title=title,
            score=float(data.get("score") or 0.0),
            max_score=float(data.get("max_score") or 0.0),
            tests=[TestResult.from_dict(t) for t in data.get("tests", [])],
            functions=functions,
            notes=list(data.get("notes") or []),
            execution_time=float(data.get("execution_time") or 0.0),
            sandbox=data.get("sandbox"),
            process=dict(data.get("process") or {}),
            learner_output=data.get("learner_output", ""),
            grader_error=bool(data.get("grader_error")),
            error=data.get("error"),
            late=Late(**late) if late else None,
            isolation=dict(data.get("isolation") or {}),
        )

    def to_gradescope(self) -> dict:
        """Gradescope's results.json: its fields at the top, dlgrade's under ``extra_data``.

        https://gradescope-autograders.readthedocs.io/en/latest/specs/ (score, execution_time,
        output, visibility, stdout_visibility, tests[] with name, score, max_score, status,
        output, visibility). The total is given explicitly, so a hidden test's points still count.
        """
        from autograder.grading.reports import clean_text  # renderers import this module, not the reverse

        own = self.to_dict()
        extra = {
            key: own[key]
            for key in (
                "assignment",
                "submission",
                "title",
                "functions",
                "notes",
                "sandbox",
                "process",
                "grader_error",
                "max_score",
                "isolation",
            )
        }
        for key in ("error", "late"):
            if key in own:
                extra[key] = own[key]
        return {
            "score": self.score,
            "execution_time": self.execution_time,
            "output": clean_text(self.output),
            "output_format": "text",  # learner text shown as text: no Markdown, HTML or ANSI rendering
            "visibility": "visible",
            "stdout_visibility": "hidden",
            "tests": [
                {
                    "name": clean_text(t.name),
                    "score": t.score,
                    "max_score": t.max_score,
                    "status": t.status,
                    "output": clean_text(t.output),
                    "output_format": "text",
                    "visibility": t.visibility,
                }
                for t in self.tests
            ],
            "extra_data": extra,
        }

    # ------------------------------------------------------------------ read like the old dict

    def __getitem__(self, key):
        return self.to_dict()[key]

    def __iter__(self):
        return iter(self.to_dict())

    def __len__(self):
        return len(self.to_dict())

    __hash__ = None  # type: ignore[assignment]  # mutable


def as_result(value) -> Result:
    """A Result from a Result or a results dict (fake graders, stored grades)."""
    return value if isinstance(value, Result) else Result.from_dict(value)


def zero_result(
    submission: str,
    spec,
    reason: str,
    *,
    assignment: str | None = None,
    notes: list | tuple = (),
    grader_error: bool = False,
    execution_time: float = 0.0,
    staff_traceback: str = "",
    kind: str = "unreadable",
) -> Result:
    """A submission that could not be graded at all: zero, with the reason.

    ``kind``: each check's TestResult.kind, "unreadable" unless the grader failed ("grader-error")
    or the batch found another assignment's notebook ("wrong-assignment", see batch/ledger.py).

    ``spec`` is the assignment (catalogue.Assignment) when it is known, else None:
    with it every graded function keeps its gradebook column (at 0 of its points).
    ``assignment`` labels a submission whose assignment is not known (the batch's "unknown").
    """
    functions, tests = {}, []
    if spec is not None:
        for function in spec.graded_functions:
            points = spec.points.get(function, 0.0)
            functions[function] = FunctionScore(0.0, points)
            tests.append(
                TestResult(
                    function,
                    "notebook could not be graded",
                    points,
                    False,
                    message=reason,
                    kind="grader-error" if grader_error else kind,
                )
            )
    else:
        tests.append(
            TestResult(
                "",
                "notebook could not be graded",
                0.0,
                False,
                message=reason,
                kind="grader-error" if grader_error else kind,
            )
        )
    return Result(
        assignment=spec.name if spec is not None else assignment,
        submission=submission,
        title=spec.title if spec is not None else "Submission",
        score=0.0,
        max_score=spec.max_score if spec is not None else 0.0,
        tests=tests,
        functions=functions,
        notes=list(notes) + [reason],
        execution_time=round(execution_time, 3),
        grader_error=grader_error,
        error=reason,
        staff_traceback=staff_traceback,
    )
