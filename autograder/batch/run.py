"""``dlgrade batch``: grade a folder of submissions in parallel, resumably.

    dlgrade batch SUBMISSIONS --out DIR [--assignment NAME] [--workers N] [--dask ADDRESS|local:N]

Writes DIR/<learner>/<assignment>/{results.json,junit.xml,feedback.md},
DIR/gradebook.csv, DIR/plots/<assignment>-{scores,pass-rate}.png and keeps its
state in DIR/batch-state.sqlite: run it again (after a crash, a kill, or new
submissions) and only new or changed notebooks are graded.

Exit status: 0 when every submission got a result (a notebook that could not be
graded gets a zero and its reason, which is a result); 2 when the batch itself
could not run (no such folder, unknown assignment, scheduler unreachable, ...).
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from autograder.batch import gradebook, pool
from autograder.batch.discovery import Discovery, SubmissionsError, discover
from autograder.batch.state import GradeState, StateError
from autograder.grading import catalogue
from autograder.grading.reports import results_json, write_reports

STATE_FILE = "batch-state.sqlite"
LOCK_FILE = ".batch.lock"
ERRORS_LOG = "batch-errors.log"      # grader tracebacks: for staff, never in a learner's report
UNKNOWN = "unknown"                  # assignment label of a notebook nobody can identify
REPORT_FILES = ("results.json", "junit.xml", "feedback.md")


class BatchError(Exception):
    """The batch cannot run at all; ``str()`` says why."""


@dataclass
class BatchSummary:
    out: Path
    graded: int = 0                  # graded in this run
    kept: int = 0                    # already graded, file unchanged
    failed: int = 0                  # of this run's submissions, those that could not be graded
    grades: list = field(default_factory=list)   # state.Grade of every submission in this run
    warnings: list = field(default_factory=list)


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_timeout(label: str) -> float:
    """Last-resort limit per submission: far above what the engine's own limits allow."""
    seconds = catalogue.load(label).config.submission_timeout if label in catalogue.names() else 600.0
    return 3 * seconds + 300


def detect_label(path: Path) -> str:
    """Which assignment a notebook is, read from its JSON only (nothing of it runs here)."""
    from autograder.grading.grade import resolve_assignment
    from autograder.grading.notebook import read_notebook

    try:
        nb, _ = read_notebook(path)
        return resolve_assignment(nb, None)
    except Exception:  # unreadable or unidentifiable: grade_notebook will explain why
        return UNKNOWN


def plan(discovery: Discovery, state: GradeState, assignment: str | None, task_timeout: float | None):
    """Split the submissions into (jobs to grade, grades to keep, unreadable files' results, warnings)."""
    known = catalogue.names()
    jobs, kept, unreadable, warnings = [], [], [], list(discovery.warnings)
    taken = {}   # (learner, assignment) -> source: one submission per learner and assignment
    for sub in discovery.submissions:
        folder = sub.folder_assignment
        if assignment and folder in known and folder != assignment:
            continue  # another assignment's folder (nbgrader layout)
        try:
            data = sub.path.read_bytes()
        except OSError as exc:
            label = assignment or (folder if folder in known else UNKNOWN)
            unreadable.append((sub, label, f"cannot read {sub.source}: {exc.strerror}"))
            continue
        sha256 = hashlib.sha256(data).hexdigest()
        previous = state.find(sub.source)
        if previous is not None and previous.sha256 == sha256:
            label = previous.assignment
        else:
            previous = None
            label = assignment or (folder if folder in known else detect_label(sub.path))
        key = (sub.learner, label)
        if key in taken:
            warnings.append(f"{sub.learner} has two notebooks for {label} ({taken[key]} and {sub.source}); "
                            f"graded {taken[key]} only")
            continue
        taken[key] = sub.source
        if previous is not None:
            kept.append(previous)
            continue
        jobs.append(pool.Job(
            learner=sub.learner, assignment=label, grade_as=label if label in known else None,
            name=sub.path.name, data=data, source=sub.source, sha256=sha256,
            timeout=task_timeout or default_timeout(label),
        ))
    return jobs, kept, unreadable, warnings


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


def run_batch(submissions, out, assignment: str | None = None, workers: int | None = None,
              dask: str | None = None, task_timeout: float | None = None,
              grade: pool.GradeFunction = pool.grade_submission, progress: bool | None = None,
              log=print) -> BatchSummary:
    """Grade every new or changed submission, then regenerate the gradebook and plots."""
    if assignment is not None and assignment not in catalogue.names():
        raise BatchError(str(catalogue.unknown_assignment(assignment)))
    if dask is not None:
        dask = _check_dask_address(dask)
    try:
        discovery = discover(Path(submissions))
    except SubmissionsError as exc:
        raise BatchError(str(exc)) from exc
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BatchError(f"cannot create {out}: {exc.strerror}") from exc
    lock = _Lock(out)
    try:
        with GradeState(out / STATE_FILE) as state:
            return _run(discovery, state, out, assignment, workers, dask, task_timeout, grade, progress, log,
                        Path(submissions))
    except StateError as exc:
        raise BatchError(str(exc)) from exc
    finally:
        lock.release()


def _run(discovery, state, out, assignment, workers, dask, task_timeout, grade, progress, log, root) -> BatchSummary:
    from tqdm import tqdm

    jobs, kept, unreadable, warnings = plan(discovery, state, assignment, task_timeout)
    summary = BatchSummary(out=out, kept=len(kept), warnings=warnings)
    workers = workers or default_workers()
    total = len(jobs) + len(kept) + len(unreadable)
    where = f"Dask ({dask})" if dask else f"{min(workers, len(jobs)) or 1} worker process(es)"
    log(f"{total} submission(s) in {root} ({discovery.layout} layout): "
        f"{len(kept)} already graded, {len(jobs) + len(unreadable)} to grade"
        + (f" with {where}" if jobs else ""))
    for warning in warnings:
        log(f"warning: {warning}", file=sys.stderr)

    keys = [(g.learner, g.assignment) for g in kept]
    # progress None: a bar only on a terminal (tqdm's disable=None); True: always; False: never.
    bar = None if progress is False else tqdm(total=len(jobs) + len(unreadable), unit="nb", desc="grading",
                                               disable=None if progress is None else False, dynamic_ncols=True)
    failed = 0

    def on_done(job: pool.Job, result: dict) -> None:
        nonlocal failed
        traceback_text = result.pop("_traceback", None)
        if traceback_text:
            with open(out / ERRORS_LOG, "a", encoding="utf-8") as handle:
                handle.write(f"--- {job.source} ({job.learner}, {job.assignment})\n{traceback_text}\n")
        # State first: it is the record. Reports are rewritten from it if we die in between.
        replaced = state.record(job.learner, job.assignment, job.source, job.sha256, result)
        for learner, label in replaced:
            _remove_reports(out, learner, label)
        write_reports(result, out / job.learner / job.assignment)
        keys.append((job.learner, job.assignment))
        summary.graded += 1
        if gradebook.problem(result):
            failed += 1
            if bar is not None:
                bar.write(f"{job.learner} / {job.assignment}: not graded: {gradebook.problem(result)[:200]}",
                          file=sys.stderr)
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"done {bar.n}, failed {failed}, remaining {bar.total - bar.n}")

    try:
        for sub, label, reason in unreadable:
            job = pool.Job(sub.learner, label, None, sub.path.name, b"", sub.source, "", 0)
            on_done(job, pool.failed_result(sub.path.name, label, reason))
        if jobs and dask:
            try:
                pool.run_dask(jobs, dask, on_done, grade)
            except (OSError, TimeoutError) as exc:
                raise BatchError(f"cannot use the Dask cluster at {dask}: {exc}") from exc
        elif jobs:
            pool.run_local(jobs, workers, on_done, grade)
    finally:
        if bar is not None:
            bar.close()

    grades = state.grades()
    _restore_reports(out, grades)
    gradebook.write_gradebook(grades, out / "gradebook.csv")
    gradebook.write_plots(grades, out / "plots")
    wanted = set(keys)
    summary.grades = [g for g in grades if (g.learner, g.assignment) in wanted]
    summary.failed = sum(1 for g in summary.grades if gradebook.problem(g.result))
    return summary


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


# ------------------------------------------------------------------ command line

def register_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "batch", help="grade a folder of submissions in parallel (resumable)",
        description="Grade every notebook in SUBMISSIONS (SUBMISSIONS/<learner>.ipynb, or nbgrader's "
                    "SUBMISSIONS/<learner>/<assignment>/<name>.ipynb). Run it again to grade only new or "
                    "changed notebooks.")
    p.add_argument("submissions", metavar="SUBMISSIONS")
    p.add_argument("--out", required=True, metavar="DIR", help="reports, gradebook.csv, plots and the batch state")
    p.add_argument("--assignment", help="grade as this assignment (default: detected per notebook)")
    p.add_argument("--workers", type=int, metavar="N", help="local worker processes (default: number of cores)")
    p.add_argument("--dask", metavar="ADDRESS|local:N",
                   help="run on a Dask cluster: a scheduler address, or local:N for N local worker processes")
    p.add_argument("--task-timeout", type=float, metavar="SECONDS",
                   help="stop a submission's grading after this long (default: 3x the assignment's "
                        "submission_timeout + 300 s; the engine's own limits normally act first)")
    p.set_defaults(func=cmd_batch)


def cmd_batch(args) -> int:
    if args.workers is not None and args.workers < 1:
        print("dlgrade batch: --workers must be at least 1", file=sys.stderr)
        return 2
    try:
        summary = run_batch(args.submissions, args.out, args.assignment, args.workers, args.dask, args.task_timeout)
    except BatchError as exc:
        print(f"dlgrade batch: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ndlgrade batch: interrupted; every grade finished so far is saved in {args.out}. "
              "Run the same command again to go on.", file=sys.stderr)
        return 130
    print()
    print(gradebook.score_table(summary.grades))
    print()
    print(f"{summary.graded} graded now, {summary.kept} unchanged since the last run, "
          f"{summary.failed} could not be graded (their reason is in the table and in feedback.md).")
    print(f"Gradebook: {summary.out / 'gradebook.csv'}   plots: {summary.out / 'plots'}/   "
          f"per learner: {summary.out}/<learner>/<assignment>/feedback.md")
    return 0
