"""``dlgrade check``: the public tests, run on a notebook the way a learner sees them.

The learner's graded cells run in the same sandbox as for grading; the public
tests from the assignment folder run beside them, and their printed output is
shown as is. Nothing here affects a grade.
"""
from __future__ import annotations

from pathlib import Path

from autograder.grading import catalogue
from autograder.grading.grade import resolve_assignment
from autograder.grading.notebook import NotebookError, extract, read_notebook
from autograder.grading.learner import LearnerError, LearnerProcess

PROBE = '''
def probe(ns, functions):
    import contextlib, io, traceback
    import public_tests
    results = {}
    for name in functions:
        buffer = io.StringIO()
        try:
            with contextlib.redirect_stdout(buffer):
                getattr(public_tests, name + "_test")(ns[name])
            results[name] = ["passed", buffer.getvalue()]
        except Exception as exc:
            text = "".join(traceback.format_exception_only(type(exc), exc))
            results[name] = ["failed", buffer.getvalue() + text]
    return results
'''


def run_public_tests(path, assignment: str | None = None, echo=print) -> bool:
    try:
        nb, notes = read_notebook(Path(path))
        name = resolve_assignment(nb, assignment)
    except NotebookError as exc:
        echo(f"cannot check this notebook: {exc}")
        return False
    spec = catalogue.load(name)
    extraction = extract(nb, spec.graded_functions)
    for note in notes + extraction.notes:
        echo(f"note: {note}")
    runnable = [f for f in spec.graded_functions if f not in extraction.problems]
    process = LearnerProcess(spec.preamble, extraction.cells, spec.release_dir, spec.limits(),
                             spec.config.call_timeout * 3, spec.config.submission_timeout)
    try:
        results = process.probe(PROBE, {"functions": runnable}, timeout=spec.config.submission_timeout, what="the public tests")
    except LearnerError as exc:
        echo(f"the public tests could not run: {exc}")
        return False
    finally:
        process.close()
    all_ok = True
    for function in spec.graded_functions:
        if function in extraction.problems:
            status, output = "failed", extraction.problems[function]
        else:
            status, output = results.get(function, ["failed", "not run"])
        all_ok &= status == "passed"
        echo(f"{'PASS' if status == 'passed' else 'FAIL'} {function}")
        for line in output.strip().splitlines():
            echo(f"    {line}")
    echo("All public tests passed." if all_ok else "Some public tests failed (the hidden tests check more).")
    return all_ok
