"""Self-checks of an assignment: the solution earns full marks, the stub earns zero."""

from __future__ import annotations

import nbformat

from autograder.course import execute, release
from autograder.grading import catalogue
from autograder.grading.grade import grade_notebook


def validate(name: str, mutants: bool = False) -> list:
    """Return a list of problems (empty when the assignment is consistent).

    The solution gets full marks and passes every public test, the released
    stub gets zero and fails every public test; with ``mutants``, also every
    planted bug of suites/<name>/mutants.py (see autograder.course.mutants).
    """
    spec = catalogue.load(name)
    problems = []
    if release.drift(name):
        problems.append(f"{spec.released_notebook} differs from what `dlgrade release` generates")
    problems += execute.figure_problems(name)  # the figures the notebook states are what its code printed
    solution = grade_notebook(spec.solution_path, name)
    if solution["score"] != spec.max_score or solution.get("grader_error"):
        failed = [t["name"] + ": " + t["output"].splitlines()[0] for t in solution["tests"] if t["status"] != "passed"]
        problems.append(f"solution scores {solution['score']:g} / {spec.max_score:g}: " + "; ".join(failed[:5]))
    for function, entry in solution["functions"].items():
        if entry["tests"] == 0:
            problems.append(f"{function} has no hidden test")
        suite_points = sum(t["max_score"] for t in solution["tests"] if t["function"] == function)
        if abs(suite_points - entry["max_score"]) > 1e-9:
            problems.append(
                f"{function}: the hidden suite gives {suite_points:g} points, "
                f"the notebook's test cell says {entry['max_score']:g}"
            )
    unknown = {t["function"] for t in solution["tests"]} - set(spec.graded_functions)
    if unknown:
        problems.append(f"hidden tests name functions that are not graded cells: {sorted(unknown)}")
    if spec.released_notebook.exists():
        stub = grade_notebook(spec.released_notebook, name)
        if stub["score"] != 0:
            passed = [t["name"] for t in stub["tests"] if t["status"] == "passed" and t["max_score"]]
            problems.append(f"the released stub scores {stub['score']:g}; checks passing on a stub: {passed[:5]}")
    problems += public_problems(spec)
    if mutants:
        from autograder.course.mutants import validate_mutants

        problems += validate_mutants(name)
    return problems


def public_problems(spec) -> list:
    """The public tests pass on the solution and fail on the released stub, function by function."""
    from autograder.course.public import public_results
    from autograder.grading.learner_errors import LearnerError

    problems = []
    notebooks = [("solution", spec.solution_path, "passed")]
    if spec.released_notebook.exists():
        notebooks.append(("released stub", spec.released_notebook, "failed"))
    for label, path, wanted in notebooks:
        try:
            results, _ = public_results(nbformat.read(str(path), as_version=4), spec.name)
        except LearnerError as exc:
            problems.append(f"the public tests could not run on the {label}: {exc}")
            continue
        wrong = [f for f, (status, _) in results.items() if status != wanted]
        if wrong:
            problems.append(
                f"the public tests of {', '.join(wrong)} {'fail' if wanted == 'passed' else 'pass'} on the {label}"
            )
    return problems
