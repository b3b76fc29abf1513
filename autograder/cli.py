"""dlgrade: grade the deep-learning course's Jupyter notebooks function by function,
with the learner's code in a sandbox.

Exit status (every command):
  0  done: the score reached --min-score, the checks passed
  1  done, but below what was asked: the score is below --min-score, a public
     test failed (check), a solution is not full marks (validate), a solution
     notebook failed to run (execute-solutions)
  2  usage error or unreadable input: bad options, unknown assignment, no such
     file, a folder or a non-notebook where a notebook was expected, a damaged
     notebook, a notebook that is a symbolic link, a fifo, a device or a socket
     (never followed or read) or over the size limit, --min-score above the maximum
  3  the grader itself failed (a hidden suite that does not run, a bug in dlgrade), or
     refused to grade: without bubblewrap the learner's uid could read the suites,
     solutions, submissions or outputs (see --accept-unisolated)
  128+N  stopped by signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP); dlgrade batch
     keeps every grade finished before the signal
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from autograder.grading import catalogue

OK, BELOW, USAGE, GRADER_FAILURE = 0, 1, 2, 3


class UsageError(Exception):
    """Bad command line or unusable input: exit 2 with ``str()`` as the message."""


def cmd_release(args) -> int:
    from autograder.course import release

    for name in args.names or catalogue.names():
        print(f"released {release.release(name).relative_to(catalogue.root())}")
    return OK


def notebook_argument(text: str) -> Path:
    """The notebook a command was given, or a UsageError that says what is wrong with it."""
    path = Path(text)
    if path.is_symlink():
        return path  # never followed: refused by its reading, with a zero report (exit 2)
    if not path.exists():
        raise UsageError(f"{text}: no such file")
    if path.is_dir():
        raise UsageError(
            f"{text} is a folder, not a notebook: give the .ipynb file in it "
            "(or grade the whole folder with dlgrade batch)"
        )
    if path.suffix == ".py":
        raise UsageError(
            f"{text} is a Python file, not a notebook: submit the .ipynb file "
            "(in Jupyter: File > Save, then the .ipynb next to it)"
        )
    return path


def min_score_argument(text: str):
    """``8`` or ``80%``: returns (value, is_percentage)."""
    percent = text.strip().endswith("%")
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of points (8) or a percentage (80%), not {text!r}")
    if value < 0 or (percent and value > 100):
        raise argparse.ArgumentTypeError(f"{text} is out of range")
    return value, percent


def required_points(min_score, max_score: float, assignment: str | None) -> float | None:
    if min_score is None:
        return None
    value, percent = min_score
    points = value * max_score / 100 if percent else value
    if not percent and max_score and points > max_score:
        raise UsageError(
            f"--min-score {value:g} is above the maximum of {assignment or 'this assignment'} "
            f"({max_score:g}): no submission could reach it"
        )
    return points


def cmd_grade(args) -> int:
    from autograder.grading.grade import grade_notebook
    from autograder.grading.reports import clean_text, results_json, write_reports

    notebook = notebook_argument(args.notebook)
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise UsageError(
            f"--out {args.out} is a file; give a folder (results.json, junit.xml, "
            "feedback.md and feedback.html are written in it)"
        )
    result = grade_notebook(notebook, args.assignment)
    if out is not None:
        try:
            write_reports(result, out)
        except OSError as exc:
            raise UsageError(f"cannot write the reports to {args.out}: {exc.strerror or exc}")
    if args.json:
        sys.stdout.write(results_json(result))
    else:
        print_summary(result)
        if out is not None:
            print(f"reports written to {args.out}/ (results.json, junit.xml, feedback.md, feedback.html)")
    if result.grader_error:
        print(
            "dlgrade grade: the grader failed on part of this submission (see the failed checks); "
            "this is not the learner's fault",
            file=sys.stderr,
        )
        return GRADER_FAILURE
    if result.unreadable:  # could not be read at all: the score above is 0 with the reason
        print(f"dlgrade grade: {clean_text(result.error)}", file=sys.stderr)
        return USAGE
    minimum = required_points(args.min_score, result.max_score, result.assignment)
    if minimum is not None and result.score < minimum:
        # On stderr, like every reason for a non-zero exit: with --json stdout stays one JSON document.
        print(f"dlgrade grade: score {result.score:g} is below the required {minimum:g}", file=sys.stderr)
        return BELOW
    return OK


def print_summary(result) -> None:
    from autograder.grading.reports import terminal_summary

    print(terminal_summary(result))


def cmd_check(args) -> int:
    from autograder.course.public import run_public_tests
    from autograder.grading.grade import resolve_assignment
    from autograder.grading.notebook import NotebookError, read_notebook

    notebook = notebook_argument(args.notebook)
    try:
        resolve_assignment(read_notebook(notebook)[0], args.assignment)
    except NotebookError as exc:
        raise UsageError(f"cannot check {args.notebook}: {exc}")
    return OK if run_public_tests(notebook, args.assignment) else BELOW


def cmd_validate(args) -> int:
    from autograder.course.validate import validate

    failed = False
    for name in args.names or catalogue.names():
        catalogue.load(name)  # an unknown name is a usage error before anything runs
        problems = validate(name, mutants=args.mutants)
        print(f"{name}: {'ok' if not problems else 'FAILED'}")
        for problem in problems:
            print(f"  - {problem}")
        failed |= bool(problems)
    return BELOW if failed else OK


def cmd_execute_solutions(args) -> int:
    from nbclient.exceptions import CellExecutionError

    from autograder.course.execute import execute_solution

    names = args.names or catalogue.names()
    for name in names:
        catalogue.load(name)
    failed = False
    for name in names:
        try:
            seconds = execute_solution(name, timeout=args.timeout)
        except CellExecutionError as exc:
            print(f"solutions/{name}.ipynb failed to run: {str(exc).strip().splitlines()[-1][:300]}")
            failed = True
            continue
        print(f"executed solutions/{name}.ipynb in {seconds:.0f} s")
    return BELOW if failed else OK


def cmd_new(args) -> int:
    from autograder.course import scaffold

    try:
        if args.function:
            written = scaffold.add_function(
                args.name, args.function, args.args, args.points, execute=not args.no_execute
            )
        else:
            functions = [(f, args.args) for f in args.functions.split(",") if f] if args.functions else ()
            written = scaffold.new_assignment(
                args.name, args.title, functions, args.points, execute=not args.no_execute
            )
    except scaffold.ScaffoldError as exc:
        print(f"dlgrade new: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path.relative_to(catalogue.root()) if path.is_relative_to(catalogue.root()) else path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from autograder import __version__
    from autograder.batch.state import engine_version

    summary, _, exit_codes = __doc__.partition("\n\n")
    parser = argparse.ArgumentParser(
        prog="dlgrade", description=summary, epilog=exit_codes, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"dlgrade {__version__} (engine {engine_version()})")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("release", help="regenerate assignments/ from solutions/")
    p.add_argument("names", nargs="*")
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("grade", help="grade one submitted notebook")
    p.add_argument("notebook")
    p.add_argument("--assignment", help="assignment name (default: detected from the notebook)")
    p.add_argument("--out", help="write results.json, junit.xml, feedback.md and feedback.html in this folder")
    p.add_argument("--json", action="store_true", help="print results.json on stdout")
    p.add_argument(
        "--min-score",
        type=min_score_argument,
        metavar="POINTS|PERCENT%",
        help="exit 1 when the score is below this (8 points, or 80%% of the maximum)",
    )
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("check", help="run the public tests on a notebook (what learners see)")
    p.add_argument("notebook")
    p.add_argument("--assignment")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("validate", help="solutions get full marks, released stubs get zero")
    p.add_argument("names", nargs="*")
    p.add_argument(
        "--mutants",
        action="store_true",
        help="also grade the planted bugs of suites/NAME/mutants.py: each must cost points of its own "
        "function(s) only, and be caught by the hidden suite whenever a public test rejects it",
    )
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("execute-solutions", help="run the solution notebooks and store their outputs")
    p.add_argument("names", nargs="*")
    p.add_argument("--timeout", type=int, default=1800)
    p.set_defaults(func=cmd_execute_solutions)

    p = sub.add_parser("new", help="scaffold a new assignment, or add a graded function to one")
    p.add_argument("name")
    p.add_argument("--title", help="the notebook's title (default: from the name)")
    p.add_argument("--functions", help="comma-separated graded functions of a new assignment")
    p.add_argument("--function", help="add this graded function to an existing assignment")
    p.add_argument("--args", default="x", help='the graded functions\' arguments, e.g. "x, gamma, beta"')
    p.add_argument("--points", type=float, default=1, help="points of each new graded function")
    p.add_argument(
        "--no-execute",
        action="store_true",
        help="do not run the solution afterwards (then run `dlgrade execute-solutions NAME` before validate)",
    )
    p.set_defaults(func=cmd_new)

    # Batch grading lives in its own module; it adds its own sub-command.
    from autograder.batch.command import register_cli as register_batch

    register_batch(sub)
    # The course service (autograder/service/): its own sub-command.
    from autograder.service.command import register_cli as register_serve

    register_serve(sub)
    # The learner's side of dlgrade serve: hand in a notebook (standard library only; released as dlgrade_submit.py).
    from autograder.service.client import add_submit_parser

    add_submit_parser(sub)
    for name in ISOLATION_CHECKED:
        sub.choices[name].add_argument(
            "--accept-unisolated",
            action="store_true",
            help="grade even when the learner's uid could read the suites, solutions or submissions (setpriv "
            "sandbox without bubblewrap); every report then says so",
        )
    return parser


# Commands that run learner code, and the paths (besides suites and solutions) its uid must not read.
ISOLATION_CHECKED = {
    "grade": ("notebook", "out"),
    "check": ("notebook",),
    "batch": ("submissions", "out"),
    "serve": ("course",),
}


def check_isolation(args) -> str | None:
    """Under setpriv: refuse (IsolationRefused) unless the learner's uid cannot read what it must not.

    Here, in the process that starts the run, the submissions and the outputs are checked too,
    before anything is written; grade.grade_notebook checks the suites and solutions again in
    each process that grades. Returns what --accept-unisolated accepted (None: nothing to accept)."""
    from autograder.sandbox import isolation

    if args.command not in ISOLATION_CHECKED:
        return None
    paths = [catalogue.SUITES_DIR, catalogue.root() / "solutions"]
    paths += [getattr(args, key) for key in ISOLATION_CHECKED[args.command] if getattr(args, key, None)]
    return isolation.ensure_isolated(paths, accept_unisolated=args.accept_unisolated)


class _ClosedPipeSafe:
    """stdout that stops writing, silently, once its reader went away (``dlgrade ... | head``).

    The command still runs to its end and exits with its own status, which a
    ``set -o pipefail`` pipeline reads.
    """

    def __init__(self, stream):
        self._stream, self._closed = stream, False

    def _gone(self) -> None:
        self._closed = True
        try:  # what is still buffered would fail again at exit: send it nowhere
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass

    def write(self, text):
        if self._closed:
            return len(text)
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._gone()
            return len(text)

    def flush(self):
        if not self._closed:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._gone()

    def __getattr__(self, name):
        return getattr(self._stream, name)


def main(argv=None) -> int:
    """The process's edge: the environment and the flags become one Settings, used while it runs."""
    from autograder.sandbox import settings

    stdout = sys.stdout
    sys.stdout = _ClosedPipeSafe(stdout)
    try:
        run_settings = settings.Settings.from_environment(os.environ)
    except settings.SettingsError as exc:
        print(f"dlgrade: {exc}", file=sys.stderr)
        return USAGE
    previous = settings.use(run_settings)
    try:
        return _main(argv)
    finally:
        settings.use(previous)
        sys.stdout.flush()
        sys.stdout = stdout


def _main(argv) -> int:
    from autograder.sandbox import settings
    from autograder.sandbox.isolation import IsolationRefused

    args = build_parser().parse_args(argv)
    if argv is None and args.command in ("batch", "grade", "serve"):
        # This process's own command line (not a test calling main): on a default systemd host,
        # re-execute in a delegated scope so that the CPU quota can be set (sandbox/cgroup_v2.py).
        from autograder.sandbox import cgroup_v2

        own = ["-m", "autograder.cli"] if sys.argv[0].endswith(".py") else [sys.argv[0]]
        cgroup_v2.reexec_in_scope([sys.executable, *own, *sys.argv[1:]])
    os.umask(0o077)  # reports, batch state and outputs: readable by their owner only
    try:
        check_isolation(args)
    except IsolationRefused as exc:
        print(f"dlgrade {args.command}: {exc}", file=sys.stderr)
        return GRADER_FAILURE
    # Every process that grades (this one, local workers, Dask workers: the settings travel with
    # the work) checks again before learner code runs (grade.grade_notebook).
    settings.use(settings.current().but(accept_unisolated=bool(getattr(args, "accept_unisolated", False))))
    try:
        return args.func(args)
    except (UsageError, catalogue.UnknownAssignment) as exc:
        print(f"dlgrade {args.command}: {exc}", file=sys.stderr)
        return USAGE
    except Exception as exc:  # a bug in dlgrade or a hidden suite, never the learner's input
        print(f"dlgrade {args.command}: grader failure: {type(exc).__name__}: {str(exc)[:2000]}", file=sys.stderr)
        if settings.current().debug:
            traceback.print_exc()
        else:
            print("(set DLGRADE_DEBUG=1 for the traceback)", file=sys.stderr)
        return GRADER_FAILURE


if __name__ == "__main__":
    sys.exit(main())
