"""Fixtures shared by the test modules; helpers that are not fixtures are in tests/nbtools.py.

The fixtures of an assignment read its name from the requesting module's
``A`` (each tests/test_<assignment>_suite.py sets it).
"""
from __future__ import annotations

import pytest

from tests.nbtools import MutantGrades


@pytest.fixture(scope="module")
def grades(request, tmp_path_factory):
    """The module's assignment's declared planted bugs, graded on first use: ``grades(name)`` is that
    mutant's report (see :class:`tests.nbtools.MutantGrades`). Mutants are graded round by round, the
    mutants of a round in one notebook, unless the module sets ``MUTANTS_ISOLATED = True``: then each
    has a notebook of its own."""
    return MutantGrades(request.module.A, tmp_path_factory.mktemp("mutants"),
                        isolated=getattr(request.module, "MUTANTS_ISOLATED", False))


@pytest.fixture(scope="module")
def reference(request):
    """The module's assignment's solution functions, run in this process (``catalogue.reference``)."""
    from autograder.grading import catalogue

    return catalogue.reference(request.module.A)
