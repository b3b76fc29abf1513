"""The setpriv sandbox, the one the Docker image uses, run for real outside Docker.

Inside Docker bubblewrap is refused, so the zygote runs as the container's
root and its learners as a uid of their own. Where namespaces work (root on
a host) each learner also gets its own pid, mount, ipc and network
namespaces; under Docker's seccomp profile they do not, and the uid is
killed whole (kill(-1) from that uid) and its /tmp files deleted after each
child: ``DLGRADE_NO_NAMESPACES=1`` runs that mode here. The hostile suite and
the attack suite (less their slow tests) run with ``DLGRADE_SANDBOX=setpriv``
in a pytest of their own (tests/setpriv_env.py makes the interpreter
reachable by other uids when it lives under a closed home). What only the
container provides (grader files closed to other uids) is checked at start:
on this world-readable checkout grading is refused unless
``--accept-unisolated`` (test_attacks' readability tests).
"""

from __future__ import annotations

import pytest

from tests.nbtools import run_pytest_alone
from tests.setpriv_env import command_prefix, unusable_reason

UNUSABLE = unusable_reason()
pytestmark = pytest.mark.skipif(UNUSABLE is not None, reason=f"needs the setpriv sandbox: {UNUSABLE}")

# Must run and pass under setpriv, not be skipped.
SWEEP_TESTS = [
    "test_nothing_leaks_from_one_submission_to_the_next[numpy]",
    "test_nothing_leaks_from_one_submission_to_the_next[tensorflow]",
    "test_fork_bomb_is_contained_and_cleaned_up[numpy]",
]


def run_under_setpriv(test_file: str, namespaces: bool = True, select: str = "not slow"):
    env = {"DLGRADE_SANDBOX": "setpriv"}
    if not namespaces:
        env["DLGRADE_NO_NAMESPACES"] = "1"
    return run_pytest_alone(test_file, env, command_prefix(), select)


def test_hostile_submissions_gain_nothing_under_setpriv_and_leave_nothing_behind():
    run = run_under_setpriv("tests/test_hostile.py")
    for name in SWEEP_TESTS:
        assert f"{name} PASSED" in run.stdout, run.stdout[-4000:]


@pytest.mark.parametrize("namespaces", [True, False], ids=["namespaces", "uid-only"])
def test_attacks_fail_under_setpriv(namespaces):
    """Every attack class under setpriv, with namespaces (root on a host) and without (as in Docker)."""
    run = run_under_setpriv("tests/test_attacks.py", namespaces)
    assert "PASSED" in run.stdout and "tampering_with_the_zygote_in_a_batch PASSED" in run.stdout


@pytest.mark.parametrize("namespaces", [True, False], ids=["namespaces", "uid-only"])
def test_gpu_nodes_under_setpriv(namespaces):
    """Fake NVIDIA nodes: seen with GPUs on; covered by /dev/null when off where namespaces work,
    left as they are in the uid mode (tests/test_gpu_passthrough.py)."""
    run = run_under_setpriv("tests/test_gpu_passthrough.py", namespaces)
    name = "test_setpriv_learner_sees_the_nodes_when_on_and_dev_null_when_off"
    if not namespaces:
        name = "test_setpriv_uid_mode_cannot_cover_the_nodes"
    assert f"{name} PASSED" in run.stdout, run.stdout[-4000:]
