"""Fixtures shared by the test modules; helpers that are not fixtures are in tests/nbtools.py.

The fixtures of an assignment read its name from the requesting module's
``A`` (each tests/test_<assignment>_suite.py sets it).
"""

from __future__ import annotations

import os

import pytest

from autograder.sandbox import settings
from tests.nbtools import MutantGrades

# dlgrade serve's fixtures (a throwaway PostgreSQL cluster, Debian's chromium, a live server).
pytest_plugins = ["service_fixtures"]


def pytest_configure(config):
    """The test session is a process edge: its environment (DLGRADE_SANDBOX=setpriv in the setpriv
    runs, DLGRADE_NO_NAMESPACES=1...) becomes the settings the engine reads (autograder/sandbox/settings.py),
    before any test module is imported."""
    run_settings = settings.Settings.from_environment(os.environ)
    # Under setpriv (tests/test_setpriv_sandbox.py) this world-readable checkout is readable by the
    # learner's uid: what the engine is called with directly here grades as `dlgrade ... --accept-unisolated`
    # would (the CLI builds its own settings: its runs still need the flag, see test_attacks' readability tests).
    settings.use(run_settings.but(accept_unisolated=run_settings.strategy == "setpriv"))


@pytest.fixture(scope="module")
def grades(request, tmp_path_factory):
    """The module's assignment's declared planted bugs, graded on first use: ``grades(name)`` is that
    mutant's report (see :class:`tests.nbtools.MutantGrades`). Mutants are graded round by round, the
    mutants of a round in one notebook, unless the module sets ``MUTANTS_ISOLATED = True``: then each
    has a notebook of its own."""
    return MutantGrades(
        request.module.A,
        tmp_path_factory.mktemp("mutants"),
        isolated=getattr(request.module, "MUTANTS_ISOLATED", False),
    )


@pytest.fixture(scope="module")
def reference(request):
    """The module's assignment's solution functions, run in this process (``catalogue.reference``)."""
    from autograder.grading import catalogue

    return catalogue.reference(request.module.A)
