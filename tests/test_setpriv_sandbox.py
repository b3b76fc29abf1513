"""The setpriv sandbox, the one the Docker image uses, run for real outside Docker.

Inside Docker bubblewrap is refused, so the learner runs under setpriv as a
uid of its own (one per zygote) and the zygote sweeps that uid's processes and
/tmp files after each child. Here the hostile suite (less its slow tests) runs
with ``DLGRADE_SANDBOX=setpriv`` in a pytest of its own (tests/setpriv_env.py
makes the interpreter reachable by other uids when it lives under a closed
home), on both targets (TensorFlow children come from a zygote that imported
TensorFlow as its private uid). What only the container provides (no network,
grader files closed to other uids) is left to the container; the tests that
check those are skipped in that run, as on any machine without bubblewrap.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.setpriv_env import command_prefix, setpriv_usable

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not setpriv_usable(), reason="needs root, setpriv, and a Python other uids can run")

# Must run and pass under setpriv, not be skipped.
SWEEP_TESTS = ["test_nothing_leaks_from_one_submission_to_the_next[numpy]",
               "test_nothing_leaks_from_one_submission_to_the_next[tensorflow]",
               "test_fork_bomb_is_contained_and_cleaned_up[numpy]"]


def test_hostile_submissions_gain_nothing_under_setpriv_and_leave_nothing_behind():
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLGRADE_")}
    env["DLGRADE_SANDBOX"] = "setpriv"
    run = subprocess.run(
        command_prefix() + [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider",
                            "tests/test_hostile.py", "-m", "not slow"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    for name in SWEEP_TESTS:
        assert f"{name} PASSED" in run.stdout, run.stdout[-4000:]
