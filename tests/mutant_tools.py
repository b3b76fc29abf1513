"""Planted bugs from ``autograder/suites/<name>/mutants.py``, applied and graded.

The file's format is the one ``dlgrade validate NAME --mutants`` reads
(``autograder.course.mutants.Mutant``; read here by scaffold.load_mutants).
"""
from __future__ import annotations

import nbformat

from tests.nbtools import graded_cell, solution_path, write


def load_mutants(assignment: str) -> list:
    from autograder.course.scaffold import load_mutants as load

    return load(assignment)


def mutated_notebook(assignment: str, mutant):
    """The solution notebook with the mutant's (old, new) edit applied to its function's cell."""
    nb = nbformat.read(solution_path(assignment), as_version=4)
    cell = graded_cell(nb, mutant.function)
    old, new = mutant.edit
    assert cell.source.count(old) == 1, f"{mutant.name}: {old!r} is not exactly once in {mutant.function}"
    cell.source = cell.source.replace(old, new)
    return nb


def grade_mutant(assignment: str, mutant, folder) -> dict:
    from autograder.grading.grade import grade_notebook

    return grade_notebook(write(mutated_notebook(assignment, mutant), folder / f"{mutant.name}.ipynb"), assignment)


def functions_that_lost_points(result: dict) -> set:
    return {f for f, entry in result["functions"].items() if entry["score"] < entry["max_score"]}
