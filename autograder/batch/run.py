"""``dlgrade batch``: grade a folder of submissions in parallel, resumably.

    dlgrade batch SUBMISSIONS --out DIR [--assignment NAME] [--only LEARNER,...] [--force]
                  [--workers N] [--dask ADDRESS|local:N]

Writes DIR/<learner>/<assignment>/{results.json,junit.xml,feedback.md},
DIR/gradebook.csv, DIR/plots/<assignment>-{scores,pass-rate}.png, DIR/skipped.txt
(files that were not graded, and why) and keeps its state in
DIR/batch-state.sqlite: run it again (after a crash, a kill, or new submissions)
and only what changed is graded: a new or changed notebook, or every notebook of
an assignment whose hidden suite, reference solution or limits changed, or all
of them when the grading engine changed. The batch says why it regrades.

Exit status: 0 when every submission got a result (a notebook that could not be
graded gets a zero and its reason, which is a result); 2 when the batch itself
could not run (no such folder, unknown assignment, scheduler unreachable, ...);
3 when the grader failed on a submission (batch-errors.log has the traceback);
128+N when stopped by signal N (every grade finished before it is kept).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from autograder.batch import gradebook, late, pool
from autograder.batch.discovery import LEARNER_FOLDER, Discovery, SubmissionsError, discover
from autograder.batch.state import GradeState, Inputs, StateError, assignment_inputs
from autograder.grading import catalogue
from autograder.grading.reports import REPORT_FILES, results_json, write_reports
from autograder.grading.results import as_result

STATE_FILE = "batch-state.sqlite"
LOCK_FILE = ".batch.lock"
ERRORS_LOG = "batch-errors.log"  # grader tracebacks: for staff, never in a learner's report
SKIPPED_FILE = "skipped.txt"
UNKNOWN = "unknown"  # assignment label of a notebook nobody can identify
PLOTS_DRAWN = "plots_drawn_for"  # state meta key: the grades the plots show
# Without a terminal (CI logs) a progress line every this many submissions or seconds.
PROGRESS_EVERY = 25
PROGRESS_SECONDS = 30.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class BatchError(Exception):
    """The batch cannot run at all; ``str()`` says why."""


class Interrupted(KeyboardInterrupt):
    """A stop signal (or Ctrl-C) arrived: ``signum``; ``summary`` says what was kept (None: it came
    before grading began) and ``remaining`` how many submissions were not graded yet."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.summary: BatchSummary | None = None
        self.remaining = 0


@dataclass(kw_only=True)
class BatchSummary:
    """What a run did (:func:`run_batch` returns it; :class:`Interrupted` carries it when stopped)."""

    out: Path
    graded: int = 0  # graded in this run
    kept: int = 0  # already graded, nothing it depends on changed
    failed: int = 0  # of this run's submissions, those that could not be graded
    grader_failures: int = 0  # of those, the ones where the grader itself failed
    grades: list = field(default_factory=list)  # state.Grade of every submission in this run
    warnings: list = field(default_factory=list)
    reasons: Counter = field(default_factory=Counter)  # why submissions were graded -> how many
    skipped: list = field(default_factory=list)  # [(source, reason)]
    changed: bool = False  # any grade recorded or removed: the course-wide outputs are redrawn


@dataclass(kw_only=True)
class Plan:
    """What a run will do (:func:`plan`): which submissions to grade, which grades to keep."""

    jobs: list = field(default_factory=list)  # [pool.Job] to grade
    kept: list = field(default_factory=list)  # [state.Grade] still current
    unreadable: list = field(default_factory=list)  # [(Submission, label, reason)]
    warnings: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # [(source, reason)]
    reasons: Counter = field(default_factory=Counter)
    inputs: dict = field(default_factory=dict)  # assignment label -> state.Inputs of its grades now


@dataclass(frozen=True, kw_only=True)
class BatchOptions:
    """What one batch run was asked to do: :func:`run_batch`'s arguments, checked and resolved once."""

    root: Path  # the submissions folder
    out: Path  # reports, gradebooks, plots and the state
    assignment: str | None  # only this assignment's submissions (None: every one, detected)
    only: frozenset | None  # only these learners (None: every learner)
    force: bool  # grade again even what is current
    workers: int  # local worker processes (not used with dask)
    dask: str | None  # a checked Dask address, or None: local workers
    task_timeout: float | None  # last-resort limit per submission (None: default_timeout(label))
    grade: pool.GradeFunction  # what a worker calls per submission
    progress: bool | None  # True: a bar; False: nothing; None: a bar on a terminal, else lines
    log: Callable  # print-like: where the run's messages go
    lateness: late.Lateness | None  # the course's late policy, applied to what is written


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_timeout(label: str) -> float:
    """Last-resort limit per submission: far above what the engine's own limits allow."""
    from autograder.grading.time_policy import UNKNOWN_ASSIGNMENT_TASK_TIMEOUT

    if label not in catalogue.names():
        return UNKNOWN_ASSIGNMENT_TASK_TIMEOUT
    return catalogue.load(label).time_policy.batch_task_timeout


def detect_label(path: Path) -> str:
    """Which assignment a notebook is, read from its JSON only (nothing of it runs here)."""
    from autograder.grading.grade import resolve_assignment
    from autograder.grading.notebook import read_notebook

    try:
        nb, _ = read_notebook(path)
        return resolve_assignment(nb, None)
    except Exception:  # unreadable or unidentifiable: grade_notebook will explain why
        return UNKNOWN


def _label(sub, previous, sha256: str, assignment: str | None, known: list) -> str | None:
    """The assignment a submission is graded as; None: another assignment than the one asked for."""
    if sub.folder_assignment in known:
        return sub.folder_assignment
    if assignment and sub.layout != LEARNER_FOLDER:
        return assignment  # a flat folder (or an nbgrader folder) given for one assignment: all of it is
    same = previous is not None and previous.sha256 == sha256 and previous.assignment in known + [UNKNOWN]
    detected = previous.assignment if same else detect_label(sub.path)
    if assignment and detected != assignment:
        return assignment if detected == UNKNOWN else None
    return detected


def _preference(label: str):
    """Which of a learner's notebooks for one assignment is graded: the released file name, then the newest."""
    released = f"{label}.ipynb"

    def key(candidate):
        sub = candidate[0]
        try:
            mtime = sub.path.stat().st_mtime
        except OSError:
            mtime = 0.0
        return (sub.path.name != released, -mtime, sub.source)

    return key


def plan(
    discovery: Discovery,
    state: GradeState,
    *,
    assignment: str | None,
    task_timeout: float | None,
    force: bool = False,
    only=None,
) -> Plan:
    """Split the selected submissions into jobs to grade, grades to keep and unreadable files.

    ``assignment``: only this assignment (None: every one); ``task_timeout``: each job's limit
    (None: :func:`default_timeout`); ``force``: grade again even what is current; ``only``:
    learner names (None: every learner).
    """
    known = catalogue.names()
    result = Plan(warnings=list(discovery.warnings), skipped=list(discovery.skipped))
    groups: dict = {}  # (learner, label) -> [(sub, data, sha256, previous)]
    for sub in discovery.submissions:
        if only is not None and sub.learner not in only:
            continue
        if assignment and sub.folder_assignment in known and sub.folder_assignment != assignment:
            continue  # another assignment's folder (nbgrader layout)
        try:
            data = sub.path.read_bytes()
        except OSError as exc:
            label = assignment or (sub.folder_assignment if sub.folder_assignment in known else UNKNOWN)
            result.unreadable.append((sub, label, f"cannot read {sub.source}: {exc.strerror}"))
            continue
        sha256 = hashlib.sha256(data).hexdigest()
        previous = state.find(sub.source)
        label = _label(sub, previous, sha256, assignment, known)
        if label is not None:
            groups.setdefault((sub.learner, label), []).append((sub, data, sha256, previous))

    for (learner, label), candidates in groups.items():
        candidates.sort(key=_preference(label))
        sub, data, sha256, previous = candidates[0]
        if len(candidates) > 1:
            ignored = [c[0].source for c in candidates[1:]]
            why = (
                f"not the released name {label}.ipynb"
                if sub.path.name == f"{label}.ipynb"
                else "older than the one graded"
            )
            result.warnings.append(
                f"{learner} has {len(candidates)} notebooks for {label}: graded {sub.source}; "
                f"ignored {', '.join(ignored)} ({why})"
            )
            result.skipped += [
                (source, f"{learner} / {label}: {sub.source} was graded instead ({why})") for source in ignored
            ]
        if label not in result.inputs:
            result.inputs[label] = assignment_inputs(label)
        inputs = result.inputs[label]
        if previous is not None and previous.sha256 == sha256 and previous.assignment == label:
            reasons = ["--force"] if force else [f"{label}: {why}" for why in inputs.changes(previous.inputs)]
            if not reasons:
                result.kept.append(previous)
                continue
        elif previous is not None:
            reasons = ["the notebook changed"]
        else:
            other = state.find_key(learner, label)
            reasons = [f"now graded from {sub.source} instead of {other.source}" if other else "new submission"]
        result.reasons.update(reasons)
        result.jobs.append(
            pool.Job(
                learner=learner,
                assignment=label,
                grade_as=label if label in known else None,
                name=sub.path.name,
                data=data,
                source=sub.source,
                sha256=sha256,
                timeout=task_timeout or default_timeout(label),
            )
        )
    result.kept.sort(key=lambda g: (g.learner, g.assignment))
    for _sub, label, _ in result.unreadable:
        result.reasons["unreadable file"] += 1
        result.inputs.setdefault(label, assignment_inputs(label))
    return result


class _Lock:
    """One batch at a time per output folder (flock: released even by kill -9)."""

    def __init__(self, out: Path):
        self.handle = open(out / LOCK_FILE, "w")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            raise BatchError(f"another dlgrade batch is writing to {out}; wait for it or use another --out")

    def release(self) -> None:
        self.handle.close()


class _Progress:
    """A bar on a terminal; elsewhere (CI logs) a line every PROGRESS_EVERY submissions or PROGRESS_SECONDS."""

    def __init__(self, total: int, mode: bool | None):
        self.total, self.done, self.failed = total, 0, 0
        self.started = self.last_line = time.monotonic()
        self.last_count = 0
        self.bar = None
        self.lines = mode is None and not sys.stderr.isatty()
        if mode is True or (mode is None and not self.lines):
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="nb", desc="grading", dynamic_ncols=True)

    def note(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        elif self.lines:
            print(text, file=sys.stderr, flush=True)

    def update(self, failed: bool) -> None:
        self.done += 1
        self.failed += failed
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(f"done {self.done}, failed {self.failed}, remaining {self.total - self.done}")
            return
        now = time.monotonic()
        if self.lines and (
            self.done - self.last_count >= PROGRESS_EVERY
            or now - self.last_line >= PROGRESS_SECONDS
            or self.done == self.total
        ):
            elapsed = now - self.started
            left = elapsed / self.done * (self.total - self.done)
            print(
                f"graded {self.done}/{self.total} ({self.failed} could not be graded), {elapsed:.0f} s elapsed"
                + (f", about {left:.0f} s left" if self.done < self.total else ""),
                file=sys.stderr,
                flush=True,
            )
            self.last_line, self.last_count = now, self.done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_batch(
    submissions,
    out,
    *,
    assignment: str | None = None,
    workers: int | None = None,
    dask: str | None = None,
    task_timeout: float | None = None,
    grade: pool.GradeFunction | None = None,
    progress: bool | None = None,
    log=print,
    force: bool = False,
    only=None,
    lateness: late.Lateness | None = None,
    stop_on_signals: bool = False,
) -> BatchSummary:
    """Grade every selected submission whose grade is missing or out of date, then regenerate the gradebook and plots.

    ``assignment``: only this assignment's submissions (None: every one, detected per notebook);
    ``only``: learner names (None: every learner); ``force``: grade again even what is current;
    ``workers``: local worker processes (None: one per core); ``dask``: a Dask scheduler address,
    or ``local:N``, instead of local workers; ``task_timeout``: last-resort limit per submission
    (None: :func:`default_timeout`); ``grade``: the function a worker calls per submission
    (default: pool.grade_submission); ``progress`` and ``log``: see :class:`BatchOptions`;
    ``lateness``: the course's late policy, applied to what is written (the state keeps raw grades);
    ``stop_on_signals``: SIGTERM, SIGINT and SIGHUP stop this run cleanly (:class:`StopSignals`,
    installed for the run and removed after it; the command line asks for it).

    Raises :class:`BatchError` when the batch cannot run, :class:`Interrupted` when it was stopped.
    """
    with StopSignals(install=stop_on_signals) as stop:
        if assignment is not None and assignment not in catalogue.names():
            raise BatchError(str(catalogue.unknown_assignment(assignment)))
        if dask is not None:
            dask = _check_dask_address(dask)
        try:
            discovery = discover(Path(submissions))
        except SubmissionsError as exc:
            raise BatchError(str(exc)) from exc
        if only is not None:
            only = frozenset(only)
            learners = {s.learner for s in discovery.submissions}
            if not only & learners:
                raise BatchError(f"--only {','.join(sorted(only))}: no such learner in {submissions}")
            discovery.warnings += [
                f"--only: no submission of {name!r} in {submissions}" for name in sorted(only - learners)
            ]
        options = BatchOptions(
            root=Path(submissions),
            out=Path(out),
            assignment=assignment,
            only=only,
            force=force,
            workers=workers or default_workers(),
            dask=dask,
            task_timeout=task_timeout,
            grade=grade or pool.grade_submission,
            progress=progress,
            log=log,
            lateness=lateness,
        )
        try:
            options.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BatchError(f"cannot create {options.out}: {exc.strerror}") from exc
        lock = _Lock(options.out)
        try:
            with GradeState(options.out / STATE_FILE) as state:
                return _run(options, discovery=discovery, state=state, stop=stop)
        except StateError as exc:
            raise BatchError(str(exc)) from exc
        finally:
            lock.release()


def _reason_text(reasons: Counter) -> str:
    return "; ".join(f"{why} ({count})" for why, count in reasons.most_common())


def _run(options: BatchOptions, *, discovery: Discovery, state: GradeState, stop: StopSignals) -> BatchSummary:
    """Plan, grade and record (each grade inside ``stop.deferred()``), then write the course-wide outputs."""
    out, log = options.out, options.log
    work = plan(
        discovery,
        state,
        assignment=options.assignment,
        task_timeout=options.task_timeout,
        force=options.force,
        only=options.only,
    )
    jobs, kept, unreadable = work.jobs, work.kept, work.unreadable
    summary = BatchSummary(out=out, kept=len(kept), warnings=work.warnings, reasons=work.reasons, skipped=work.skipped)
    total = len(jobs) + len(kept) + len(unreadable)
    where = f"Dask ({options.dask})" if options.dask else f"{min(options.workers, len(jobs)) or 1} worker process(es)"
    log(
        f"{total} submission(s) in {options.root} ({discovery.layout} layout): "
        f"{len(kept)} already graded, {len(jobs) + len(unreadable)} to grade" + (f" with {where}" if jobs else "")
    )
    if work.reasons:
        log(f"grading because: {_reason_text(work.reasons)}")
    for warning in summary.warnings:
        log(f"warning: {warning}", file=sys.stderr)
    _write_skipped(out / SKIPPED_FILE, summary.skipped)

    keys = [(g.learner, g.assignment) for g in kept]
    bar = None if options.progress is False else _Progress(len(jobs) + len(unreadable), options.progress)

    def with_lateness(learner, label, source, result):
        # The state keeps the raw grade; the course's late policy applies to what is written.
        return result if options.lateness is None else options.lateness.apply(learner, label, source, result)

    def on_done(job: pool.Job, result) -> None:
        # A stop signal waits until this grade is recorded, its reports written and counted:
        # the stop message's count is then exactly what the state holds from this run.
        with stop.deferred():
            _record(job, result)

    def _record(job: pool.Job, result) -> None:
        result = as_result(result)  # a grade function may return a results dict
        if result.staff_traceback:
            with open(out / ERRORS_LOG, "a", encoding="utf-8") as handle:
                handle.write(f"--- {job.source} ({job.learner}, {job.assignment})\n{result.staff_traceback}\n")
        # State first: it is the record. Reports are rewritten from it if we die in between.
        replaced = state.record(
            learner=job.learner,
            assignment=job.assignment,
            source=job.source,
            sha256=job.sha256,
            result=result,
            inputs=work.inputs.get(job.assignment, Inputs()),
        )
        summary.changed = True
        for learner, label in replaced:
            _remove_reports(out, learner, label)
        write_reports(
            with_lateness(job.learner, job.assignment, job.source, result), out / job.learner / job.assignment
        )
        keys.append((job.learner, job.assignment))
        summary.graded += 1
        why = gradebook.problem(result)
        if why and bar is not None:
            bar.note(f"{job.learner} / {job.assignment}: not graded: {why[:200]}")
        if bar is not None:
            bar.update(bool(why))

    try:
        for sub, label, reason in unreadable:
            job = pool.Job.not_graded(learner=sub.learner, assignment=label, name=sub.path.name, source=sub.source)
            on_done(job, pool.failed_result(sub.path.name, label, reason))
        if jobs and options.dask:
            try:
                pool.run_dask(jobs, options.dask, on_done, options.grade)
            except (OSError, TimeoutError) as exc:
                raise BatchError(f"cannot use the Dask cluster at {options.dask}: {exc}") from exc
        elif jobs:
            pool.run_local(jobs, options.workers, on_done, options.grade)
    except KeyboardInterrupt as exc:  # Ctrl-C, or a stop signal (see StopSignals)
        stopped = exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)
        stopped.summary, stopped.remaining = summary, len(jobs) + len(unreadable) - summary.graded
        raise stopped from None
    finally:
        if bar is not None:
            bar.close()

    grades = [
        dataclasses.replace(g, result=with_lateness(g.learner, g.assignment, g.source, g.result))
        for g in state.grades()
    ]
    _restore_reports(out, grades)
    gradebook.write_gradebooks(grades, out)
    gradebook.write_course_page(grades, out)
    # Plots take seconds to draw: only when the grades they show changed (or were never drawn).
    drawn_for = _grades_digest(grades)
    if summary.changed or state.get_meta(PLOTS_DRAWN) != drawn_for:
        gradebook.write_plots(grades, out / "plots")
        state.set_meta(PLOTS_DRAWN, drawn_for)
        summary.changed = True
    wanted = set(keys)
    summary.grades = [g for g in grades if (g.learner, g.assignment) in wanted]
    summary.failed = sum(1 for g in summary.grades if gradebook.problem(g.result))
    summary.grader_failures = sum(1 for g in summary.grades if as_result(g.result).grader_error)
    return summary


def _grades_digest(grades: list) -> str:
    # The score too: a changed late policy changes it without a regrade.
    text = "\n".join(
        f"{g.learner}\0{g.assignment}\0{g.sha256}\0{g.graded_at}\0{as_result(g.result).score}" for g in grades
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _write_skipped(path: Path, skipped: list) -> None:
    from autograder.grading.reports import atomic_write

    lines = [f"{source}\t{reason}" for source, reason in skipped]
    atomic_write(path, "".join(line + "\n" for line in lines))


def _check_dask_address(address: str) -> str:
    if address.startswith("local:"):
        count = address.split(":", 1)[1]
        if not count.isdigit() or int(count) < 1:
            raise BatchError(f"--dask {address}: expected local:N with N worker processes, e.g. local:4")
    return address


def _remove_reports(out: Path, learner: str, label: str) -> None:
    folder = out / learner / label
    for name in REPORT_FILES:
        (folder / name).unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        pass


def _restore_reports(out: Path, grades: list) -> None:
    """Rewrite any per-learner report that is missing or older than the state (a kill between the two)."""
    for grade in grades:
        folder = out / grade.learner / grade.assignment
        try:
            current = (folder / "results.json").read_text(encoding="utf-8")
        except OSError:
            current = None
        if current != results_json(grade.result) or not all((folder / n).exists() for n in REPORT_FILES):
            write_reports(grade.result, folder)


# ------------------------------------------------------------------ stopping a run


class StopSignals:
    """How a batch run stops on SIGTERM (CI cancel, ``timeout``, ``docker stop``), SIGINT and SIGHUP.

    ``with StopSignals() as stop:`` installs the handlers; leaving the block puts the previous
    ones back. The first signal becomes :class:`Interrupted` in the main thread, and the pool kills
    its workers (and with them their sandboxes) on the way out; a second one, during that, exits
    at once with 128+N (the state is committed; the workers die with us: PR_SET_PDEATHSIG).

    A signal that arrives inside ``with stop.deferred():`` (a finished grade being recorded) is
    held, and raised as :class:`Interrupted` when the block ends.

    Each run has its own: nothing of one run's signals reaches another run in the same process.
    ``StopSignals(install=False)`` installs nothing (a library call, a test): ``deferred()`` then
    has no signal to hold, and a Ctrl-C is Python's own KeyboardInterrupt.
    """

    def __init__(self, *, install: bool = True):
        self.install = install
        self.held: int | None = None  # a signal that arrived during deferred(), raised when it ends
        self._depth = 0  # how many deferred() blocks we are in
        self._previous: dict = {}  # signal -> its handler before ours, while ours are installed

    def __enter__(self) -> StopSignals:
        self.held = None
        if self.install:
            self._previous = {number: signal.signal(number, self._first) for number in STOP_SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        previous, self._previous = self._previous, {}
        for number, handler in previous.items():
            signal.signal(number, handler)

    @contextlib.contextmanager
    def deferred(self):
        """Hold a stop signal until the block ends, then raise it as :class:`Interrupted`."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if self.held is not None and self._depth == 0:
            signum, self.held = self.held, None
            raise Interrupted(signum)

    def _first(self, signum, frame) -> None:
        for number in STOP_SIGNALS:
            signal.signal(number, self._again)
        if self._depth:
            self.held = signum  # raised when the grade being recorded is recorded
            return
        raise Interrupted(signum)

    @staticmethod
    def _again(signum, frame) -> None:
        os._exit(128 + signum)  # workers die with us (PR_SET_PDEATHSIG); the state is committed


# ------------------------------------------------------------------ command line


def register_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "batch",
        help="grade a folder of submissions in parallel (resumable)",
        description="Grade every notebook in SUBMISSIONS: SUBMISSIONS/<learner>.ipynb, "
        "SUBMISSIONS/<learner>/<name>.ipynb (GitHub Classroom, LMS downloads) or nbgrader's "
        "SUBMISSIONS/<learner>/<assignment>/<name>.ipynb. Run it again to grade only what changed "
        "(a notebook, or an assignment's hidden suite, reference, limits, or the engine).",
    )
    p.add_argument("submissions", metavar="SUBMISSIONS")
    p.add_argument("--out", required=True, metavar="DIR", help="reports, gradebook.csv, plots and the batch state")
    p.add_argument(
        "--assignment",
        help="only this assignment's submissions (a flat folder of <learner>.ipynb is "
        "graded as this assignment; default: detected per notebook)",
    )
    p.add_argument("--only", metavar="LEARNER[,...]", help="only these learners (comma-separated)")
    p.add_argument("--force", action="store_true", help="grade again even submissions whose grade is current")
    p.add_argument("--workers", type=int, metavar="N", help="local worker processes (default: number of cores)")
    p.add_argument(
        "--dask",
        metavar="ADDRESS|local:N",
        help="run on a Dask cluster: a scheduler address, or local:N for N local worker processes",
    )
    p.add_argument(
        "--task-timeout",
        type=float,
        metavar="SECONDS",
        help="stop a submission's grading after this long (default: 3x the assignment's "
        "submission_timeout + 300 s; the engine's own limits normally act first)",
    )
    p.add_argument(
        "--late-policy",
        metavar="TOML",
        help="deadlines, grace period and penalty per assignment (see autograder/batch/late.py)",
    )
    p.add_argument(
        "--submission-times",
        metavar="CSV",
        help="learner,[assignment,]submitted_at per submission (default: nbgrader's timestamp.txt "
        "beside the notebook, else the file's modification time)",
    )
    p.set_defaults(func=cmd_batch)


def cmd_batch(args) -> int:
    if args.workers is not None and args.workers < 1:
        print("dlgrade batch: --workers must be at least 1", file=sys.stderr)
        return 2
    only = [name.strip() for name in args.only.split(",") if name.strip()] if args.only else None
    if args.only is not None and not only:
        print("dlgrade batch: --only needs at least one learner name", file=sys.stderr)
        return 2
    try:
        lateness = None
        if args.submission_times and not args.late_policy:
            raise BatchError("--submission-times needs --late-policy (the deadlines to compare them with)")
        if args.late_policy:
            times = late.read_times_csv(args.submission_times) if args.submission_times else {}
            lateness = late.Lateness(late.load_policy(args.late_policy), times, Path(args.submissions))
        summary = run_batch(
            args.submissions,
            args.out,
            assignment=args.assignment,
            workers=args.workers,
            dask=args.dask,
            task_timeout=args.task_timeout,
            force=args.force,
            only=only,
            lateness=lateness,
            stop_on_signals=True,
        )
    except (BatchError, late.LatePolicyError) as exc:
        print(f"dlgrade batch: {exc}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        name = signal.Signals(exc.signum).name
        kept = (
            f"The {exc.summary.graded} grade(s) finished in this run are saved in {args.out}; "
            f"{exc.remaining} submission(s) were not graded yet"
            if exc.summary
            else f"Every grade finished before it is saved in {args.out}"
        )
        print(
            f"\ndlgrade batch: stopped by {name}; workers and sandboxes stopped. {kept}. "
            "Run the same command again to go on.",
            file=sys.stderr,
        )
        return 128 + exc.signum
    print()
    print(gradebook.score_table(summary.grades))
    print()
    print(
        f"{summary.graded} graded now, {summary.kept} unchanged since the last run, "
        f"{summary.failed} could not be graded (their reason is in the table and in feedback.md)."
    )
    if summary.skipped:
        print(f"{len(summary.skipped)} file(s) skipped, listed with the reason in {summary.out / SKIPPED_FILE}")
    print(
        f"Gradebooks: {summary.out / 'gradebook.csv'}, {summary.out / 'gradebooks'}/<assignment>.csv, "
        f"{summary.out / 'course-summary.csv'}, {summary.out / 'canvas-gradebook.csv'}   "
        f"plots: {summary.out / 'plots'}/   per learner: {summary.out}/<learner>/<assignment>/feedback.md"
    )
    print(f"Course page: {(summary.out / gradebook.COURSE_PAGE).resolve().as_uri()}")
    if summary.grader_failures:
        print(
            f"dlgrade batch: the grader failed on {summary.grader_failures} submission(s): not the learners' "
            f"fault; tracebacks in {summary.out / ERRORS_LOG}",
            file=sys.stderr,
        )
        return 3
    return 0
