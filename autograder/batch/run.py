"""Grading a folder of submissions in parallel, resumably: :func:`run_batch` and the loop that
records each grade (the command line is command.py).

Writes DIR/learners/<learner>/<assignment>/{results.json,junit.xml,feedback.md,feedback.html}
(names.py: no learner name can collide with the course's files), DIR/gradebook.csv and the other
gradebooks, DIR/index.html, DIR/plots/<assignment>-{scores,pass-rate}.png, DIR/skipped.txt (one line
per file that was not graded, and why) and keeps its state in
DIR/batch-state.sqlite: run it again (after a crash, a kill, or new submissions)
and only what changed is graded: a new or changed notebook, or every notebook of
an assignment whose hidden suite, reference solution or limits changed, or all
of them when the grading engine changed. The batch says why it regrades.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import os
import signal
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from autograder.batch import course_page, dask_pool, gradebook, late, ledger, plots, pool
from autograder.batch.discovery import Discovery, SubmissionsError, discover
from autograder.batch.names import learner_folder, name_problem
from autograder.batch.plan import plan
from autograder.batch.progress import Progress
from autograder.batch.roster import Roster
from autograder.batch.signals import Interrupted, StopSignals
from autograder.batch.state import GradeState, Inputs, StateError
from autograder.grading import catalogue
from autograder.grading.reports import REPORT_FILES, atomic_write, clean_text, results_json, write_reports
from autograder.grading.results import as_result

STATE_FILE = "batch-state.sqlite"
LOCK_FILE = ".batch.lock"
ERRORS_LOG = "batch-errors.log"  # grader tracebacks: for staff, never in a learner's report
SKIPPED_FILE = "skipped.txt"
PLOTS_DRAWN = "plots_drawn_for"  # state meta key: the grades the plots show


class BatchError(Exception):
    """The batch cannot run at all; ``str()`` says why."""


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
    course: ledger.Ledger | None = None  # every learner x assignment row (ledger.py), as the gradebooks show


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
    roster: Roster | None = None  # who should have submitted, and their LMS ids


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


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
    roster: Roster | None = None,
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
    ``roster``: a roster.Roster: one row per roster learner and assignment, submitted or not (ledger.py);
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
            log=_one_line_log(log),
            lateness=lateness,
            roster=roster,
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


def _one_line_log(log: Callable) -> Callable:
    """``log``, each message on one line: the names it quotes (learners', files') come from the
    submissions folder, so their control characters are shown escaped (clean_text, one_line)."""

    def one_line(*args, **kwargs):
        log(*(clean_text(arg, one_line=True) for arg in args), **kwargs)

    return one_line


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
    not_graded = len(unreadable) + len(work.wrong)  # recorded with a zero and why, never sent to a worker
    summary = BatchSummary(out=out, kept=len(kept), warnings=work.warnings, reasons=work.reasons, skipped=work.skipped)
    total = len(jobs) + len(kept) + not_graded
    where = f"Dask ({options.dask})" if options.dask else f"{min(options.workers, len(jobs)) or 1} worker process(es)"
    log(
        f"{total} submission(s) in {options.root} ({discovery.layout} layout): "
        f"{len(kept)} already graded, {len(jobs) + not_graded} to grade" + (f" with {where}" if jobs else "")
    )
    if work.reasons:
        log(f"grading because: {_reason_text(work.reasons)}")
    for warning in summary.warnings:
        log(f"warning: {warning}", file=sys.stderr)
    _write_skipped(out / SKIPPED_FILE, summary.skipped)

    keys = [(g.learner, g.assignment) for g in kept]
    weights = {job.source: work.expected.get(job.assignment, 1.0) for job in jobs}
    mean = sum(weights.values()) / len(weights) if weights else 1.0
    bar = (
        None
        if options.progress is False
        else Progress(len(jobs) + not_graded, options.progress, sum(weights.values()) + 0.01 * not_graded * mean)
    )

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
            header = clean_text(f"--- {job.source} ({job.learner}, {job.assignment})", one_line=True)
            with open(out / ERRORS_LOG, "a", encoding="utf-8") as handle:
                handle.write(f"{header}\n{clean_text(result.staff_traceback)}\n")
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
            with_lateness(job.learner, job.assignment, job.source, result),
            learner_folder(out, job.learner, job.assignment),
        )
        keys.append((job.learner, job.assignment))
        summary.graded += 1
        why = gradebook.problem(result)
        if why and bar is not None:
            bar.note(f"{job.learner} / {job.assignment}: not graded: {why[:200]}")
        if bar is not None:
            bar.update(bool(why), weights.get(job.source, 0.01 * mean))

    try:
        for sub, label, reason in unreadable:
            job = pool.Job.not_graded(learner=sub.learner, assignment=label, name=sub.path.name, source=sub.source)
            on_done(job, pool.failed_result(sub.path.name, label, reason))
        for sub, label, other in work.wrong:
            job = pool.Job.not_graded(learner=sub.learner, assignment=label, name=sub.path.name, source=sub.source)
            on_done(job, pool.wrong_assignment_result(sub.path.name, label, other))
        if jobs and options.dask:
            try:
                dask_pool.run_dask(jobs, options.dask, on_done, options.grade)
            except (OSError, TimeoutError) as exc:
                raise BatchError(f"cannot use the Dask cluster at {options.dask}: {exc}") from exc
        elif jobs:
            pool.run_local(jobs, options.workers, on_done, options.grade)
    except KeyboardInterrupt as exc:  # Ctrl-C, or a stop signal (see StopSignals)
        stopped = exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)
        stopped.summary, stopped.remaining = summary, len(jobs) + not_graded - summary.graded
        raise stopped from None
    finally:
        if bar is not None:
            bar.close()

    grades = []
    for g in state.grades():
        why = name_problem(g.learner) or name_problem(g.assignment)
        if why:  # recorded by a dlgrade that took any name: not written anywhere now
            log(f"warning: the state's grade of {g.learner} / {g.assignment} is left out ({why})", file=sys.stderr)
            continue
        grades.append(dataclasses.replace(g, result=with_lateness(g.learner, g.assignment, g.source, g.result)))
    _restore_reports(out, grades)
    summary.course = _course(options, discovery, grades)
    gradebook.write_gradebooks(grades, out, summary.course)
    course_page.write_course_page(grades, out, summary.course)
    # Plots take seconds to draw: only when the grades they show changed (or were never drawn).
    drawn_for = _grades_digest(grades)
    if summary.changed or state.get_meta(PLOTS_DRAWN) != drawn_for:
        plots.write_plots(grades, out / "plots")
        state.set_meta(PLOTS_DRAWN, drawn_for)
        summary.changed = True
    wanted = set(keys)
    summary.grades = [g for g in grades if (g.learner, g.assignment) in wanted]
    summary.failed = sum(1 for g in summary.grades if gradebook.problem(g.result))
    summary.grader_failures = sum(1 for g in summary.grades if as_result(g.result).grader_error)
    return summary


def _course(options: BatchOptions, discovery: Discovery, grades: list) -> ledger.Ledger:
    """Every learner x assignment row: the roster's learners and every learner folder found, the
    assignments graded, asked for or given a deadline (ledger.py)."""
    expected = [options.assignment] if options.assignment else []
    lateness = options.lateness
    if lateness is not None:
        expected += lateness.assignments()
    found = discovery.learners if options.only is None else discovery.learners & options.only
    return ledger.build(
        grades,
        roster=options.roster,
        found=found,
        assignments=expected,
        deadlines=lateness.deadline if lateness is not None else None,
    )


def _grades_digest(grades: list) -> str:
    # The score too: a changed late policy changes it without a regrade.
    text = "\n".join(
        f"{g.learner}\0{g.assignment}\0{g.sha256}\0{g.graded_at}\0{as_result(g.result).score}" for g in grades
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _write_skipped(path: Path, skipped: list) -> None:
    """One line per skipped file: its path, a tab, the reason (control characters in either escaped)."""
    lines = [f"{clean_text(source, one_line=True)}\t{clean_text(reason, one_line=True)}" for source, reason in skipped]
    atomic_write(path, "".join(line + "\n" for line in lines))


def _check_dask_address(address: str) -> str:
    if address.startswith("local:"):
        count = address.split(":", 1)[1]
        if not count.isdigit() or int(count) < 1:
            raise BatchError(f"--dask {address}: expected local:N with N worker processes, e.g. local:4")
    return address


def _remove_reports(out: Path, learner: str, label: str) -> None:
    if name_problem(learner) or name_problem(label):
        return  # never written (a name refused now, recorded by an older dlgrade)
    folder = learner_folder(out, learner, label)
    for name in REPORT_FILES:
        (folder / name).unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        pass


def _restore_reports(out: Path, grades: list) -> None:
    """Rewrite any per-learner report that is missing or older than the state (a kill between the two)."""
    for grade in grades:
        folder = learner_folder(out, grade.learner, grade.assignment)
        try:
            current = (folder / "results.json").read_text(encoding="utf-8")
        except OSError:
            current = None
        if current != results_json(grade.result) or not all((folder / n).exists() for n in REPORT_FILES):
            write_reports(grade.result, folder)
