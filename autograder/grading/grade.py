"""Grade one submission, top to bottom.

1. read the notebook (recovering what can be recovered);
2. decide the assignment (flag, else notebook metadata, else graded names);
3. extract the graded cells;
4. start the sandboxed learner process (lazily, at the first call);
5. run the hidden suite in this process with the grading plugin;
6. turn the records into a results dict (Gradescope's results.json shape,
   plus per-function subtotals and what happened to the process).
"""
from __future__ import annotations

import contextlib
import io
import sys
import time
from pathlib import Path

import pytest

from autograder.grading import catalogue

from autograder.sandbox import isolation

from autograder.sandbox import spawn
from autograder.grading.notebook import NotebookError, detect_assignment, extract, read_notebook
from autograder.grading.learner import Learner, LearnerError, LearnerProcess
from autograder.grading import plugin as fixture_definitions  # the module's learner/reference fixtures
from autograder.grading.plugin import CheapFailureReports, GradingPlugin, TestRecord

UNISOLATED_WARNING = (
    "WARNING: this submission ran WITHOUT a sandbox (no bubblewrap and not root): "
    "its code could read or change files of the grading machine. Install bubblewrap or grade in Docker."
)


class _ProblemAwareProcess(LearnerProcess):
    """Fail fast, with the extraction's reason, for functions that cannot run."""

    def __init__(self, *args, problems: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.problems = problems

    def call(self, name, args, kwargs, timeout=None):
        if name in self.problems:
            raise LearnerError(self.problems[name], "missing")
        return super().call(name, args, kwargs, timeout)


def resolve_assignment(nb, requested: str | None) -> str:
    known = catalogue.catalogue()
    detected = detect_assignment(nb, known)
    meta = nb.get("metadata", {}).get("dlgrade", {})
    declared = meta.get("assignment") if isinstance(meta, dict) else None
    if requested:
        if requested not in known:
            raise catalogue.unknown_assignment(requested)
        if declared in known and declared != requested:
            raise NotebookError(f"this notebook is assignment '{declared}', not '{requested}': submit the {requested} notebook")
        if detected not in (None, requested) and declared is None:
            raise NotebookError(f"this notebook looks like assignment '{detected}', not '{requested}'")
        return requested
    if detected is None:
        raise NotebookError("cannot tell which assignment this notebook is (no dlgrade metadata and no graded "
                            f"function of any assignment found); pass --assignment, one of: {', '.join(known)}")
    return detected


def warm_spawner(spec: catalogue.Assignment, strategy: str | None = None) -> spawn.ZygoteSpawner:
    """The assignment's zygote in this process: heavy imports paid once, a fresh fork per submission."""
    preload = ["numpy", f"{spec.name}_utils"] + (["tensorflow"] if spec.config.uses_tensorflow else [])
    return spawn.ZygoteSpawner(f"{spec.name}:{strategy}", spec.release_dir, spec.limits(), preload, strategy)


def run_suite(assignment: catalogue.Assignment, process: LearnerProcess) -> GradingPlugin:
    grading_plugin = GradingPlugin(assignment, Learner(process))
    # The suite may import the assignment's helper module (<name>_utils) at the top.
    if str(assignment.release_dir) not in sys.path:
        sys.path.append(str(assignment.release_dir))
    args = [
        str(assignment.suite_dir),
        "-c", str(catalogue.SUITES_DIR / "pytest.ini"),
        "--rootdir", str(catalogue.SUITES_DIR),
        "-p", "no:terminal", "-p", "no:warnings",
        # Installed pytest11 plugins (anyio, platformdirs) are not for hidden
        # suites, and finding them scans every installed distribution's
        # metadata; the suites raise CheckFailed rather than bare asserts, so
        # assertion rewriting has nothing to add either.
        "--disable-plugin-autoload", "--assert=plain",
    ]
    # Plugins a hidden suite never needs; unraisableexception alone costs a
    # forced gc.collect() of ~0.2 s per submission.
    for unused in ("unraisableexception", "threadexception", "doctest", "pastebin", "junitxml",
                   "stepwise", "lfplugin", "nose", "legacypath", "tmpdir", "logging", "faulthandler"):
        args += ["-p", f"no:{unused}"]
    # pytest prints nothing with the terminal plugin off; anything else is noise.
    with contextlib.redirect_stdout(io.StringIO()):
        exit_code = pytest.main(args, plugins=[grading_plugin, fixture_definitions, CheapFailureReports()])
    if grading_plugin.collection_errors or exit_code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
        raise RuntimeError(f"hidden suite of {assignment.name} failed to run (exit {exit_code}): "
                           + "\n".join(grading_plugin.collection_errors))
    return grading_plugin


def grade_notebook(path, assignment: str | None = None, *, strategy: str | None = None, spawner=None) -> dict:
    """Grade the notebook at ``path``; returns the results dict (never raises for bad input)."""
    started = time.monotonic()
    path = Path(path)
    notes: list = []
    name = assignment
    try:
        nb, notes = read_notebook(path)
        name = resolve_assignment(nb, assignment)
    except NotebookError as exc:
        return unreadable_result(path, name if name in catalogue.names() else None, str(exc), notes, started)

    spec = catalogue.load(name)
    extraction = extract(nb, spec.graded_functions)
    notes += extraction.notes
    if spawner is None:
        spawner = warm_spawner(spec, strategy)
    process = _ProblemAwareProcess(
        spec.preamble, extraction.cells, spec.release_dir, spec.limits(),
        spec.config.call_timeout, spec.config.submission_timeout, strategy=strategy, spawner=spawner,
        problems=extraction.problems, repeatable=spec.config.repeatable_calls,
    )
    process.start_in_background()
    try:
        plugin = run_suite(spec, process)
    finally:
        process.close()
    return build_result(path, spec, plugin.records, process, notes, started)


def build_result(path: Path, spec, records: list, process: LearnerProcess, notes: list, started: float) -> dict:
    events = process.events
    tests, functions = [], {}
    for function in spec.graded_functions:
        functions[function] = {"score": 0.0, "max_score": spec.points.get(function, 0.0), "passed": 0, "tests": 0}
    for record in records:
        entry = functions.setdefault(record.function, {"score": 0.0, "max_score": 0.0, "passed": 0, "tests": 0})
        entry["tests"] += 1
        if record.passed:
            entry["score"] += record.points
            entry["passed"] += 1
        tests.append(test_entry(record))
    for entry in functions.values():
        entry["score"] = round(min(entry["score"], entry["max_score"] or entry["score"]), 6)

    for cell_id, error in events.cell_errors.items():
        notes.append(f"cell {cell_id} failed when run: {error.splitlines()[0][:300]}")
    for cell_id, lines in events.skipped_lines.items():
        notes.append(f"cell {cell_id}: top-level code on line(s) {', '.join(map(str, lines[:10]))} was not run "
                     "(only imports, function/class definitions and constants of graded cells are executed)")
    if events.output_bytes > len(events.output_head.encode()):
        notes.append(f"the notebook's code printed {events.output_bytes:,} bytes; only the first "
                     f"{len(events.output_head.encode()):,} were kept")
    if events.strategy == "plain":
        notes.insert(0, UNISOLATED_WARNING)
    score = round(sum(f["score"] for f in functions.values()), 6)
    return {
        "score": score,
        "max_score": spec.max_score,
        "execution_time": round(time.monotonic() - started, 3),
        "output": f"{spec.title}: {score:g} / {spec.max_score:g}",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        # Fields below are dlgrade's own; Gradescope ignores unknown keys.
        "assignment": spec.name,
        "submission": path.name,
        "functions": functions,
        "notes": notes,
        "sandbox": events.strategy or isolation.available_strategy(),
        "process": {
            "crashes": [{"while": w, "exit_code": c} for w, c in events.crashes],
            "timeouts": events.timeouts,
            "memory_exceeded": events.memory_exceeded,
            "output_bytes": events.output_bytes,
        },
        "learner_output": events.output_head[:4000],
        "grader_error": any(r.kind == "grader-error" for r in records),
    }


def test_entry(record: TestRecord) -> dict:
    output = record.message
    if record.hint:
        output += f"\nHint: {record.hint}"
    if record.detail:
        output += f"\n{record.detail}"
    return {
        "name": f"{record.function}: {record.check}",
        "function": record.function,
        "score": record.points if record.passed else 0.0,
        "max_score": record.points,
        "status": "passed" if record.passed else "failed",
        "output": output if not record.passed else "",
        "visibility": "visible",
    }


def unreadable_result(path: Path, name: str | None, reason: str, notes: list, started: float) -> dict:
    """A submission that cannot be graded at all: zero, with the reason."""
    functions, tests, max_score, title = {}, [], 0.0, "Submission"
    if name:
        spec = catalogue.load(name)
        max_score, title = spec.max_score, spec.title
        for function in spec.graded_functions:
            points = spec.points.get(function, 0.0)
            functions[function] = {"score": 0.0, "max_score": points, "passed": 0, "tests": 0}
            tests.append({"name": f"{function}: notebook could not be read", "function": function, "score": 0.0,
                          "max_score": points, "status": "failed", "output": reason, "visibility": "visible"})
    else:
        tests.append({"name": "notebook could not be graded", "function": "", "score": 0.0, "max_score": 0.0,
                      "status": "failed", "output": reason, "visibility": "visible"})
    return {
        "score": 0.0, "max_score": max_score, "execution_time": round(time.monotonic() - started, 3),
        "output": f"{title}: 0 / {max_score:g}. {reason}", "visibility": "visible", "stdout_visibility": "hidden",
        "tests": tests, "assignment": name, "submission": path.name, "functions": functions,
        "notes": notes + [reason], "sandbox": None, "process": {}, "learner_output": "", "grader_error": False,
        "error": reason,
    }
