"""``dlgrade check``: the public tests, run on a notebook the way a learner sees them.

The learner's graded cells run in the same sandbox as for grading; the public
tests from the assignment folder run beside them, and their printed output is
shown as is. Nothing here affects a grade.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from autograder.grading import catalogue
from autograder.grading.grade import resolve_assignment
from autograder.grading.learner import LearnerProcess
from autograder.grading.learner_errors import LearnerError
from autograder.grading.notebook import NotebookError, extract, read_notebook

PROBE = """
def probe(ns, functions):
    import contextlib, inspect, io, traceback
    import public_tests
    results = {}
    for name in functions:
        buffer = io.StringIO()
        test = getattr(public_tests, name + "_test")
        # The notebook's other functions a test takes, by parameter name, as its test cell passes them.
        others = {p: ns[p] for p in list(inspect.signature(test).parameters)[1:] if callable(ns.get(p))}
        try:
            with contextlib.redirect_stdout(buffer):
                test(ns[name], **others)
            results[name] = ["passed", buffer.getvalue()]
        except Exception as exc:
            text = "".join(traceback.format_exception_only(type(exc), exc))
            results[name] = ["failed", buffer.getvalue() + text]
    return results
"""


def public_results(nb, name: str) -> tuple:
    """({function: (status, output)}, extraction notes) of the public tests on notebook ``nb``.

    ``status`` is "passed" or "failed"; raises LearnerError when the tests could not run at all.
    """
    spec = catalogue.load(name)
    extraction = extract(nb, spec.graded_functions, spec.preamble)
    runnable = [f for f in spec.graded_functions if f not in extraction.problems]
    # One probe runs every public test, outside any function's checks: the submission's whole
    # budget; each cell gets three calls' time.
    policy = dataclasses.replace(spec.time_policy, call=spec.time_policy.call * 3)
    process = LearnerProcess(
        preamble=spec.preamble,
        cells=extraction.cells,
        helper_dir=spec.release_dir,
        limits=spec.limits(),
        time_policy=policy,
    )
    try:
        results = process.probe(PROBE, {"functions": runnable}, timeout=policy.submission, what="the public tests")
    finally:
        process.close()
    return (
        {
            f: (
                ("failed", extraction.problems[f])
                if f in extraction.problems
                else tuple(results.get(f, ["failed", "not run"]))
            )
            for f in spec.graded_functions
        },
        extraction.notes,
    )


def run_public_tests(path, assignment: str | None = None, echo=print) -> bool:
    try:
        nb, notes = read_notebook(Path(path))
        name = resolve_assignment(nb, assignment)
    except NotebookError as exc:
        echo(f"cannot check this notebook: {exc}")
        return False
    try:
        results, extra_notes = public_results(nb, name)
    except LearnerError as exc:
        echo(f"the public tests could not run: {exc}")
        return False
    for note in notes + extra_notes:
        echo(f"note: {note}")
    spec = catalogue.load(name)
    all_ok = True
    for function in spec.graded_functions:
        status, output = results[function]
        all_ok &= status == "passed"
        echo(f"{'PASS' if status == 'passed' else 'FAIL'} {function}")
        for line in output.strip().splitlines():
            echo(f"    {line}")
    echo("All public tests passed." if all_ok else "Some public tests failed (the hidden tests check more).")
    return all_ok
