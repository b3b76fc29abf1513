"""Grade one submission, top to bottom.

1. read the notebook (recovering what can be recovered);
2. decide the assignment (flag, else notebook metadata, else graded names);
3. extract the definitions of every cell (and where each graded function is);
4. start the sandboxed learner process (lazily, at the first call);
5. run the hidden suite in this process with the grading plugin (one pytest session per
   assignment and process, collected once: grading/suite_session.py);
6. turn the records into a Result (results.py: per-check and per-function
   scores, notes, and what happened to the process).
"""

from __future__ import annotations

import time
from pathlib import Path

from autograder.grading import catalogue, notebook, probes
from autograder.grading.learner import LearnerProcess
from autograder.grading.learner_errors import ErrorKind, LearnerError, shorten_paths
from autograder.grading.notebook import (
    NotebookError,
    check_size,
    detect_assignment,
    extract,
    modules_imported_by,
    parse_code_cells,
    parse_notebook,
)
from autograder.grading.plugin import TestRecord
from autograder.grading.results import FunctionScore, Result, TestResult, zero_result
from autograder.grading.submission_file import read_submission_bytes
from autograder.grading.suite_session import FunctionBoundary, run_suite  # noqa: F401 (grade.FunctionBoundary: bench_ab)
from autograder.sandbox import isolation, settings, spawn

UNISOLATED_WARNING = (
    "WARNING: this submission ran WITHOUT a sandbox (no bubblewrap and not root): "
    "its code could read or change files of the grading machine. Install bubblewrap or grade in Docker."
)


class _ProblemAwareProcess(LearnerProcess):
    """Fail fast, with the extraction's reason, for functions that cannot run."""

    def __init__(self, *, problems: dict, **kwargs):
        super().__init__(**kwargs)
        self.problems = problems

    def call(self, name, args, kwargs, timeout=None):
        if name in self.problems:
            raise LearnerError(self.problems[name], ErrorKind.MISSING)
        return super().call(name, args, kwargs, timeout)

    def wants_child(self, name):
        return name not in self.problems

    def probe(self, source, inputs, timeout=None, what="a check"):
        if what in self.problems:  # a probe named after a graded function (probes.call_with_stand_ins)
            raise LearnerError(self.problems[what], ErrorKind.MISSING)
        return super().probe(source, inputs, timeout, what)


def resolve_assignment(nb, requested: str | None, parsed: list | None = None) -> str:
    """``parsed``: the notebook's cells as notebook.parse_code_cells returned them (parsed here when None)."""
    known = catalogue.catalogue()
    detected = detect_assignment(nb, known, parsed)
    meta = nb.get("metadata", {}).get("dlgrade", {})
    declared = meta.get("assignment") if isinstance(meta, dict) else None
    if requested:
        if requested not in known:
            raise catalogue.unknown_assignment(requested)
        if declared in known and declared != requested:
            raise NotebookError(
                f"this notebook is assignment '{declared}', not '{requested}': submit the {requested} notebook"
            )
        if detected not in (None, requested) and declared is None:
            raise NotebookError(f"this notebook looks like assignment '{detected}', not '{requested}'")
        return requested
    if detected is None:
        raise NotebookError(
            "cannot tell which assignment this notebook is (no dlgrade metadata and no graded "
            f"function of any assignment found); pass --assignment, one of: {', '.join(known)}"
        )
    return detected


def warm_spawner(spec: catalogue.Assignment, strategy: str | None = None) -> spawn.ZygoteSpawner:
    """The assignment's zygote in this process: heavy imports paid once, a fresh fork per submission."""
    preload = ["numpy", f"{spec.name}_utils"] + (["tensorflow"] if spec.config.uses_tensorflow else [])
    # Every cell's imports run to grade: a plotting import of the notebook's demo cells is paid once here.
    if "matplotlib" in modules_imported_by(spec.released_notebook):
        preload.append("matplotlib.pyplot")
    # The GPU settings decide what the zygote's sandbox binds or covers: a zygote of its own per setting.
    gpus = settings.current().child_cuda_devices if settings.current().gpus_requested else ""
    return spawn.ZygoteSpawner(
        f"{spec.name}:{strategy}:{gpus}:{settings.current().gpu_devices}",
        spec.release_dir,
        spec.limits(),
        preload,
        strategy,
        preamble=spec.preamble,
    )


def grade_notebook(path, assignment: str | None = None, *, strategy: str | None = None, spawner=None) -> Result:
    """Grade the notebook at ``path``; returns its Result (never raises for bad input)."""
    started = time.monotonic()
    path = Path(path)
    notes: list = []
    name = assignment
    try:
        raw = read_submission_bytes(path, notebook.MAX_NOTEBOOK_BYTES)  # the cap of every read; the assignment's below
        nb, notes = parse_notebook(raw, path.name)
        parsed = parse_code_cells(nb)  # each cell parsed once per grade
        name = resolve_assignment(nb, assignment, parsed)
        spec = catalogue.load(name)
        # The assignment's limits on what the grader takes on, before anything is extracted or runs.
        check_size(
            len(raw),
            parsed,
            max_bytes=spec.config.max_notebook_bytes,
            max_cells=spec.config.max_code_cells,
            max_statements=spec.config.max_statements,
            name=path.name,
        )
    except NotebookError as exc:
        return unreadable_result(path, name if name in catalogue.names() else None, str(exc), notes, started)

    try:  # before any learner code runs, in the process that grades (a local or Dask worker too)
        readable_check = check_isolation_here(strategy)
    except isolation.IsolationRefused as exc:
        result = zero_result(
            path.name, spec, str(exc), notes=notes, grader_error=True, execution_time=time.monotonic() - started
        )
        result.isolation = {"strategy": strategy or isolation.available_strategy(), "readable_check": f"refused: {exc}"}
        return result
    extraction = extract(nb, spec.graded_functions, spec.preamble, parsed)
    untouched = notebook.untouched_stubs(parsed, spec.released_notebook, spec.graded_functions)
    notes += extraction.notes
    if spawner is None:
        spawner = warm_spawner(spec, strategy)
    process = _ProblemAwareProcess(
        preamble=spec.preamble,
        cells=extraction.cells,
        helper_dir=spec.release_dir,
        limits=spec.limits(),
        # Each graded function a fixed share of the submission's time (grading/time_policy.py).
        time_policy=spec.time_policy,
        strategy=strategy,
        spawner=spawner,
        problems=extraction.problems,
        repeatable=spec.config.repeatable_calls,
        max_reply_elements=spec.config.max_reply_elements,
        max_submission_elements=spec.config.max_submission_elements,
        # A function that calls another graded function is graded with the reference one (grading/stand_ins.py).
        stand_ins=catalogue.reference_sources(name),
        # Without TensorFlow the reference runs here, the child calling back (grading/callbacks.py).
        reference=None if spec.config.uses_tensorflow else (lambda: vars(catalogue.reference(name))),
    )
    if readable_check.startswith("accepted: "):
        notes.insert(0, f"WARNING: graded with --accept-unisolated: {readable_check.removeprefix('accepted: ')}")
    if spec.graded_functions:
        # The suites check functions in notebook order: the first one's child starts (in the
        # background, with a zygote) while pytest starts.
        process.begin_function(spec.graded_functions[0])
    else:
        process.start_in_background()
    accelerator = None
    try:
        plugin = run_suite(spec, process)
        if spec.config.uses_tensorflow:  # in the last function's child, after its checks ran their ops
            accelerator = probes.accelerator_of(process)
    finally:
        process.close()
    result = build_result(
        path, spec, plugin.records, process, notes, started, extraction.cell_defines, extraction.labels, untouched
    )
    result.isolation = {**process.isolation_report(), "readable_check": readable_check}
    if settings.current().gpus_requested:
        result.isolation["gpus"] = isolation.gpu_report(strategy or isolation.available_strategy())
    if accelerator is not None:
        result.isolation["accelerator"] = accelerator
    return result


def check_isolation_here(strategy: str | None = None) -> str:
    """The readability check in the process that grades (a local or Dask worker, a library caller):
    its outcome, which the report quotes.

    The hidden suites and the solutions are probed as the learner's uid once per process
    (isolation.readable_check caches it). The submissions and the outputs are checked by the
    command that starts the run (cli.check_isolation); a batch worker writes each submission
    in a folder of its own made by tempfile (0700). Raises isolation.IsolationRefused under
    setpriv when the learner's uid can read them and --accept-unisolated
    (Settings.accept_unisolated) was not given."""
    paths = [catalogue.SUITES_DIR, catalogue.root() / "solutions"]
    return isolation.readable_check(paths, settings.current().accept_unisolated, strategy)


def build_result(
    path: Path,
    spec,
    records: list,
    process: LearnerProcess,
    notes: list,
    started: float,
    cell_defines: dict | None = None,
    labels: dict | None = None,
    untouched: frozenset = frozenset(),
) -> Result:
    cell_defines, labels = cell_defines or {}, labels or {}
    events = process.events
    tests = [record_result(record, hints=spec.config.hints, untouched=untouched) for record in records]
    functions = {function: FunctionScore(0.0, spec.points.get(function, 0.0)) for function in spec.graded_functions}
    for test in tests:
        entry = functions.setdefault(test.function, FunctionScore(0.0, 0.0))
        entry.tests += 1
        if test.passed:
            entry.score += test.score
            entry.passed += 1
    for entry in functions.values():
        entry.score = round(min(entry.score, entry.max_score or entry.score), 6)

    for cell_id, error in events.cell_errors.items():
        defines = cell_defines.get(cell_id, [])
        consequence = (
            (
                f"; what it defines ({', '.join(defines[:8])}{', ...' if len(defines) > 8 else ''}) "
                "may be missing, and functions that use it fail too"
            )
            if defines
            else ""
        )
        label = labels.get(cell_id, f"cell {cell_id}")
        notes.append(f"{label} failed when run: {shorten_paths(error).splitlines()[0][:300]}{consequence}")
    if events.output_bytes > len(events.output_head.encode()):
        notes.append(
            f"the notebook's code printed {events.output_bytes:,} bytes; only the first "
            f"{len(events.output_head.encode()):,} were kept"
        )
    if events.strategy == "plain":
        notes.insert(0, UNISOLATED_WARNING)
    return Result(
        assignment=spec.name,
        submission=path.name,
        title=spec.title,
        score=round(sum(f.score for f in functions.values()), 6),
        max_score=spec.max_score,
        tests=tests,
        functions=functions,
        notes=notes,
        execution_time=round(time.monotonic() - started, 3),
        sandbox=events.strategy or isolation.available_strategy(),
        process={
            "crashes": [{"while": w, "exit_code": c} for w, c in events.crashes],
            "timeouts": events.timeouts,
            "memory_exceeded": events.memory_exceeded,
            "output_bytes": events.output_bytes,
        },
        learner_output=events.output_head[:4000],
        grader_error=any(r.kind == "grader-error" for r in records),
    )


def record_result(record: TestRecord, hints: bool = True, untouched: frozenset = frozenset()) -> TestResult:
    """One check's outcome; ``hints = false`` in assignment.toml keeps hints out of every report.

    ``untouched``: graded functions whose definition is still the released stub's: a failed check of
    one says so, whatever exception the stub's None or NotImplementedError surfaced as in the check."""
    if not record.passed and record.function in untouched and record.kind != "grader-error":
        record.message = f"{record.function} is not implemented yet: its cell is still the released stub"
        record.hint, record.detail, record.kind = "write your code where the cell says YOUR CODE HERE", "", "error"
    return TestResult(
        function=record.function,
        check=record.check,
        max_score=record.points,
        passed=record.passed,
        score=record.points if record.passed else 0.0,
        message=record.message,
        hint=record.hint if hints else "",
        traceback=record.detail,
        kind=record.kind,
        visibility=record.visibility,
    )


def unreadable_result(path: Path, name: str | None, reason: str, notes: list, started: float) -> Result:
    """A submission that cannot be graded at all: zero, with the reason."""
    return zero_result(
        path.name,
        catalogue.load(name) if name else None,
        reason,
        notes=notes,
        execution_time=time.monotonic() - started,
    )
