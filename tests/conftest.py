"""Shared test set-up."""
from __future__ import annotations

import os

from autograder.sandbox import settings


def pytest_configure(config):
    """The test session is a process edge: its environment (DLGRADE_SANDBOX=setpriv in the setpriv
    runs, DLGRADE_NO_NAMESPACES=1...) becomes the settings the engine reads (autograder/sandbox/settings.py),
    before any test module is imported."""
    settings.use(settings.Settings.from_environment(os.environ))
