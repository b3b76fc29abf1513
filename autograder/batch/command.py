"""``dlgrade batch``: the command line (arguments, messages, exit status) over :func:`run.run_batch`.

    dlgrade batch SUBMISSIONS --out DIR [--assignment NAME] [--only LEARNER,...] [--force]
                  [--workers N] [--dask ADDRESS|local:N]
                  [--late-policy TOML [--times CSV] [--times-from mtime|timestamp-file]]
                  [--roster CSV]

Exit status: 0 when every submission got a result (a notebook that could not be
graded gets a zero and its reason, which is a result); 1 when every submission got
a result but some rows need a look (a learner not on the roster, another
assignment's notebook, a notebook whose learner name was refused); 2 when the batch
itself could not run (no such folder, unknown assignment, bad roster, scheduler
unreachable, ...); 3 when the grader failed on a submission (batch-errors.log has
the traceback); 128+N when stopped by signal N (every grade finished before it is kept).
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from autograder.batch import course_page, gradebook, late, ledger, roster
from autograder.batch.names import LEARNERS_DIR
from autograder.batch.run import ERRORS_LOG, SKIPPED_FILE, BatchError, run_batch
from autograder.batch.signals import Interrupted
from autograder.grading.reports import clean_text


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
        help="deadlines, grace period, penalty per assignment and per-learner [extensions] (docs/LATE_POLICY.md)",
    )
    p.add_argument(
        "--times",
        "--submission-times",
        dest="times",
        metavar="CSV",
        help="the staff's submission times: learner,assignment,submitted_at (ISO 8601 with its offset; an "
        "empty assignment means every one). Without it, only nbgrader's submitted/ tree gives times",
    )
    p.add_argument(
        "--times-from",
        choices=late.TIMES_FROM,
        help="also accept times a learner can set: mtime (the file's modification time, which copying or "
        "cloning changes) or timestamp-file (a timestamp.txt beside the notebook)",
    )
    p.add_argument(
        "--roster",
        metavar="CSV",
        help="who should submit: learner,name,email,sis_user_id,canvas_user_id,sis_login_id,section (only "
        "learner is required), nbgrader's student CSV or a Canvas gradebook export; every roster learner "
        "gets a row per assignment (missing when nothing was submitted) and canvas-gradebook.csv their ids",
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
        if (args.times or args.times_from) and not args.late_policy:
            given = "--times" if args.times else "--times-from"
            raise BatchError(f"{given} needs --late-policy (the deadlines to compare them with)")
        if args.late_policy:
            policy = late.load_policy(args.late_policy)
            times = late.read_times_csv(args.times) if args.times else {}
            lateness = late.Lateness(policy, times, Path(args.submissions), args.times_from)
        people = roster.load_roster(args.roster) if args.roster else None
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
            roster=people,
            stop_on_signals=True,
        )
    except (BatchError, late.LatePolicyError, roster.RosterError) as exc:
        print(f"dlgrade batch: {clean_text(exc, one_line=True)}", file=sys.stderr)
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
    look = _needs_a_look(summary)
    if summary.course is not None and summary.course.rows:
        course = summary.course
        who = f"{len(course.roster.people)} on the roster" if course.roster is not None else "found"
        print(
            f"Course: {len(course.rows)} row(s), {len(course.learners())} learner(s) ({who}) x "
            f"{len(course.assignments)} assignment(s): {course.summary_line()}."
        )
    if summary.skipped:
        print(f"{len(summary.skipped)} file(s) skipped, listed with the reason in {summary.out / SKIPPED_FILE}")
    print(
        f"Gradebooks: {summary.out / 'gradebook.csv'}, {summary.out / 'gradebooks'}/<assignment>.csv, "
        f"{summary.out / 'course-summary.csv'}, {summary.out / 'canvas-gradebook.csv'}   "
        f"plots: {summary.out / 'plots'}/   per learner: {summary.out / LEARNERS_DIR}/<learner>/<assignment>/feedback.md"
    )
    print(f"Course page: {(summary.out / course_page.COURSE_PAGE).resolve().as_uri()}")
    if lateness is not None and lateness.unknown_message():
        print(f"dlgrade batch: {clean_text(lateness.unknown_message(), one_line=True)}", file=sys.stderr)
    if summary.grader_failures:
        print(
            f"dlgrade batch: the grader failed on {summary.grader_failures} submission(s): not the learners' "
            f"fault; tracebacks in {summary.out / ERRORS_LOG}",
            file=sys.stderr,
        )
        return 3
    if look:
        print(f"dlgrade batch: needs a look: {clean_text('; '.join(look), one_line=True)}", file=sys.stderr)
        return 1
    return 0


def _needs_a_look(summary) -> list:
    """What staff should look at although everything got a result (exit status 1), in words."""
    found = []
    if summary.course is not None:
        counts = summary.course.counts()
        rows = summary.course.needs_a_look()
        for state in ledger.NEEDS_A_LOOK:
            mine = [row for row in rows if row.state == state]
            if mine:
                shown = ", ".join(f"{row.learner} / {row.assignment}" for row in mine[:3])
                more = f" and {len(mine) - 3} more" if len(mine) > 3 else ""
                found.append(f"{counts[state]} {state} ({shown}{more}; see gradebook.csv)")
    refused = sum(1 for _, why in summary.skipped if why.startswith("learner name refused"))
    if refused:
        found.append(f"{refused} notebook(s) or folder(s) whose learner name was refused (see skipped.txt)")
    return found
