"""The namespace mode's fallback, run for real: each submission's pid 1 made through a keeper
process (sandbox/prepared.py, KeeperPrepared), as where ``setns`` is refused (unprivileged
bubblewrap in the Docker image, whose tests run this way; a seccomp profile that allows
``unshare`` but not ``setns``). Where setns works the zygote makes them itself, so
``DLGRADE_NAMESPACE_KEEPER=1`` forces the fallback here: the attack suite (less its slow tests)
runs in a pytest of its own under it. That the setting leads to keepers, and setns's refusal to
the keeper way: tests/test_learner_process.py and tests/test_fail_closed.py."""

from __future__ import annotations

import os

import pytest

from autograder.sandbox import isolation
from tests.nbtools import run_pytest_alone


def test_attacks_fail_when_namespaces_come_through_a_keeper():
    if isolation.available_strategy() != "bwrap" or os.geteuid() != 0:
        pytest.skip("namespace mode with a private learner uid needs bubblewrap as root")
    run = run_pytest_alone("tests/test_attacks.py", {"DLGRADE_NAMESPACE_KEEPER": "1"})
    assert " PASSED" in run.stdout and " FAILED" not in run.stdout and " SKIPPED" not in run.stdout, run.stdout[-4000:]
