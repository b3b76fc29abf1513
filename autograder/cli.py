"""``dlgrade``: the command-line layer. Each command is a thin call into a module."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder.grading import catalogue


def cmd_release(args) -> int:
    from autograder.course import release

    for name in args.names or catalogue.names():
        print(f"released {release.release(name).relative_to(catalogue.ROOT)}")
    return 0


def cmd_grade(args) -> int:
    from autograder.grading.grade import grade_notebook
    from autograder.grading.reports import results_json, write_reports

    result = grade_notebook(args.notebook, args.assignment)
    if args.out:
        write_reports(result, Path(args.out))
    if args.json:
        sys.stdout.write(results_json(result))
    else:
        print_summary(result)
        if args.out:
            print(f"reports written to {args.out}/ (results.json, junit.xml, feedback.md)")
    if result.get("grader_error"):
        return 3
    if args.min_score is not None and result["score"] < args.min_score:
        if not args.json:
            print(f"score {result['score']:g} is below the required {args.min_score:g}")
        return 1
    return 0


def print_summary(result: dict) -> None:
    print(result["output"])
    for name, entry in result.get("functions", {}).items():
        mark = "ok" if entry["score"] == entry["max_score"] else "--"
        print(f"  [{mark}] {name:<45} {entry['score']:g} / {entry['max_score']:g}")
    for test in result["tests"]:
        if test["status"] != "passed":
            first = test["output"].splitlines()[0] if test["output"] else ""
            print(f"     x {test['name']}: {first}")
    for note in result.get("notes", []):
        print(f"  note: {note}")


def cmd_check(args) -> int:
    from autograder.course.public import run_public_tests

    ok = run_public_tests(args.notebook, args.assignment)
    return 0 if ok else 1


def cmd_validate(args) -> int:
    from autograder.course.validate import validate

    failed = False
    for name in args.names or catalogue.names():
        problems = validate(name)
        print(f"{name}: {'ok' if not problems else 'FAILED'}")
        for problem in problems:
            print(f"  - {problem}")
        failed |= bool(problems)
    return 1 if failed else 0


def cmd_execute_solutions(args) -> int:
    from autograder.course.execute import execute_solution

    for name in args.names or catalogue.names():
        seconds = execute_solution(name, timeout=args.timeout)
        print(f"executed solutions/{name}.ipynb in {seconds:.0f} s")
    return 0


def cmd_new(args) -> int:
    from autograder.course import scaffold

    try:
        if args.function:
            written = scaffold.add_function(args.name, args.function, args.args, args.points)
        else:
            functions = [(f, args.args) for f in args.functions.split(",") if f] if args.functions else ()
            written = scaffold.new_assignment(args.name, args.title, functions, args.points)
    except scaffold.ScaffoldError as exc:
        print(f"dlgrade new: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path.relative_to(catalogue.ROOT) if path.is_relative_to(catalogue.ROOT) else path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlgrade", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("release", help="regenerate assignments/ from solutions/")
    p.add_argument("names", nargs="*")
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("grade", help="grade one submitted notebook")
    p.add_argument("notebook")
    p.add_argument("--assignment", help="assignment name (default: detected from the notebook)")
    p.add_argument("--out", help="write results.json, junit.xml and feedback.md here")
    p.add_argument("--json", action="store_true", help="print results.json on stdout")
    p.add_argument("--min-score", type=float, help="exit 1 when the score is below this")
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("check", help="run the public tests on a notebook (what learners see)")
    p.add_argument("notebook")
    p.add_argument("--assignment")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("validate", help="solutions get full marks, released stubs get zero")
    p.add_argument("names", nargs="*")
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
    p.set_defaults(func=cmd_new)

    # Batch grading lives in its own module; it adds its own sub-command.
    from autograder.batch.run import register_cli as register_batch

    register_batch(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except catalogue.UnknownAssignment as exc:
        print(f"dlgrade: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
